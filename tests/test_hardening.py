"""Issue 25, hostile input: no record may stall, crash-loop or vanish, and the SSRF rule has no gaps.

Stage-level tests first (the stages as the agents call them, on hand-made events): FIFOs and other non-regular
files, huge keys and fields, deep nesting on every topic, outputs over the producer's limit, odd locations, the
total fetch deadline and the address rule (a fake resolver: only loopback traffic is possible here). Property tests
feed arbitrary bytes, keys and deeply nested JSON to every topic's consumer path. The slow tests at the end run a
real `sciqag worker` (extractor and sink) against a Tansu broker and chDB.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import signal
import socket
import subprocess
import time

import msgspec
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.errors import RecordTooLarge, SourceError
from processors.kafka import MAX_RECORD_BYTES, MAX_REQUEST_BYTES, bootstrap_servers
from processors.pipeline import context as context_module
from processors.pipeline.app import Pipeline
from processors.pipeline.context import EngineHolder
from processors.settings import Settings
from processors.sources import CheckedResolver, http_get, load_pdf, public_address
from schemas import DeadLetter, PaperExtracted, PaperSubmitted, QAScored, decode, encode
from schemas import topics as T
from schemas.records import RECORD_TYPES, QAScoredCheck

from .stage_harness import Event, Message, Record, scored_run, stage_topics
from .test_poison import GOOD, GOOD_GENERATION, GOOD_JUDGEMENT, ScriptedEngine, _dlq_total, _extracted, _generated


def deep(depth: int, **fields) -> bytes:
    """A JSON object with `fields` and an array nested `depth` deep in an unknown field."""
    head = msgspec.json.encode(fields)[:-1] + (b"," if fields else b"")
    return head + b'"zz":' + b"[" * depth + b"]" * depth + b"}"


class LimitedTopic:
    """A topic that refuses what the real producer refuses (a request over MAX_REQUEST_BYTES)."""

    def __init__(self, name: str) -> None:
        self.name, self.sent = name, []

    async def send(self, *, key: bytes, value: bytes) -> None:
        if len(key) + len(value) > MAX_REQUEST_BYTES:
            raise RuntimeError("ProducerSendError: MessageSizeTooLargeError")
        self.sent.append((key, value))


def _pipeline(tmp_path, engine=None, **overrides) -> Pipeline:
    values = dict(data_dir=tmp_path, file_roots=[str(tmp_path)], quality_metrics=False, mcq_per_paper=0)
    values.update(pairs_per_paper=1, keywords_per_paper=2, max_pages=20, extract_timeout_s=30, **overrides)
    topics = stage_topics()
    for role in ("extracted", "generated", "scored", "dlq"):
        setattr(topics, role, LimitedTopic(getattr(topics, role).name))
    holder = EngineHolder()
    holder.set(engine)
    return Pipeline.create(Settings(**values), topics, holder)


def _dead(pipeline, since: int = 0) -> list[DeadLetter]:
    return [decode(v, DeadLetter) for _, v in pipeline.topics.dlq.sent[since:]]


def _paper(paper_id: str = "p", **fields) -> bytes:
    return encode(PaperSubmitted(paper_id=paper_id, **fields))


def _extract(pipeline, value: bytes, key: bytes = b"p", offset: int = 0):
    return pipeline.extractor.handle(Event(value, Message(T.PAPERS, 0, offset, key)))


# -- 1. FIFOs, sockets, hung reads --------------------------------------------------------------------------------


def test_fifos_and_sockets_are_refused_at_once_and_do_not_hold_the_extractor(tmp_path):
    os.mkfifo(tmp_path / "fifo1.pdf")
    os.mkfifo(tmp_path / "fifo2.pdf")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "socket.pdf"))
    pipeline = _pipeline(tmp_path)

    async def run() -> float:
        started = time.monotonic()
        # two at once, as the agent's two slots would take them
        await asyncio.gather(
            *(
                _extract(pipeline, _paper(f"f{i}", pdf_uri=(tmp_path / f"fifo{i}.pdf").as_uri()), f"f{i}".encode())
                for i in (1, 2)
            )
        )
        await _extract(pipeline, _paper("s", pdf_uri=(tmp_path / "socket.pdf").as_uri()), b"s")
        elapsed = time.monotonic() - started
        await _extract(pipeline, _paper("good", pdf_bytes=GOOD), b"good")
        return elapsed

    try:
        elapsed = asyncio.run(asyncio.wait_for(run(), 60))
    finally:
        pipeline.close()
        sock.close()
    assert sorted((d.paper_id, d.error_kind) for d in _dead(pipeline)) == [
        ("f1", "not_a_regular_file"),
        ("f2", "not_a_regular_file"),
        ("s", "not_a_regular_file"),
    ]
    assert elapsed < 2, elapsed
    assert [k for k, _ in pipeline.topics.extracted.sent] == [b"good"]


def test_a_read_that_hangs_is_refused_after_the_deadline(tmp_path, monkeypatch):
    import processors.sources as sources

    (tmp_path / "a.pdf").write_bytes(b"%PDF-1.7 x")
    monkeypatch.setattr(sources, "read_file", lambda uri, settings: time.sleep(3))  # a hung network mount

    async def run() -> tuple[str, float]:
        started = time.monotonic()
        try:
            await load_pdf(
                PaperSubmitted(paper_id="p", pdf_uri=(tmp_path / "a.pdf").as_uri()),
                Settings(file_roots=[str(tmp_path)], fetch_timeout_s=0.3),
            )
        except SourceError as exc:
            return exc.kind, time.monotonic() - started
        return "read", time.monotonic() - started

    kind, elapsed = asyncio.run(run())  # (asyncio.run then waits for the stuck thread; a worker's loop does not)
    assert kind == "read_timeout" and elapsed < 1, (kind, elapsed)


# -- 2. keys and fields ---------------------------------------------------------------------------------------------


def test_a_5mb_key_gives_one_small_dead_letter_counted_once_and_logged_as_an_excerpt(tmp_path, caplog):
    pipeline = _pipeline(tmp_path)
    key = b"k" * 5_000_000
    before = _dlq_total()
    with caplog.at_level(logging.DEBUG):
        asyncio.run(_extract(pipeline, b"not json at all", key))
        asyncio.run(_extract(pipeline, _paper("good", pdf_bytes=GOOD), b"good", 1))
    pipeline.close()
    ((dlq_key, value),) = pipeline.topics.dlq.sent
    dead = decode(value, DeadLetter)
    assert dead.error_kind == "key_too_large" and "5000000 bytes" in dead.message
    assert len(dlq_key) < 300 and dead.paper_id.startswith("kkk") and "[5000000 bytes]" in dead.paper_id
    assert len(value) < 5000
    assert _dlq_total() - before == 1
    assert max(len(r.getMessage()) for r in caplog.records) < 2000
    assert [k for k, _ in pipeline.topics.extracted.sent] == [b"good"]


@pytest.mark.parametrize(
    "fields, kind",
    [
        (dict(paper_id="p" * 5000), "key_too_large"),
        (dict(title="T" * 10_000), "field_too_large"),
        (dict(doi="10." + "1" * 3000), "field_too_large"),
        (dict(categories=["c"] * 101), "field_too_large"),
        (dict(categories=["c" * 3000]), "field_too_large"),
        (dict(pdf_uri="file:///" + "a" * 9000), "field_too_large"),
    ],
)
def test_fields_over_their_bounds_are_refused_with_a_kind(tmp_path, fields, kind):
    pipeline = _pipeline(tmp_path)
    values = {"paper_id": "p", "pdf_bytes": GOOD, **fields}
    asyncio.run(_extract(pipeline, encode(PaperSubmitted(**values)), b"p"))
    pipeline.close()
    ((_, value),) = pipeline.topics.dlq.sent
    dead = decode(value, DeadLetter)
    assert dead.error_kind == kind and len(value) < 5000 and not pipeline.topics.extracted.sent


def test_no_record_is_sent_over_the_bounds(tmp_path):
    pipeline = _pipeline(tmp_path)
    ctx = pipeline.context
    small = DeadLetter(stage="s", error_kind="k", message="m")
    with pytest.raises(RecordTooLarge) as info:
        asyncio.run(ctx.send(ctx.topics.dlq, "p" * 2000, small))
    assert info.value.kind == "key_too_large"
    with pytest.raises(RecordTooLarge) as info:
        asyncio.run(
            ctx.send(ctx.topics.dlq, "p", DeadLetter(stage="s", error_kind="k", message="m" * MAX_RECORD_BYTES))
        )
    assert info.value.kind == "record_too_large"
    # a dead letter made from anything stays small
    asyncio.run(ctx.dead_letter(stage="s", kind="k", message="m" * 10**7, paper_id="p" * 10**6, source_uri="u" * 10**6))
    ((key, value),) = ctx.topics.dlq.sent
    assert len(key) < 300 and len(value) < 20_000


# -- 3. deep nesting and any exception in decoding, on every topic ----------------------------------------------------


@pytest.mark.parametrize("record_type", [*RECORD_TYPES.values(), QAScoredCheck], ids=lambda t: t.__name__)
def test_every_decoder_turns_deep_nesting_into_a_record_error(record_type):
    from schemas import RecordError

    for payload in (deep(100_000, paper_id="x"), b"[" * 100_000, b'{"a":' * 50_000):
        with pytest.raises(RecordError) as info:
            decode(payload, record_type)
        assert info.value.kind in ("too_deeply_nested", "undecodable", "schema_violation")
    with pytest.raises(RecordError) as info:
        decode(deep(100_000, paper_id="x"), record_type)
    assert info.value.kind == "too_deeply_nested"


def test_a_deep_record_on_the_dlq_and_on_scored_costs_one_dead_letter_and_the_batch_is_stored(tmp_path):
    """The crash loop of the issue: a 100,000-deep array in a dead letter stopped the sink for good. Real chDB."""
    pipeline = _pipeline(tmp_path)
    good = scored_run("p-good", [0, 1])
    deep_dead = deep(100_000, stage="extractor", error_kind="x", message="m", paper_id="p-deep")
    deep_scored = deep(100_000, qa_id="q")
    shallow_scored = deep(500, **msgspec.to_builtins(good[0]))  # under msgspec's limit: ClickHouse sees it
    records = [
        Record(T.DLQ, 0, 0, b"p-deep", deep_dead),
        Record(T.SCORED, 0, 0, b"p-deep", deep_scored),
        Record(T.SCORED, 0, 1, b"p-good", shallow_scored),
        *[Record(T.SCORED, 0, 2 + i, b"p-good", encode(r)) for i, r in enumerate(good)],
        Record(
            T.DLQ,
            0,
            1,
            b"p-next",
            encode(DeadLetter(stage="extractor", paper_id="p-next", error_kind="k", message="m")),
        ),
    ]
    try:

        async def run() -> None:
            batch = await pipeline.sink.prepare(records)
            await pipeline.sink.store(batch)

        asyncio.run(run())
        store = pipeline.context.store()
        assert {r["qa_id"] for r in store.qa_rows()} == {r.qa_id for r in good}
        rows = store.query("SELECT paper_id, stage, error_kind, source_topic FROM sciqag.dead_letters FINAL")
    finally:
        pipeline.close()
    kinds = sorted((r["stage"], r["error_kind"], r["source_topic"]) for r in rows)
    assert ("sink", "too_deeply_nested", T.DLQ) in kinds and ("extractor", "k", "") in kinds
    assert [(d.error_kind, d.source_topic) for d in _dead(pipeline)] == [("too_deeply_nested", T.SCORED)]


def test_a_deep_paper_record_is_a_record_error_not_an_internal_error(tmp_path):
    pipeline = _pipeline(tmp_path)
    asyncio.run(_extract(pipeline, deep(100_000, paper_id="x"), b"x"))
    pipeline.close()
    assert [(d.paper_id, d.error_kind) for d in _dead(pipeline)] == [("x", "too_deeply_nested")]


# -- 4. sizes checked before producing --------------------------------------------------------------------------


def test_a_long_text_is_cut_for_the_topic_and_says_so(tmp_path):
    pipeline = _pipeline(tmp_path, max_text_bytes=3000)
    asyncio.run(_extract(pipeline, _paper("p", pdf_bytes=GOOD), b"p"))
    pipeline.close()
    ((_, value),) = pipeline.topics.extracted.sent
    record = decode(value, PaperExtracted)
    assert len(record.text.encode()) <= 3000 and record.text_truncated_from > len(record.text)
    assert all(s.start < len(record.text) and s.end <= len(record.text) for s in record.sections)
    assert not pipeline.topics.dlq.sent


def test_a_record_over_the_producer_limit_is_record_too_large_not_internal_error(tmp_path, monkeypatch):
    monkeypatch.setattr(context_module, "MAX_RECORD_BYTES", 2000)
    pipeline = _pipeline(tmp_path)
    asyncio.run(_extract(pipeline, _paper("p", pdf_bytes=GOOD), b"p"))
    pipeline.close()
    assert [(d.paper_id, d.error_kind) for d in _dead(pipeline)] == [("p", "record_too_large")]


# -- 5. other bad input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri, kind",
    [
        ("file://{root}/a\x00b.pdf", "bad_path"),
        ("{root}/a\x00b.pdf", "bad_path"),
        ("http://[1.1.1.1]/", "unsupported_uri"),
        ("http://example.org:99999/a.pdf", "unsupported_uri"),
        ("http:///a.pdf", "unsupported_uri"),
    ],
)
def test_odd_locations_get_their_own_kind(tmp_path, uri, kind):
    pipeline = _pipeline(tmp_path)
    asyncio.run(_extract(pipeline, _paper("p", pdf_uri=uri.format(root=tmp_path)), b"p"))
    pipeline.close()
    assert [d.error_kind for d in _dead(pipeline)] == [kind]


# -- 6. one deadline for a fetch ------------------------------------------------------------------------------------


def test_the_fetch_deadline_covers_every_redirect():
    from aiohttp import web

    async def run() -> tuple[str, float]:
        async def hop(request):
            i = int(request.match_info["i"])
            await asyncio.sleep(0.4)
            if i < 5:
                raise web.HTTPFound(f"/r/{i + 1}")
            return web.Response(body=b"%PDF-1.7")

        app = web.Application()
        app.router.add_get("/r/{i}", hop)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        started = time.monotonic()
        try:
            await http_get(f"http://127.0.0.1:{port}/r/0", allowed_hosts={"127.0.0.1"}, timeout_s=1.0, max_bytes=100)
        except SourceError as exc:
            return exc.kind, time.monotonic() - started
        finally:
            await runner.cleanup()
        return "fetched", time.monotonic() - started

    kind, elapsed = asyncio.run(run())
    assert kind == "fetch_timeout" and elapsed < 1.5, (kind, elapsed)  # each hop alone is well inside 1 s


# -- 7. the address rule, and one lookup ----------------------------------------------------------------------------

NOT_PUBLIC = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.100.100.200",
    "100.64.0.1",
    "192.0.0.8",
    "192.0.0.170",
    "192.0.2.1",
    "198.18.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fec0::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "2002:7f00:1::",
    "2002:a00:1::",
    "2002:a9fe:a9fe::",
    "64:ff9b::7f00:1",
    "64:ff9b:1::1",
    "2001:db8::1",
    "2001::1",
]
PUBLIC = ["1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "2002:5db8:d822::", "::ffff:1.1.1.1", "64:ff9b::101:101"]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_non_public_addresses_are_refused(address):
    assert not public_address(address)
    assert not public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address):
    assert public_address(address)


class FakeResolver:
    """A name service under test control: answers from a list, one answer per call, and counts the calls."""

    def __init__(self, answers: list[list[str]]) -> None:
        self.answers, self.calls = answers, 0

    async def resolve(self, host, port=0, family=socket.AF_INET):
        addresses = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return [
            {"hostname": host, "host": a, "port": port, "family": family, "proto": 0, "flags": 0} for a in addresses
        ]

    async def close(self) -> None:
        pass


async def _local_server(seen: list):
    from aiohttp import web

    async def pdf(request):
        seen.append(request.path)
        if request.path == "/hop":
            raise web.HTTPFound("/paper.pdf")
        return web.Response(body=b"%PDF-1.7 local")

    app = web.Application()
    app.router.add_get("/{name}", pdf)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]


@pytest.mark.parametrize("answer", [["100.100.100.200"], ["1.1.1.1", "127.0.0.1"], ["::ffff:127.0.0.1"], []])
def test_a_name_that_resolves_to_a_non_public_address_is_refused(answer):
    async def run():
        resolver = FakeResolver([answer])
        with pytest.raises(SourceError) as info:
            await http_get(
                "http://papers.test/a.pdf", allowed_hosts=set(), timeout_s=2, max_bytes=100, resolver=resolver
            )
        return info.value.kind, resolver.calls

    assert asyncio.run(run()) == ("host_not_allowed", 1)


def test_the_address_checked_is_the_address_connected_to():
    """A rebinding name service answers a public address, then loopback: the one lookup's public answer is what is
    connected to (and fails here, there is no network), so the loopback server never sees the request."""

    async def run():
        seen: list[str] = []
        runner, port = await _local_server(seen)
        rebinding = FakeResolver([["1.1.1.1"], ["127.0.0.1"]])
        try:
            try:
                await http_get(
                    f"http://rebind.test:{port}/paper.pdf",
                    allowed_hosts=set(),
                    timeout_s=2,
                    max_bytes=100,
                    resolver=rebinding,
                )
            except SourceError as exc:
                kind = exc.kind
            # allowed, the same fake lookup is used once per connection, never a second one behind the check
            honest = FakeResolver([["127.0.0.1"]])
            resp = await http_get(
                f"http://papers.test:{port}/hop",
                allowed_hosts={"papers.test"},
                timeout_s=5,
                max_bytes=100,
                resolver=honest,
            )
        finally:
            await runner.cleanup()
        return kind, rebinding.calls, seen, resp.body, honest.calls

    kind, calls, seen, body, honest_calls = asyncio.run(run())
    assert kind in ("fetch_failed", "fetch_timeout") and calls == 1
    assert seen == ["/hop", "/paper.pdf"] and body == b"%PDF-1.7 local" and honest_calls <= 2


def test_resolver_refusal_keeps_its_kind_through_aiohttp():
    async def run():
        resolver = CheckedResolver(FakeResolver([["10.0.0.1"]]))
        with pytest.raises(SourceError) as info:
            await resolver.resolve("x.test", 80)
        return info.value.kind

    assert asyncio.run(run()) == "host_not_allowed"


# -- property tests: every topic's consumer path ----------------------------------------------------------------

hostile_values = st.one_of(
    st.binary(max_size=300),
    st.integers(1, 3000).map(lambda d: deep(d, paper_id="x")),
    st.integers(1, 3000).map(lambda d: b"[" * d + b"]" * d),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=10,
    ).map(msgspec.json.encode),
)
hostile_keys = st.one_of(st.binary(max_size=64), st.integers(1000, 20_000).map(lambda n: b"k" * n))
PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


def _one_outcome_per_record(stage: str, tmp_path, engine, good, out_role: str) -> None:
    pipeline = _pipeline(tmp_path, engine)
    handle = {"extractor": pipeline.extractor.handle, "generator": pipeline.generator.handle}.get(
        stage, pipeline.judge.handle
    )
    source = {"extractor": T.PAPERS, "generator": T.EXTRACTED}.get(stage, T.GENERATED)
    loop = asyncio.new_event_loop()
    counter = {"n": 0}

    @PROPERTY
    @given(value=hostile_values, key=hostile_keys)
    def feed(value, key):
        out = getattr(pipeline.topics, out_role)
        before = (len(pipeline.topics.dlq.sent), len(out.sent))
        counter["n"] += 1
        loop.run_until_complete(handle(Event(value, Message(source, 0, counter["n"], key))))
        dead = len(pipeline.topics.dlq.sent) - before[0]
        sent = len(out.sent) - before[1]
        assert (dead, sent) in ((1, 0), (0, 1)) or (stage == "judge" and sent >= 1), (dead, sent)
        if dead:
            assert len(pipeline.topics.dlq.sent[-1][0]) <= 1024

    try:
        feed()
        # and the stage goes on
        out = getattr(pipeline.topics, out_role)
        before = len(out.sent)
        loop.run_until_complete(handle(Event(good, Message(source, 0, 10**6, b"good"))))
        assert len(out.sent) > before
    finally:
        pipeline.close()
        loop.close()
    assert counter["n"] >= 60


def test_property_extractor(tmp_path):
    _one_outcome_per_record("extractor", tmp_path, None, _paper("good", pdf_bytes=GOOD), "extracted")


def test_property_generator(tmp_path):
    _one_outcome_per_record("generator", tmp_path, ScriptedEngine([GOOD_GENERATION]), _extracted("good"), "generated")


def test_property_judge(tmp_path):
    _one_outcome_per_record("judge", tmp_path, ScriptedEngine([GOOD_JUDGEMENT]), _generated("good", 1), "scored")


def test_property_sink_scored_and_dlq(tmp_path):
    """Each record on sciqag.qa.scored is either stored (taken by the check) or one dead letter; each on sciqag.dlq
    is one dead_letters row (its own, or the sink's for a record that is not a DeadLetter); a bad record on
    sciqag.extracted / .qa.generated (kept for paper_texts / paper_contexts) is skipped, the generator's or judge's
    to dead-letter. prepare() only: the chDB round trip is the deep-record test above."""
    pipeline = _pipeline(tmp_path)
    loop = asyncio.new_event_loop()

    @PROPERTY
    @given(
        records=st.lists(
            st.tuples(st.sampled_from([T.SCORED, T.DLQ, T.EXTRACTED, T.GENERATED]), hostile_keys, hostile_values),
            min_size=1,
            max_size=5,
        )
    )
    def feed(records):
        batch_in = [Record(topic, 0, i, key, value) for i, (topic, key, value) in enumerate(records)]
        before = len(pipeline.topics.dlq.sent)
        batch = loop.run_until_complete(pipeline.sink.prepare(batch_in))
        dead = len(pipeline.topics.dlq.sent) - before
        scored = sum(1 for r in batch_in if r.topic == T.SCORED)
        assert len(batch.scored) + dead == scored
        assert len(batch.dlq_rows) == sum(1 for r in batch_in if r.topic == T.DLQ)
        assert all(len(k) <= 1024 for k, _ in pipeline.topics.dlq.sent[before:])

    try:
        feed()
        good = scored_run("p", [0])
        batch = loop.run_until_complete(pipeline.sink.prepare([Record(T.SCORED, 0, 0, b"p", encode(good[0]))]))
        assert len(batch.scored) == 1 and batch.completed
    finally:
        pipeline.close()
        loop.close()


def test_qa_scored_check_stays_total_on_deep_input():
    assert decode(encode(scored_run("p", [0])[0]), QAScored).qa_id


# -- slow: a real worker, a real broker, chDB ------------------------------------------------------------------------

from .conftest import sciqag_exe  # noqa: E402
from .e2e import metric, open_store, scrape_metrics  # noqa: E402


async def _produce(bootstrap: str, records: list[tuple[str, bytes, bytes]], max_request_size: int) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=max_request_size)
    await producer.start()
    try:
        for topic, key, value in records:
            await producer.send_and_wait(topic, key=key, value=value)
    finally:
        await producer.stop()


def _start_worker(broker: str, data, port: int, roots: list) -> subprocess.Popen:
    env = {**os.environ, "SCIQAG_FILE_ROOTS": os.pathsep.join(map(str, roots)), "SCIQAG_FETCH_TIMEOUT_S": "5"}
    cmd = [sciqag_exe(), "worker", "--agents", "extractor,sink", "--broker", broker, "--data-dir", str(data)]
    cmd += ["--metrics-port", str(port)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def _wait_metric(worker, port: int, name: str, at_least: float, timeout: float, **labels) -> float:
    deadline = time.monotonic() + timeout
    value = 0.0
    while time.monotonic() < deadline and worker.poll() is None:
        try:
            value = metric(scrape_metrics(port), name, **labels)
        except OSError:
            pass
        if value >= at_least:
            break
        time.sleep(0.5)
    return value


def _stop(worker: subprocess.Popen) -> str:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
    try:
        output, _ = worker.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        worker.kill()
        output, _ = worker.communicate()
    return output


@pytest.mark.slow
def test_a_worker_fed_hostile_records_processes_the_next_paper_and_dead_letters_each(tmp_path, free_port):
    """The issue's acceptance: two FIFO records, a 5 MB key, a 100,000-deep dead letter on sciqag.dlq and a 10 MB
    title, then a normal paper, in one run of `sciqag worker --agents extractor,sink`."""
    from processors.local.broker import tansu_broker

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    os.mkfifo(inbox / "fifo1.pdf")
    os.mkfifo(inbox / "fifo2.pdf")
    (inbox / "good.pdf").write_bytes(GOOD)
    data = tmp_path / "data"
    hostile = [
        (T.PAPERS, b"fifo-1", _paper("fifo-1", pdf_uri=(inbox / "fifo1.pdf").as_uri())),
        (T.PAPERS, b"fifo-2", _paper("fifo-2", pdf_uri=(inbox / "fifo2.pdf").as_uri())),
        (T.PAPERS, b"K" * 5_000_000, b"not json"),
        (T.DLQ, b"deep", deep(100_000, stage="extractor", error_kind="x", message="m", paper_id="deep")),
        (T.PAPERS, b"title", _paper("title", title="T" * 10_000_000, pdf_bytes=GOOD)),
    ]
    with tansu_broker(log_file=tmp_path / "tansu.log") as broker:
        worker = _start_worker(broker, data, free_port, [inbox])
        try:
            # a producer of its own with a larger request limit: ours would refuse the 5 MB key and the 10 MB title
            asyncio.run(_produce(bootstrap_servers(broker), hostile, 16 * 1024 * 1024))
            assert _wait_metric(worker, free_port, "sciqag_dlq_total", 4, 120, stage="extractor") >= 4
            sent = time.monotonic()
            asyncio.run(
                _produce(
                    bootstrap_servers(broker),
                    [(T.PAPERS, b"good", _paper("good", pdf_uri=(inbox / "good.pdf").as_uri()))],
                    MAX_REQUEST_BYTES,
                )
            )
            ok = _wait_metric(worker, free_port, "sciqag_papers_total", 1, 60, stage="extractor", outcome="ok")
            took = time.monotonic() - sent
            assert ok == 1, f"the normal paper was not extracted within a minute ({took:.0f} s)"
            # the sink stored the dead letters: 4 from the extractor and its own for the deep record
            stored = _wait_metric(worker, free_port, "sciqag_papers_total", 4, 30, stage="sink", outcome="failed")
            assert stored >= 4
            time.sleep(2)  # the sink's own dead letter (not a paper failure) lands in the same or the next batch
            assert worker.poll() is None, "the worker stopped"
            print(f"normal paper extracted {took:.1f} s after it was sent")
        finally:
            output = _stop(worker)
    assert worker.returncode == 0, output[-3000:]
    assert "K" * 1000 not in output  # the 5 MB key is never logged whole
    store = open_store(data)
    dead = store.query("SELECT paper_id, stage, error_kind, source_topic FROM sciqag.dead_letters FINAL")
    papers = store.query("SELECT paper_id, status FROM sciqag.papers FINAL")
    store.close()
    kinds = sorted((d["stage"], d["error_kind"], d["paper_id"][:8]) for d in dead)
    assert kinds == [
        ("extractor", "field_too_large", "title"),
        ("extractor", "key_too_large", "KKKKKKKK"),
        ("extractor", "not_a_regular_file", "fifo-1"),
        ("extractor", "not_a_regular_file", "fifo-2"),
        ("sink", "too_deeply_nested", "deep"),
    ], kinds
    assert max(len(d["paper_id"]) for d in dead) < 300
    assert {p["paper_id"]: p["status"] for p in papers} == {
        "fifo-1": "failed",
        "fifo-2": "failed",
        "title": "failed",
        dead[[d["error_kind"] for d in dead].index("key_too_large")]["paper_id"]: "failed",
    }


@pytest.mark.slow
def test_a_sigkilled_worker_leaves_no_descendant_alive(tmp_path, free_port):
    """Issue 25, case 8: the extraction processes (spawned, ~150 MB each) and the resource tracker of a worker
    killed with SIGKILL must not live on with parent pid 1."""
    from processors.local.broker import tansu_broker

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "good.pdf").write_bytes(GOOD)
    with tansu_broker(log_file=tmp_path / "tansu.log") as broker:
        worker = _start_worker(broker, tmp_path / "data", free_port, [inbox])
        try:
            asyncio.run(
                _produce(
                    bootstrap_servers(broker),
                    [(T.PAPERS, b"good", _paper("good", pdf_uri=(inbox / "good.pdf").as_uri()))],
                    MAX_REQUEST_BYTES,
                )
            )
            assert _wait_metric(worker, free_port, "sciqag_papers_total", 1, 120, stage="extractor", outcome="ok") == 1
            descendants = psutil.Process(worker.pid).children(recursive=True)
            extraction = [p for p in descendants if "multiprocessing" in " ".join(p.cmdline())]
            assert any("spawn_main" in " ".join(p.cmdline()) for p in extraction), [p.cmdline() for p in descendants]
            rss = {p.pid: p.memory_info().rss // 2**20 for p in extraction}
            # the reaper goes first: it would kill what it saw, but not what was started after its last look (a
            # pool and its resource tracker started within that second are what lived on). Without it, the
            # extraction process dies by its parent-death signal, and the tracker when its last writer is gone
            reapers = [p for p in descendants if "known = {}" in " ".join(p.cmdline())]
            assert len(reapers) == 1
            reapers[0].kill()
            time.sleep(0.5)  # a zombie of the worker's now
            worker.send_signal(signal.SIGKILL)
            worker.wait(30)
            deadline = time.monotonic() + 10
            alive = descendants
            while alive and time.monotonic() < deadline:
                time.sleep(0.25)
                alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
            print(f"descendants of the worker: {len(descendants)}, extraction/tracker RSS MiB {rss}; alive: {alive}")
            assert not alive, [(p.pid, p.cmdline()) for p in alive]
        finally:
            if worker.poll() is None:
                worker.kill()
            worker.communicate()
