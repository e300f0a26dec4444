"""The sink's fast path against a real (embedded) ClickHouse: scored records go in as their JSON and ClickHouse
parses them (schemas/ddl.py, QA_JSON_TABLE). It must store exactly the rows the Python path (`qa_row`) builds,
for every shape a QAScored takes, and a record it cannot take must cost one dead letter, not the batch."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from processors.local.broker import stop_process
from processors.pipeline.app import Pipeline
from processors.pipeline.context import EngineHolder
from processors.settings import Settings
from processors.store import QA_COLUMNS, Store, qa_row
from schemas import (
    DeadLetter,
    DimensionScore,
    Evidence,
    PaperQuality,
    PaperRef,
    QAScored,
    QAScoredCheck,
    Racar,
    decode,
    encode,
)
from schemas import topics as T

from .clickhouse_http import start_clickhouse_http
from .stage_harness import Record, sink_batch, stage_topics

DIMENSIONS = ("relevance", "agnosticism", "completeness", "accuracy", "reasonableness")


def _racar(*scores: int, reason: str = "fine") -> Racar:
    return Racar(**{d: DimensionScore(score=s, reason=f"{reason} {d}") for d, s in zip(DIMENSIONS, scores)})


def varied_records() -> list[QAScored]:
    ru = PaperRef(
        paper_id="p-ru",
        doi="10.1/ру",
        title="Фотокатализ «TiO₂»",
        journal="Журнал",
        categories=["Химия", "Физика"],
        source_uri="file:///inbox/ру.pdf",
        source_feed="rss",
    )
    en = PaperRef(
        paper_id="p-en", title="Quotes \"double\", 'single', back\\slash,\ttab\nnewline", source_uri="inline:x.pdf"
    )
    return [
        QAScored(
            paper=en,
            qa_id="q-open",
            pair_index=0,
            sequence=0,
            pair_count=3,
            keywords=["k1", "k 2"],
            question='What is 2 > 1 & "x"?',
            answer="Yes 😀, \u0000-free \\u escapes \\n stay.",
            racar=_racar(3, 3, 3, 3, 3),
            numeric_support=None,
            accepted=True,
            evidence=[
                Evidence(quote="2 > 1 «quoted»", start=10, end=24, ratio=1.0, located=True, passage="2 > 1 «quoted»"),
                Evidence(quote="invented", ratio=0.41),
            ],
            grounding=0.5,
            generator_model="g",
            judge_model="j",
            prompt_version="v1",
        ),
        QAScored(
            paper=en,
            qa_id="q-mcq",
            pair_index=1,
            sequence=1,
            pair_count=3,
            kind="mcq",
            language="en",
            question="Which one?",
            answer="B text",
            options=["A text", "B text", "C text", "D text"],
            correct_option=1,
            single_correct=False,
            racar=_racar(1, 2, 3, 2, 1),
            numeric_support=0.25,
        ),
        QAScored(
            paper=en,
            qa_id="q-mcq2",
            pair_index=2,
            sequence=2,
            pair_count=3,
            kind="mcq",
            question="Q?",
            answer="A",
            options=["A", "B", "C", "D"],
            correct_option=0,
            single_correct=True,
            racar=_racar(2, 2, 2, 2, 2, reason=""),
            paper_quality=PaperQuality(coverage=0.5),
            paper_qa_ids=["q-open", "q-mcq", "q-mcq2"],
        ),
        QAScored(
            paper=ru,
            qa_id="q-ru",
            pair_index=0,
            sequence=0,
            pair_count=1,
            language="ru",
            keywords=["фотокатализ"],
            question="Какова ширина запрещённой зоны?",
            answer="3,2 эВ при 300 K.",
            racar=_racar(3, 2, 3, 3, 3),
            numeric_support=1.0,
            accepted=False,
        ),
    ]


def _stored(store: Store) -> list[dict]:
    rows = store.qa_rows()
    for row in rows:
        row.pop("inserted_at")  # when each path wrote the row
        row.pop("first_stored_at")
    return rows


@pytest.fixture(params=["chdb", "http"])
def stores(request, tmp_path):
    """Two databases of one engine: chDB in-process, or the same engine behind ClickHouse's HTTP interface (the
    insert's settings then travel on the URL, as to a server)."""
    server = None
    if request.param == "http":
        from processors.local.broker import free_port

        port = free_port()
        server = start_clickhouse_http(tmp_path / "ch", port, tmp_path / "ch.log")
        dsn = {"clickhouse_dsn": f"http://default@127.0.0.1:{port}/?compress=false"}
    else:
        dsn = {}
    json_store = Store(Settings(data_dir=tmp_path, clickhouse_database="via_json", **dsn))
    json_store.ensure_schema()
    row_store = Store(Settings(data_dir=tmp_path, clickhouse_database="via_rows", **dsn))
    row_store.ensure_schema()
    yield json_store, row_store
    json_store.close()
    row_store.close()
    if server is not None:
        stop_process(server, 10)


