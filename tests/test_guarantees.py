"""At-least-once delivery, exactly-once results: `sciqag worker` killed with SIGKILL again and again.

Real parts: a Tansu broker, chDB under the worker's data dir, and a real `vllm serve` (so a restarted worker
does not pay for an engine start). 50 distinct papers are published once; the worker is killed at
different stages, once by its own sink right after an insert and before the commit, and finally runs
until the sink's committed offsets reach the end of its topics. Then every paper must be in ClickHouse
exactly once (scored or failed, with its dead letter), with no pair twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from processors.errors import StoreError
from processors.ingest.publish import record_for_file
from processors.kafka import bootstrap_servers
from processors.local import broker as embedded
from processors.local.broker import stop_process, tansu_broker
from processors.pipeline.sink import sink_group
from processors.settings import Settings
from processors.store import Store
from schemas import DeadLetter, QAScored, decode, encode
from schemas import topics as T

from .clickhouse_http import start_clickhouse_http
from .conftest import sciqag_exe
from .e2e import metric, open_store, scrape_metrics, stored_outcome
from .stage_harness import scored_run
from .synthetic import write_paper_copies, write_papers
from .tcp_proxy import TcpProxy

PAPERS = 50
CLICKHOUSE_PASSWORD = "canary-ch-4d2b81"  # must never show in a worker's log
SINK_GROUP = sink_group("sciqag")  # the sink's own consumer group (processors/sink.py); "sciqag" is the app id


@dataclass
class Progress:
    # per paper, how many times its last pair or a failing dead letter reached a topic (a run of it completed)
    completions: Counter = field(default_factory=Counter)
    sink_lag: int = -1  # records on the sink's topics not yet committed by its group

    @property
    def completed(self) -> set[str]:
        return set(self.completions)


async def _progress(bootstrap: str) -> Progress:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    group = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=SINK_GROUP, enable_auto_commit=False)
    await reader.start()
    await group.start()
    try:
        tps = [
            TopicPartition(topic, p)
            for topic in (T.SCORED, T.DLQ)
            for p in sorted(reader.partitions_for_topic(topic) or ())
        ]
        progress = Progress()
        if not tps:
            return progress
        # the end of each partition is found by reading to it: Tansu's ListOffsets answers with the base offset
        # of the last batch + 1, not the high watermark, when a batch holds several records
        ends = {tp: 0 for tp in tps}
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        quiet_polls = 0
        while quiet_polls < 2:
            batch = await reader.getmany(timeout_ms=1000)
            if not batch:
                quiet_polls += 1
                continue
            quiet_polls = 0
            for tp, messages in batch.items():
                for m in messages:
                    if tp.topic == T.SCORED:
                        rec = decode(m.value, QAScored)
                        if rec.sequence == rec.pair_count - 1:
                            progress.completions[rec.paper.paper_id] += 1
                    else:
                        dead = decode(m.value, DeadLetter)
                        if dead.paper_failed:
                            progress.completions[dead.paper_id] += 1
                if messages:
                    ends[tp] = messages[-1].offset + 1
        lag = 0
        for tp in tps:
            committed = await group.committed(tp)
            lag += ends[tp] - (committed or 0)
        progress.sink_lag = lag
        return progress
    finally:
        await reader.stop()
        await group.stop()


def _wait_serving_metrics(proc: subprocess.Popen, port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            scrape_metrics(port)
            return
        except OSError:  # not serving metrics yet
            time.sleep(0.3)


def _run_until(cmd: list[str], env: dict, log_file: Path, broker: str, done, what: str) -> Progress:
    """Run a worker until `done(progress)` holds, then stop it with SIGTERM (it must exit cleanly)."""
    with open(log_file, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 900
            progress = Progress()
            while time.monotonic() < deadline and proc.poll() is None:
                progress = asyncio.run(_progress(bootstrap_servers(broker)))
                if done(progress):
                    break
                time.sleep(3)
            assert done(progress), (
                f"{what}: not done; {len(progress.completions)} papers complete, sink lag "
                f"{progress.sink_lag}:\n" + log_file.read_text()[-3000:]
            )
        finally:
            stop_process(proc, 60)
    assert proc.returncode == 0, log_file.read_text()[-3000:]
    return progress


def _wait_for_metric(proc, port: int, name: str, labels: dict, at_least: float, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    value = 0.0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            value = metric(scrape_metrics(port), name, **labels)
        except OSError:
            value = 0.0  # the endpoint is not up yet
        if value >= at_least:
            break
        time.sleep(0.2)
    return value


@pytest.mark.slow
def test_sigkilled_worker_loses_no_paper_and_duplicates_nothing(tmp_path, free_port, vllm_server):
    inbox = tmp_path / "inbox"
    papers = write_papers(inbox, PAPERS)
    expected = {record_for_file(p).paper_id for p in papers}
    assert len(expected) == PAPERS
    data = tmp_path / "data"
    rng = random.Random()
    seed = rng.randrange(10**6)
    rng.seed(seed)
    print(f"kill delays drawn with seed {seed}")

    with tansu_broker(log_file=tmp_path / "tansu.log") as broker:
        env = {
            **os.environ,
            "SCIQAG_FILE_ROOTS": str(inbox),
            "SCIQAG_QUALITY_METRICS": "0",
            "SCIQAG_GENERATION_MAX_TOKENS": "400",
            "SCIQAG_JUDGE_MAX_TOKENS": "240",
            "SCIQAG_LOG_LEVEL": "INFO",
            "SCIQAG_KAFKA_SESSION_TIMEOUT_S": "6",
        }
        cmd = [
            sciqag_exe(),
            "worker",
            "--broker",
            broker,
            "--data-dir",
            str(data),
            "--metrics-port",
            str(free_port),
            # one pair a paper: the LLM's tokens are most of this test's time (CI), and delivery is what it tests
            "--llm-url",
            f"{vllm_server}/v1",
            "--model",
            "sciqag-llm",
            "--pairs",
            "1",
            "--keywords",
            "3",
            "--mcq",
            "0",
            "--max-context-tokens",
            "400",
            "--max-model-len",
            "4096",
        ]
        publish = subprocess.run(
            [sciqag_exe(), "publish", "--broker", broker, str(inbox)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert publish.returncode == 0, publish.stderr
        assert f"published {PAPERS} papers" in publish.stdout

        # (what to wait for, how many, then kill after up to this many seconds)
        kills = [
            ("extractor", {"stage": "extractor", "outcome": "ok"}, 1, 0.0),
            ("generator", {"stage": "generator", "outcome": "ok"}, 2, 3.0),
            ("judge", {"stage": "judge", "outcome": "ok"}, 2, 3.0),
            ("sink after insert, before commit", None, 0, 0.0),
            ("sink", {"stage": "sink", "outcome": "scored"}, 3, 2.0),
        ]
        log_files = []
        performed = []
        for number, (where, labels, at_least, max_delay) in enumerate(kills, 1):
            log_files.append(tmp_path / f"worker-{number}.log")
            run_env = dict(env)
            if labels is None:
                run_env["SCIQAG_FAULT_KILL_AFTER_SINK_BATCHES"] = "2"
            with open(log_files[-1], "w") as log:
                proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=run_env)
                try:
                    if labels is None:
                        proc.wait(timeout=400)  # the worker kills itself
                    else:
                        seen = _wait_for_metric(proc, free_port, "sciqag_papers_total", labels, at_least, 400)
                        time.sleep(rng.uniform(0, max_delay))
                        assert proc.poll() is None, (
                            f"worker {number} exited by itself:\n{log_files[-1].read_text()[-3000:]}"
                        )
                        assert seen >= at_least, f"worker {number}: {where} never reached {at_least}"
                        proc.send_signal(signal.SIGKILL)
                        proc.wait(timeout=30)
                finally:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()
            assert proc.returncode == -signal.SIGKILL, f"worker {number} ended with {proc.returncode}"
            performed.append(where)

        # the last worker runs until every paper is complete on the topics and the sink has committed all of it
        progress = _run_until(
            cmd,
            env,
            tmp_path / "worker-final.log",
            broker,
            lambda p: p.completed >= expected and p.sink_lag == 0,
            "every paper",
        )
        before_replay = Counter(progress.completions)

        # replay five papers (whatever their outcome) through a fresh worker: results replaced, not added
        replayed = sorted(expected)[:5]
        replay_started = datetime.now(UTC)
        replay = subprocess.run(
            [
                sciqag_exe(),
                "replay",
                "--broker",
                broker,
                "--data-dir",
                str(data),
                *(arg for pid in replayed for arg in ("--paper-id", pid)),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert replay.returncode == 0, replay.stderr
        assert "replayed 5 papers" in replay.stdout
        _run_until(
            cmd,
            env,
            tmp_path / "worker-replay.log",
            broker,
            lambda p: all(p.completions[pid] > before_replay[pid] for pid in replayed) and p.sink_lag == 0,
            "the replayed papers",
        )

    store = open_store(data)
    try:
        outcome = stored_outcome(store)
    finally:
        store.close()

    scored = outcome.scored
    print(f"{PAPERS} papers, {len(performed)} kills ({', '.join(performed)}): {outcome.summary()}")
    assert len(performed) == len(kills)
    outcome.assert_each_paper_once(set(expected))
    assert len(scored) >= PAPERS // 2, "most papers should be scored, not failed"
    # ClickHouse hands DateTime64 columns back without a zone; the table stores UTC
    stored_at = {r["paper_id"]: r["updated_at"].replace(tzinfo=r["updated_at"].tzinfo or UTC) for r in outcome.papers}
    assert all(stored_at[pid] >= replay_started for pid in replayed), "a replayed paper was not stored again"


# -- ClickHouse going away and coming back -----------------------------------------------------------------------


async def _send_scored(bootstrap: str, papers: range) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for n in papers:
            pid = f"p-outage-{n:04d}"
            if n % 20 == 0:  # some papers fail instead
                await producer.send(
                    T.DLQ,
                    key=pid.encode(),
                    value=encode(
                        DeadLetter(stage="extractor", error_kind="corrupt_pdf", message="broken", paper_id=pid)
                    ),
                )
                continue
            for record in scored_run(pid, [0, 1]):
                await producer.send(T.SCORED, key=pid.encode(), value=encode(record))
        await producer.flush()
    finally:
        await producer.stop()


def _rss_mib(pid: int) -> float:
    """RSS of a worker and its children (the extraction process pool): what a container limit counts."""
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


@pytest.mark.slow
def test_sink_holds_its_batches_while_clickhouse_is_away_and_drains_when_it_returns(tmp_path):
    """A real ClickHouse engine behind HTTP is killed mid-stream and started again on the same data.

    It takes a password, which the worker gets from SCIQAG_CLICKHOUSE_PASSWORD; the worker logs at DEBUG level, and
    its log — connection errors and retries included — must not contain the password."""
    ch_port, metrics_port = embedded.free_port(), embedded.free_port()
    ch_dir, ch_log = tmp_path / "clickhouse", tmp_path / "clickhouse.log"
    clickhouse = start_clickhouse_http(ch_dir, ch_port, ch_log, password=CLICKHOUSE_PASSWORD)
    dsn = f"http://default@127.0.0.1:{ch_port}/?compress=false"
    with pytest.raises(StoreError, match="Authentication failed"):  # the password is needed, so the worker used it
        Store(Settings(clickhouse_dsn=dsn, clickhouse_password=""))
    before, during = range(0, 100), range(100, 400)
    expected_failed = {f"p-outage-{n:04d}" for n in (*before, *during) if n % 20 == 0}
    try:
        with tansu_broker(log_file=tmp_path / "tansu.log") as broker:
            bootstrap = bootstrap_servers(broker)
            env = {
                **os.environ,
                "SCIQAG_CLICKHOUSE_DSN": dsn,
                "SCIQAG_CLICKHOUSE_PASSWORD": CLICKHOUSE_PASSWORD,
                "SCIQAG_LOG_LEVEL": "DEBUG",
            }
            log_file = tmp_path / "worker.log"
            with open(log_file, "w") as log:
                worker = subprocess.Popen(
                    [
                        sciqag_exe(),
                        "worker",
                        "--agents",
                        "sink",
                        "--broker",
                        broker,
                        "--data-dir",
                        str(tmp_path / "data"),
                        "--metrics-port",
                        str(metrics_port),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
                try:

                    def stored() -> float:
                        return metric(scrape_metrics(metrics_port), "sciqag_papers_total", stage="sink")

                    _wait_serving_metrics(worker, metrics_port, timeout=60)
                    time.sleep(5)  # the group's first join
                    asyncio.run(_send_scored(bootstrap, before))
                    seen = _wait_for_metric(worker, metrics_port, "sciqag_papers_total", {"stage": "sink"}, 100, 120)
                    assert seen == 100, log_file.read_text()[-3000:]
                    rss_before = _rss_mib(worker.pid)

                    clickhouse.kill()  # ClickHouse goes away, without a goodbye
                    clickhouse.wait()
                    asyncio.run(_send_scored(bootstrap, during))
                    retries = _wait_for_metric(worker, metrics_port, "sciqag_sink_insert_retries_total", {}, 4, 120)
                    assert retries >= 4, log_file.read_text()[-3000:]
                    rss_peak, lag_during = rss_before, 0
                    for _ in range(10):  # ClickHouse stays away ~10 s more; the worker waits, holding its batch
                        rss_peak = max(rss_peak, _rss_mib(worker.pid))
                        time.sleep(1)
                    lag_during = asyncio.run(_progress(bootstrap)).sink_lag
                    stored_during = stored()
                    assert worker.poll() is None, log_file.read_text()[-3000:]
                    assert lag_during > 0, "offsets were committed for rows ClickHouse never took"
                    assert stored_during < 400

                    clickhouse = start_clickhouse_http(ch_dir, ch_port, ch_log, password=CLICKHOUSE_PASSWORD)  # back
                    seen = _wait_for_metric(worker, metrics_port, "sciqag_papers_total", {"stage": "sink"}, 400, 180)
                    deadline = time.monotonic() + 60
                    while asyncio.run(_progress(bootstrap)).sink_lag != 0 and time.monotonic() < deadline:
                        time.sleep(1)
                    lag_after = asyncio.run(_progress(bootstrap)).sink_lag
                    rss_after = _rss_mib(worker.pid)
                    retries = metric(scrape_metrics(metrics_port), "sciqag_sink_insert_retries_total")
                finally:
                    stop_process(worker, 60)
            worker_log = log_file.read_text()
        store = Store(Settings(clickhouse_dsn=dsn, clickhouse_password=CLICKHOUSE_PASSWORD))
        try:
            papers = store.query(
                "SELECT status, count() AS n, uniqExact(paper_id) AS ids FROM sciqag.papers FINAL "
                "GROUP BY status ORDER BY status"
            )
            pairs = store.query("SELECT count() AS n, uniqExact(qa_id) AS ids FROM sciqag.qa_pairs FINAL")[0]
            failed = {
                r["paper_id"] for r in store.query("SELECT paper_id FROM sciqag.papers FINAL WHERE status = 'failed'")
            }
        finally:
            store.close()
    finally:
        clickhouse.kill()
        clickhouse.wait()

    print(
        f"ClickHouse away ~{retries:.0f} retries; sink lag while away {lag_during}, after {lag_after}; "
        f"papers stored while away {stored_during:.0f} of 400; worker RSS {rss_before:.0f} MiB before, "
        f"{rss_peak:.0f} MiB peak while away, {rss_after:.0f} MiB after; worker log "
        f"{len(worker_log.splitlines())} lines at DEBUG, {worker_log.count('ClickHouse')} naming ClickHouse"
    )
    assert CLICKHOUSE_PASSWORD not in worker_log, "the ClickHouse password is in the worker's log"
    assert seen == 400, "the sink did not drain after ClickHouse came back"
    assert lag_after == 0
    assert {r["status"]: (r["n"], r["ids"]) for r in papers} == {"failed": (20, 20), "scored": (380, 380)}
    assert failed == expected_failed
    assert pairs["n"] == pairs["ids"] == 760
    assert rss_peak - rss_before < 200, "the worker's memory grew while ClickHouse was away"


# -- the broker out of reach -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_worker_reconnects_after_losing_the_broker_and_loses_nothing(tmp_path):
    """The network path to the broker is cut for 20 s (open connections reset, new ones refused), then restored.
    The broker keeps running behind a proxy (its storage is in memory, so it cannot itself restart)."""
    broker_port, proxy_port, metrics_port = embedded.free_port(), embedded.free_port(), embedded.free_port()
    data = tmp_path / "data"
    log_file = tmp_path / "worker.log"
    expected_failed = {f"p-outage-{n:04d}" for n in range(100) if n % 20 == 0}
    with (
        tansu_broker(port=broker_port, advertised_port=proxy_port, log_file=tmp_path / "tansu.log") as broker,
        TcpProxy(proxy_port, broker_port) as proxy,
    ):
        bootstrap = bootstrap_servers(broker)
        env = {**os.environ, "SCIQAG_LOG_LEVEL": "INFO"}
        with open(log_file, "w") as log:
            worker = subprocess.Popen(
                [
                    sciqag_exe(),
                    "worker",
                    "--agents",
                    "sink",
                    "--broker",
                    broker,
                    "--data-dir",
                    str(data),
                    "--metrics-port",
                    str(metrics_port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
            try:
                _wait_serving_metrics(worker, metrics_port, timeout=60)
                time.sleep(5)  # the group's first join
                asyncio.run(_send_scored(bootstrap, range(0, 50)))
                seen = _wait_for_metric(worker, metrics_port, "sciqag_papers_total", {"stage": "sink"}, 50, 120)
                assert seen == 50, log_file.read_text()[-3000:]
                lines_before = len(log_file.read_text().splitlines())

                proxy.cut()
                time.sleep(20)
                assert worker.poll() is None, "the worker died without its broker:\n" + log_file.read_text()[-3000:]
                complaints = len(log_file.read_text().splitlines()) - lines_before
                proxy.restore()

                asyncio.run(_send_scored(bootstrap, range(50, 100)))
                seen = _wait_for_metric(worker, metrics_port, "sciqag_papers_total", {"stage": "sink"}, 100, 180)
                deadline = time.monotonic() + 60
                while asyncio.run(_progress(bootstrap)).sink_lag != 0 and time.monotonic() < deadline:
                    time.sleep(1)
                lag_after = asyncio.run(_progress(bootstrap)).sink_lag
            finally:
                stop_process(worker, 60)
    store = open_store(data)
    try:
        papers = store.query(
            "SELECT status, count() AS n, uniqExact(paper_id) AS ids FROM sciqag.papers FINAL "
            "GROUP BY status ORDER BY status"
        )
        pairs = store.query("SELECT count() AS n, uniqExact(qa_id) AS ids FROM sciqag.qa_pairs FINAL")[0]
        failed = {
            r["paper_id"] for r in store.query("SELECT paper_id FROM sciqag.papers FINAL WHERE status = 'failed'")
        }
    finally:
        store.close()
    print(
        f"broker cut for 20 s: {complaints} log lines from the worker meanwhile; afterwards {seen:.0f} of 100 "
        f"papers stored, sink lag {lag_after}"
    )
    assert complaints > 0, "the worker never noticed the broker was gone: the cut did not cut"
    assert seen == 100, "the worker did not pick up again after the broker came back"
    assert lag_after == 0
    assert {r["status"]: (r["n"], r["ids"]) for r in papers} == {"failed": (5, 5), "scored": (95, 95)}
    assert failed == expected_failed
    assert pairs["n"] == pairs["ids"] == 190


# -- a burst of 1,000 papers -------------------------------------------------------------------------------------

BURST = 1000


def _compose_memory_limit_mib() -> float:
    """The memory limit every worker container runs under in docker-compose.yml: the bound the test holds to."""
    import yaml

    compose = yaml.safe_load((Path(__file__).parent.parent / "docker-compose.yml").read_text())
    limit = str(compose["x-worker"]["mem_limit"]).lower()
    units = {"k": 1 / 1024, "m": 1, "g": 1024}
    return float(limit[:-1]) * units[limit[-1]]


@pytest.mark.slow
def test_a_burst_of_1000_papers_keeps_the_worker_under_its_memory_bound(tmp_path, free_port, vllm_server):
    """1,000 papers of ~0.5 MiB each, inline, land on the input topic at once while one worker runs all four agents
    (the LLM behind `vllm serve`, as deployed). The extractor takes the whole burst; the generator is far slower, so
    work piles up in front of it. The worker's memory must stay under the compose file's limit, and the LLM requests
    in flight under SCIQAG_MAX_IN_FLIGHT. ClickHouse is a server of its own, as in the compose file (a chDB engine
    behind HTTP): an in-process chDB would put the database's memory in the worker's, which the deployment does not
    (the sink stores every paper's text since issue 18)."""
    from processors.ingest.publish import produce

    bound_mib = _compose_memory_limit_mib()
    max_in_flight = 4
    inbox = tmp_path / "inbox"
    files = write_paper_copies(inbox, BURST)
    settings = Settings()
    records = [record_for_file(p, source_feed="burst-test", inline_limit=settings.max_inline_bytes) for p in files]
    assert all(r.pdf_bytes for r in records) and len({r.paper_id for r in records}) == BURST
    burst_mib = sum(len(r.pdf_bytes) for r in records) / 2**20

    ch_port = embedded.free_port()
    clickhouse = start_clickhouse_http(tmp_path / "clickhouse", ch_port, tmp_path / "clickhouse.log")
    with contextlib.ExitStack() as cleanup, tansu_broker(log_file=tmp_path / "tansu.log") as broker:
        cleanup.callback(stop_process, clickhouse, 10)
        env = {
            **os.environ,
            "SCIQAG_CLICKHOUSE_DSN": f"http://default@127.0.0.1:{ch_port}/?compress=false",
            "SCIQAG_QUALITY_METRICS": "0",
            "SCIQAG_GENERATION_MAX_TOKENS": "200",
            "SCIQAG_JUDGE_MAX_TOKENS": "200",
            "SCIQAG_LOG_LEVEL": "INFO",
            "SCIQAG_MAX_IN_FLIGHT": str(max_in_flight),
        }
        cmd = [
            sciqag_exe(),
            "worker",
            "--broker",
            broker,
            "--data-dir",
            str(tmp_path / "data"),
            "--metrics-port",
            str(free_port),
            "--llm-url",
            f"{vllm_server}/v1",
            "--model",
            "sciqag-llm",
            "--pairs",
            "2",
            "--keywords",
            "3",
            "--mcq",
            "0",
            "--max-context-tokens",
            "400",
            "--max-model-len",
            "4096",
        ]
        log_file = tmp_path / "worker.log"
        with open(log_file, "w") as log:
            worker = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            try:
                _wait_serving_metrics(worker, free_port)
                time.sleep(8)  # the group's first join
                rss_idle = _rss_mib(worker.pid)
                burst_at = time.monotonic()
                asyncio.run(produce(Settings(broker_url=broker), records))
                published_in = time.monotonic() - burst_at
                peak_rss, peak_in_flight, extracted, extracted_at = rss_idle, 0.0, 0.0, None
                deadline = burst_at + 480
                while time.monotonic() < deadline and worker.poll() is None:
                    peak_rss = max(peak_rss, _rss_mib(worker.pid))
                    try:
                        samples = scrape_metrics(free_port)
                    except OSError:
                        samples = {}
                    peak_in_flight = max(peak_in_flight, metric(samples, "sciqag_llm_requests_in_flight"))
                    extracted = metric(samples, "sciqag_papers_total", stage="extractor")
                    if extracted >= BURST and extracted_at is None:
                        extracted_at = time.monotonic()
                    if extracted_at is not None and time.monotonic() - extracted_at > 10:
                        break  # the generator has had a while with a full queue in front of it
                    time.sleep(0.25)
                assert worker.poll() is None, log_file.read_text()[-3000:]
                hwm = 0.0
                for line in Path(f"/proc/{worker.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        hwm = int(line.split()[1]) / 1024  # the kernel's own peak RSS of the main process
                generated = metric(scrape_metrics(free_port), "sciqag_papers_total", stage="generator")
            finally:
                stop_process(worker, 60)

    took = (extracted_at or time.monotonic()) - burst_at
    print(
        f"burst of {BURST} papers ({burst_mib:.0f} MiB inline) published in {published_in:.0f} s; "
        f"the extractor had taken them all {took:.0f} s after the burst began; "
        f"generator finished {generated:.0f} meanwhile; worker RSS idle {rss_idle:.0f} MiB, peak {peak_rss:.0f} MiB "
        f"with children (main process VmHWM {hwm:.0f} MiB), bound {bound_mib:.0f} MiB; "
        f"LLM requests in flight at most {peak_in_flight:.0f} (cap {max_in_flight})"
    )
    assert extracted >= BURST, f"the extractor took only {extracted:.0f} of {BURST} papers"
    assert 0 < peak_in_flight <= max_in_flight
    assert max(peak_rss, hwm) < bound_mib, "the worker outgrew the memory its container is given"
