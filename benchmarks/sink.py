"""Sink: rows/s through the sink agent (records on `sciqag.qa.scored` in a real Tansu broker -> the sink's aiokafka
batches -> chDB) vs a direct clickhouse-connect bulk insert of the same rows into the same engine, in the same
process. Target >= 0.8. Beside it: the agent against a direct insert of the same records as JSON (the sink's own
insert path, without the broker), and what a sink that decodes every record in Python could reach at best."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from schemas import RACAR_DIMENSIONS, DimensionScore, PaperRef, QAScored, Racar, decode, encode
from schemas.ddl import JSON_INPUT_SETTINGS, QA_JSON_TABLE, QA_TABLE, ddl

from .common import Row, format_table


def scored_records(n: int, pairs_per_paper: int = 10) -> list[QAScored]:
    racar = Racar(
        **{
            d: DimensionScore(score=2 + (i % 2), reason="a one-sentence reason for the score")
            for i, d in enumerate(RACAR_DIMENSIONS)
        }
    )
    records = []
    for i in range(n):
        paper = PaperRef(
            paper_id=f"pbench{i // pairs_per_paper:07d}",
            doi=f"10.5555/bench.{i // pairs_per_paper}",
            title="A benchmark paper about perovskite solar cells",
            journal="Bench Journal",
            categories=["Materials Science"],
            source_uri="file:///bench.pdf",
            source_feed="bench",
        )
        seq = i % pairs_per_paper
        records.append(
            QAScored(
                paper=paper,
                qa_id=f"qbench{i:08d}",
                pair_index=seq,
                sequence=seq,
                pair_count=pairs_per_paper,
                keywords=["perovskite", "band gap", "efficiency"],
                question=f"What power conversion efficiency did the device {i} reach under AM1.5G illumination?",
                answer="The device reached 21.3% with an open-circuit voltage of 1.12 V and a fill factor of 0.79.",
                racar=racar,
                numeric_support=1.0,
                accepted=bool(i % 3),
                generator_model="bench",
                judge_model="bench",
                prompt_version="bench",
            )
        )
    return records


def run(rows: int = 100_000, **overrides) -> list[Row]:
    from processors.local.broker import free_port
    from processors.pipeline.worker import run_worker
    from processors.settings import Settings
    from processors.store import QA_COLUMNS, qa_row

    records = scored_records(rows)
    payloads = [(r.paper.paper_id.encode(), encode(r)) for r in records]
    result: dict = {}

    async def produce(bootstrap: str) -> None:
        from aiokafka import AIOKafkaProducer

        from schemas import topics as T

        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, compression_type="gzip", linger_ms=5)
        await producer.start()
        try:
            for key, value in payloads:
                await producer.send(T.SCORED, key=key, value=value)
            await producer.flush()
        finally:
            await producer.stop()

    async def job(worker) -> int:
        loop = asyncio.get_running_loop()
        store = await worker.store()
        from processors import metrics

        def total(metric, suffix: str, *labels) -> float:  # process-wide metrics: differences are taken
            return next(
                s.value
                for m in (metric.labels(*labels) if labels else metric).collect()
                for s in m.samples
                if s.name.endswith(suffix)
            )

        def stored() -> int:  # the sink's own counter: polling ClickHouse would compete with its inserts
            return int(total(metrics.QA_STORED, "_total")) - stored_before

        def busy() -> tuple[float, float]:
            return (
                total(metrics.STAGE_SECONDS, "_sum", "sink"),
                total(metrics.SINK_INSERT_SECONDS, "_sum", "qa_pairs")
                + total(metrics.SINK_INSERT_SECONDS, "_sum", "papers"),
            )

        stored_before = int(total(metrics.QA_STORED, "_total"))
        # the backlog is in the topic before the worker starts: time from the first stored batch to the last
        while (first := stored()) == 0:
            await asyncio.sleep(0.005)
        started, busy_before = time.perf_counter(), busy()
        while stored() < rows:
            await asyncio.sleep(0.005)
        result["sink_s"] = time.perf_counter() - started
        result["sink_rows"] = rows - first
        result["in_sink_s"], result["insert_s"] = (after - before for after, before in zip(busy(), busy_before))

        # what a sink that decodes in Python must do per row before the ceiling's insert: decode, build the row
        started = time.perf_counter()
        decoded = [decode(value, QAScored) for _, value in payloads]
        result["decode_s"] = time.perf_counter() - started
        started = time.perf_counter()
        direct = [[row[c] for c in QA_COLUMNS] for row in map(qa_row, decoded)]
        result["build_s"] = time.perf_counter() - started

        # the ceiling: the same rows, one bulk insert per 5,000 rows, into another database of the same engine
        for statement in ddl("bench_direct"):
            store.command(statement)
        started = time.perf_counter()
        for i in range(0, len(direct), 5000):
            await loop.run_in_executor(
                None,
                lambda chunk=direct[i : i + 5000]: store._client.insert(
                    QA_TABLE, chunk, column_names=QA_COLUMNS, database="bench_direct"
                ),
            )
        result["direct_s"] = time.perf_counter() - started

        # the sink's own insert path without the broker: the same records as JSON, 5,000 per insert
        for statement in ddl("bench_json"):
            store.command(statement)
        started = time.perf_counter()
        for i in range(0, len(payloads), 5000):
            await loop.run_in_executor(
                None,
                lambda chunk=payloads[i : i + 5000]: store._client.raw_insert(
                    f"bench_json.{QA_JSON_TABLE}",
                    None,
                    insert_block=b"\n".join(v for _, v in chunk),
                    fmt="JSONEachRow",
                    settings=JSON_INPUT_SETTINGS,
                ),
            )
        result["json_s"] = time.perf_counter() - started
        return 0

    from processors.kafka import bootstrap_servers
    from processors.local.broker import tansu_broker

    with tempfile.TemporaryDirectory() as tmp, tansu_broker() as broker:
        asyncio.run(produce(bootstrap_servers(broker)))
        settings = Settings(
            data_dir=Path(tmp),
            broker_url=broker,
            agents=["sink"],
            metrics_port=free_port(),
            log_level="WARNING",
            **{"near_duplicates": False, **overrides},  # the storage path; the check: run_with_near_duplicates
        )
        code = run_worker(settings, job)
    if code or "direct_s" not in result:
        raise RuntimeError(f"the sink benchmark's worker failed (exit {code})")
    note = (
        f"{rows} QAScored records in the topic before the worker starts; batches of {settings.sink_batch_rows} "
        f"rows / {settings.sink_batch_seconds:g} s; timed from the first stored batch to the last "
        f"({result['sink_rows']} rows in {result['sink_s']:.2f} s, of which {result['in_sink_s']:.2f} s in the "
        f"agent's batch handler and {result['insert_s']:.2f} s in its inserts); direct: the same rows, 5,000 "
        "per insert"
    )
    bound_s = result["decode_s"] + result["build_s"] + result["direct_s"]
    per_row = {k: 1e6 * result[f"{k}_s"] / rows for k in ("decode", "build", "direct")}
    bound_note = (
        f"no broker, one thread: per row {per_row['decode']:.1f} us msgspec decode of the QAScored record, "
        f"{per_row['build']:.1f} us building the table row, {per_row['direct']:.1f} us in the insert; the "
        "ceiling is the last alone: a sink that decodes these records in Python cannot get far above this "
        "ratio (the sink checks the required fields and lets ClickHouse parse the JSON instead)"
    )
    return [
        Row(
            "sink",
            "rows/s through the sink agent",
            result["sink_rows"] / result["sink_s"],
            "direct clickhouse-connect insert rows/s",
            rows / result["direct_s"],
            target=0.8,
            note=note,
        ),
        Row(
            "sink_vs_json_insert",
            "rows/s through the sink agent",
            result["sink_rows"] / result["sink_s"],
            "direct JSONEachRow insert rows/s",
            rows / result["json_s"],
            note="the same records as JSON straight into the sink's intake table (raw_insert, 5,000 per insert, no "
            "broker): how far the agent is from its own insert path",
        ),
        Row(
            "sink_bound",
            "rows/s: decode + build row + insert",
            rows / bound_s,
            "direct clickhouse-connect insert rows/s",
            rows / result["direct_s"],
            note=bound_note,
        ),
    ]


def run_with_near_duplicates(rows: int = 2_000) -> list[Row]:
    """The sink with the near-duplicate check on, against itself with the check off, on the same records."""
    on = run(rows, near_duplicates=True, sink_batch_rows=100)[0]
    off = run(rows, near_duplicates=False, sink_batch_rows=100)[0]
    return [
        Row(
            "sink_near_duplicates",
            "rows/s through the sink, check on",
            on.value,
            "rows/s through the sink, check off",
            off.value,
            note=f"{rows} records in batches of 100 rows, whose questions differ only in a number (each one's nearest "
            "stored questions are all similar, none a duplicate: the guard on numbers decides); per pair the check "
            "embeds the question, "
            "looks up its 10 nearest stored questions through the HNSW index and stores its vector",
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--batch-rows", type=int, default=0, help="SCIQAG_SINK_BATCH_ROWS for the run (default: the setting)"
    )
    args = parser.parse_args()
    print(format_table(run(args.rows, **({"sink_batch_rows": args.batch_rows} if args.batch_rows else {}))))


if __name__ == "__main__":
    main()