def test_json_path_stores_the_rows_the_python_path_builds(stores):
    json_store, row_store = stores
    records = varied_records()
    json_store.insert_qa_json([encode(r) for r in records])
    row_store.insert_qa([qa_row(r) for r in records])
    via_json, via_rows = _stored(json_store), _stored(row_store)
    assert len(via_json) == len(records)
    assert via_json == via_rows
    assert set(via_json[0]) == set(QA_COLUMNS) - {"inserted_at", "first_stored_at"}


def test_fields_left_out_get_the_records_defaults(stores):
    """A producer may omit every field that has a default: ClickHouse must fill what msgspec fills."""
    json_store, row_store = stores
    minimal = {
        "paper": {"paper_id": "p-min"},
        "qa_id": "q-min",
        "pair_index": 4,
        "sequence": 0,
        "pair_count": 1,
        "question": "Q?",
        "answer": "A.",
        "racar": {d: {"score": 2} for d in DIMENSIONS},
        "scored_at": "2026-11-30T10:00:00.123456Z",
        "added_by_a_newer_producer": {"x": [1, 2]},
    }
    payload = msgspec.json.encode(minimal)
    json_store.insert_qa_json([payload])
    row_store.insert_qa([qa_row(decode(payload, QAScored))])
    assert _stored(json_store) == _stored(row_store)


def test_papers_rows_go_in_as_json_and_come_back_as_the_python_rows(stores):
    """insert_papers sends JSON; the rows must read back as the native insert of the same rows does."""
    from processors.store import PAPERS_TABLE, paper_row_failed, paper_row_scored

    json_store, row_store = stores
    scored = varied_records()
    scored[2].paper_quality = PaperQuality(
        q_similarity_mean=0.5,
        q_share_below_0_3=0.25,
        q_pairs_over_0_7=2,
        coverage=None,
        prefilter_dropped={"mentions_the_paper": 3, "пусто": 1},
    )
    rows = [
        paper_row_scored(scored[2]),
        paper_row_scored(scored[3]),
        paper_row_failed(
            DeadLetter(
                stage="extractor",
                paper_id="p-failed",
                error_kind="corrupt_pdf",
                message='bad "PDF"\nline two',
                source_uri="file:///x.pdf",
            )
        ),
    ]
    json_store.insert_papers(rows)
    row_store.insert(PAPERS_TABLE, rows)
    via_json, via_rows = json_store.papers(), row_store.papers()
    assert len(via_json) == 3 and via_json == via_rows


def test_the_check_covers_every_field_a_scored_record_requires():
    required = {f.name for f in msgspec.structs.fields(QAScored) if f.required}
    checked = {f.name for f in msgspec.structs.fields(QAScoredCheck)}
    assert required <= checked
    assert {f.name for f in msgspec.structs.fields(PaperRef) if f.required} == {"paper_id"}
    assert {f.name for f in msgspec.structs.fields(DimensionScore) if f.required} == {"score"}


def _poisoned_batch() -> tuple[list[Record], set[str], dict[str, str]]:
    good = varied_records()
    as_json = {r.qa_id: msgspec.json.decode(encode(r)) for r in good}
    no_question = dict(as_json["q-open"], qa_id="q-no-question")
    del no_question["question"]
    wrong_version = dict(as_json["q-open"], qa_id="q-v9", schema_version=9)
    # passes the check (an optional field) but not ClickHouse's strict reading, nor msgspec's
    wrong_type = dict(as_json["q-mcq"], qa_id="q-bad-support", numeric_support="high")
    payloads = [
        encode(good[0]),
        b"\x00not json",
        msgspec.json.encode(no_question),
        encode(good[1]),
        msgspec.json.encode(wrong_version),
        msgspec.json.encode(wrong_type),
        encode(good[2]),
        encode(good[3]),
        b"",
    ]
    batch = [Record(T.SCORED, 0, offset, b"p-en", payload) for offset, payload in enumerate(payloads)]
    expected_dead = {
        1: "undecodable",
        2: "schema_violation",
        4: "unsupported_schema_version",
        5: "schema_violation",
        8: "empty_payload",
    }
    return batch, {r.qa_id for r in good}, {str(k): v for k, v in expected_dead.items()}


def test_a_bad_record_costs_one_dead_letter_and_the_batch_is_stored(tmp_path):
    stages = Pipeline.create(Settings(data_dir=tmp_path, quality_metrics=False), stage_topics(), EngineHolder())
    try:
        batch, good_ids, expected_dead = _poisoned_batch()
        asyncio.run(sink_batch(stages, batch))
        store = stages.context.store()
        assert {r["qa_id"] for r in store.qa_rows()} == good_ids
        dead = [decode(value, DeadLetter) for _, value in stages.topics.dlq.sent]
        assert {str(d.source_offset): d.error_kind for d in dead} == expected_dead
        assert all(d.stage == "sink" and d.source_topic == T.SCORED and d.message for d in dead)
        # the paper completed by q-mcq2 got its papers row
        assert [(p["paper_id"], p["status"], p["qa_pairs"]) for p in store.papers()] == [
            ("p-en", "scored", 3),
            ("p-ru", "scored", 1),
        ]
        # and the sink goes on: the next batch takes the fast path again
        later = QAScored(
            paper=PaperRef(paper_id="p-later"),
            qa_id="q-later",
            pair_index=0,
            sequence=0,
            pair_count=1,
            question="Q?",
            answer="A.",
            racar=_racar(3, 3, 3, 3, 3),
        )
        asyncio.run(sink_batch(stages, [Record(T.SCORED, 0, 100, b"p-later", encode(later))]))
        assert "q-later" in {r["qa_id"] for r in store.qa_rows()}
    finally:
        stages.close()


# -- the sink's consumer on a real broker ----------------------------------------------------------------------


class _FailingStore(Exception):
    pass


def test_the_consumer_batches_by_rows_and_commits_only_what_was_stored(tmp_path):
    """Batches hold at most sink_batch_rows records; a batch whose store fails is not committed, so the next
    consumer of the group reads it again; a trickle is stored within sink_batch_seconds."""
    from aiokafka import AIOKafkaProducer

    from processors.kafka import bootstrap_servers
    from processors.local.broker import tansu_broker
    from processors.pipeline.sink import SinkConsumer

    async def scenario(broker: str) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(broker), acks="all")
        await producer.start()
        try:
            for n in range(250):
                await producer.send(T.SCORED, key=b"p", value=f"scored {n}".encode(), partition=0)
            for n in range(5):
                await producer.send(T.DLQ, key=b"p", value=f"dead {n}".encode(), partition=0)
            await producer.flush()
        finally:
            await producer.stop()
        settings = Settings(
            data_dir=tmp_path, broker_url=broker, sink_batch_rows=100, sink_batch_seconds=0.5, kafka_session_timeout_s=6
        )

        # 1. the store fails on the second batch: the consumer stops there, having committed the first only
        batches: list[list] = []

        async def fail_second(batch: list) -> None:
            batches.append(batch)
            if len(batches) == 2:
                raise _FailingStore()

        async def as_is(batch: list) -> list:
            return batch

        with pytest.raises(_FailingStore):
            await SinkConsumer(settings, as_is, fail_second).run()
        assert [len(b) for b in batches] == [100, 100]

        # 2. the group's next consumer starts after the first batch and reads the rest (a last short batch: the
        # time window closes it), in batches of at most 100
        seen: list[bytes] = []
        got_everything = asyncio.Event()

        async def collect(batch: list) -> None:
            assert len(batch) <= 100
            seen.extend(r.value for r in batch)
            if len(seen) >= 155:  # all but the first batch
                got_everything.set()

        task = asyncio.ensure_future(SinkConsumer(settings, as_is, collect).run())
        try:
            await asyncio.wait_for(got_everything.wait(), 60)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        everything = [f"scored {n}".encode() for n in range(250)] + [f"dead {n}".encode() for n in range(5)]
        first = {r.value for r in batches[0]}
        assert sorted(seen) == sorted(v for v in everything if v not in first)

    with tansu_broker(log_file=tmp_path / "tansu.log") as broker:
        asyncio.run(scenario(broker))
