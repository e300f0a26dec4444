"""Scale-out, proven: two workers of each role on one consumer group, one of each SIGKILLed under load, watched by
a real Prometheus server.

Real parts (tests/scale_out.py): Tansu with 4 partitions a topic, chDB behind ClickHouse's HTTP interface (six
writers), `sciqag worker --agents extractor` ×2, `--agents generator,judge` ×2 and `--agents sink` ×2 as separate
processes, Debian's `prometheus` with deploy/prometheus/prometheus.yml and alerts.yml. The LLM is the instant
stand-in (tests/llm_standin.py, a Starlette server behind the HTTP backend) for the volume; the real engine runs
the same topology on a few papers in the second test.
"""

from __future__ import annotations

import random
import subprocess
import time
from collections import Counter

import pymupdf
import pytest

from processors.ingest.publish import record_for_file
from processors.local.broker import free_port, stop_process, tansu_broker

from .clickhouse_http import start_clickhouse_http
from .conftest import sciqag_exe
from .e2e import metric, stored_outcome
from .llm_standin import MODEL, start_llm_standin
from .scale_out import (
    APP_GROUP,
    ROLE_TOPICS,
    SINK_GROUP,
    Deployment,
    Prometheus,
    create_topics,
    dashboard_queries,
    group_members,
    wait_until,
    worker_env,
)
from .synthetic import write_papers

pytestmark = pytest.mark.slow

PAPERS = 200  # good synthetic papers in the first wave
WAVE_2 = 24  # papers sent after the replacements joined
PARTITIONS = 4
ROLES = ("extractor", "generator,judge", "sink")
SHORT = {"extractor": "extractor", "generator,judge": "llm", "sink": "sink"}
LLM_ARGS = ["--pairs", "3", "--keywords", "3", "--mcq", "0", "--max-context-tokens", "1500"]
# a replacement joins in ~5 s here, alone or beside an engine test; one CI run (beside the engine tests) waited over
# 180 s for the extractor's, cause not caught: a failed join now prints the members and the workers' logs
JOIN_WAIT_S = 420
# a Russian page whose text layer is cp1251 read as Latin-1: the extractor repairs it (sciqag_extraction_pages_total)
MOJIBAKE = "ЗАКОН КЮРИ. Магнитная восприимчивость парамагнетика обратно пропорциональна абсолютной температуре. " * 8


def _write_inbox(inbox):
    papers = write_papers(inbox, PAPERS)
    doc = pymupdf.open()
    doc.new_page().insert_textbox(pymupdf.Rect(60, 60, 540, 800), MOJIBAKE.encode("cp1251").decode("latin-1"))
    (inbox / "mojibake.pdf").write_bytes(doc.tobytes())
    bad = []
    for n in range(3):  # each is dead-lettered by the extractor, and stored as a failed paper
        path = inbox / f"broken_{n}.pdf"
        path.write_bytes(b"%PDF-1.4\n" + f"broken {n} ".encode() * 50)
        bad.append(path)
    return [*papers, inbox / "mojibake.pdf"], bad


def _publish(deployment: Deployment, paths) -> None:
    proc = subprocess.run(
        [sciqag_exe(), "publish", "--broker", deployment.broker, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        env=deployment.env,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"published {len(paths)} papers" in proc.stdout, proc.stdout


def _stored(store) -> dict:
    papers = store.query("SELECT count() AS n, uniqExact(paper_id) AS ids FROM sciqag.papers FINAL")[0]
    pairs = store.query("SELECT count() AS n, uniqExact(qa_id) AS ids FROM sciqag.qa_pairs FINAL")[0]
    return {"papers": papers["n"], "paper_ids": papers["ids"], "pairs": pairs["n"], "pair_ids": pairs["ids"]}


def _holders(workers, role) -> dict[str, set]:
    return {w.name: w.held() for w in workers if w.role == role and w.alive()}


def _rebalances(worker) -> float:
    """Rebalances of the agents' group this worker went through (Faust's own count)."""
    return metric(worker.metrics(), "faust_rebalance_done_latency_count")


def _stable(read, seconds: float, timeout: float = 60):
    """A value that has not changed for `seconds`."""
    deadline = time.monotonic() + timeout
    value, since = read(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = read()
        if now != value:
            value, since = now, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return value
    raise AssertionError(f"still changing after {timeout:.0f} s")


def _join_failure(dep: Deployment, role: str) -> str:
    """What a failed join leaves to read: who holds what, the groups' members, each live worker's log tail."""
    import asyncio

    lines = [f"holders: {_holders(dep.workers, role)}"]
    try:
        lines.append(f"members: {asyncio.run(group_members(dep.bootstrap, [APP_GROUP, SINK_GROUP]))}")
    except Exception as exc:  # the diagnosis must not hide the failure
        lines.append(f"members: not read ({exc!r})")
    for w in dep.workers:
        if w.role == role and w.alive():
            lines.append(f"--- {w.name}.log (end)\n{w.log.read_text(errors='replace')[-2500:]}")
    return "\n".join(lines)


def _covers_all(held: dict[str, set], role: str) -> bool:
    """Every partition of the role's topics held by exactly one live member."""
    _, topics = ROLE_TOPICS[role]
    every = [tp for tps in held.values() for tp in tps]
    return len(every) == len(set(every)) and set(every) == {(t, p) for t in topics for p in range(PARTITIONS)}


def test_two_workers_of_each_role_one_of_each_killed_lose_nothing_and_prometheus_adds_them_up(tmp_path):
    from processors.settings import Settings
    from processors.store import Store

    inbox = tmp_path / "inbox"
    good, bad = _write_inbox(inbox)
    expected = {record_for_file(p).paper_id for p in [*good, *bad]}
    assert len(expected) == PAPERS + 4
    rng = random.Random()
    seed = rng.randrange(10**6)
    rng.seed(seed)

    ch_port, llm_port = free_port(), free_port()
    dsn = f"http://default@127.0.0.1:{ch_port}/?compress=false"
    clickhouse = start_clickhouse_http(tmp_path / "clickhouse", ch_port, tmp_path / "clickhouse.log")
    llm = start_llm_standin(llm_port, tmp_path / "llm.log", delay_ms=20)
    # six workers, then one replacement of each killed one, each on its own port: Prometheus knows all nine
    names = [f"{SHORT[r]}-{i}" for r in ROLES for i in (1, 2)] + [f"{SHORT[r]}-3" for r in ROLES]
    roles = {n: next(r for r in ROLES if n.startswith(SHORT[r])) for n in names}
    ports = {n: free_port() for n in names}
    report: list[str] = [f"seed {seed}"]
    prometheus = Prometheus(
        tmp_path / "prometheus",
        [(n, SHORT[roles[n]], ports[n]) for n in names],
        {"vllm": [f"127.0.0.1:{llm_port}"]},
    )
    try:
        with tansu_broker(log_file=tmp_path / "tansu.log") as broker:
            env = worker_env(
                SCIQAG_CLICKHOUSE_DSN=dsn,
                SCIQAG_LLM_URL=f"http://127.0.0.1:{llm_port}/v1",
                SCIQAG_MODEL=MODEL,
                SCIQAG_FILE_ROOTS=str(inbox),
                SCIQAG_QUALITY_METRICS="0",
                SCIQAG_KAFKA_SESSION_TIMEOUT_S="6",
                SCIQAG_TOPIC_PARTITIONS=str(PARTITIONS),
                SCIQAG_MAX_IN_FLIGHT="8",
                SCIQAG_SINK_BATCH_ROWS="200",
                # a shadow judge on a third of the live pairs (the same stand-in at another temperature: another
                # judge id), and the judges' figures published often, so the dashboard's judge panels have data
                SCIQAG_SHADOW_SHARE="0.3",
                SCIQAG_SHADOW_LLM_URL=f"http://127.0.0.1:{llm_port}/v1",
                SCIQAG_SHADOW_MODEL=MODEL,
                SCIQAG_SHADOW_TEMPERATURE="0.5",
                SCIQAG_JUDGE_METRICS_INTERVAL_S="5",
            )
            dep = Deployment(tmp_path, broker, env)
            import asyncio

            counts = asyncio.run(create_topics(dep.bootstrap, PARTITIONS))
            assert set(counts.values()) == {PARTITIONS}, counts
            try:
                for name in names[:6]:
                    dep.start_worker(name, roles[name], ports[name], LLM_ARGS)
                for role in ROLES:
                    wait_until(
                        lambda role=role: (
                            _covers_all(_holders(dep.workers, role), role) and all(_holders(dep.workers, role).values())
                        ),
                        180,
                        f"the two {role} workers sharing the partitions",
                        on_fail=lambda role=role: _holders(dep.workers, role),
                    )
                first = {role: _holders(dep.workers, role) for role in ROLES}
                # (Tansu 0.6 answers DescribeGroups for the Faust group with bytes aiokafka cannot decode: the sink's)
                members = asyncio.run(group_members(dep.bootstrap, [SINK_GROUP]))
                assert members == {SINK_GROUP: 2}, members
                report.append(f"assignment at start: {first}")
                _publish(dep, [*good, *bad])
                published_at = time.monotonic()

                by_name = {w.name: w for w in dep.workers}
                # (victim, the counter it must have moved itself, how far) — one role after the other, each while
                # papers are still in flight behind it
                plan = [
                    ("extractor-1", {"stage": "extractor", "outcome": "ok"}, 20),
                    ("llm-1", {"stage": "judge", "outcome": "ok"}, 20),
                    ("sink-1", {"stage": "sink", "outcome": "scored"}, 30),
                ]
                rebalances = {}
                for victim_name, labels, at_least in plan:
                    victim = by_name[victim_name]
                    role = victim.role
                    wait_until(
                        lambda v=victim, lab=labels, n=at_least: metric(v.metrics(), "sciqag_papers_total", **lab) >= n,
                        240,
                        f"{victim_name} reaching {at_least} {labels}",
                        poll=0.2,
                        on_fail=lambda v=victim: v.log.read_text()[-3000:],
                    )
                    if role == "sink":  # the agents' group must not notice a sink dying: no member of it was lost
                        extractor = by_name["extractor-2"]
                        agents_rebalances = _stable(lambda e=extractor: _rebalances(e), 3)
                        assert agents_rebalances >= 2, "Faust's rebalance count is not there to tell"  # start, kills
                    time.sleep(rng.uniform(0, 1.5))
                    had = victim.held()
                    in_flight = PAPERS + 4 - metric(by_name["sink-2"].metrics(), "sciqag_papers_total", stage="sink")
                    dep.kill(victim)
                    survivor = next(w for w in dep.workers if w.role == role and w.alive())
                    took = wait_until(
                        lambda r=role: _covers_all(_holders(dep.workers, r), r) and _holders(dep.workers, r),
                        120,
                        f"{survivor.name} taking over {victim_name}'s partitions",
                        poll=0.2,
                    )
                    rebalances[victim_name] = time.monotonic() - victim.killed_at
                    if role == "sink":
                        time.sleep(max(0.0, victim.killed_at + 15 - time.monotonic()))  # past 2 session timeouts
                        assert _rebalances(extractor) == agents_rebalances, "a sink's death rebalanced the agents"
                    assert had and had <= took[survivor.name], (had, took)
                    report.append(
                        f"killed {victim_name} (held {sorted(had)}) {victim.killed_at - published_at:.1f} s after "
                        f"publishing, ~{in_flight:.0f} papers not yet stored by sink-2; {survivor.name} held all "
                        f"{len(took[survivor.name])} partitions {rebalances[victim_name]:.1f} s later"
                    )
                    assert in_flight > 0, "the kill came after the work was done"

                # run to the end: every paper complete and every group's lag 0
                store = Store(Settings(clickhouse_dsn=dsn))
                wait_until(
                    lambda: _stored(store)["paper_ids"] >= PAPERS + 4 and dep.lag() == {APP_GROUP: 0, SINK_GROUP: 0},
                    300,
                    "every paper stored and lag 0",
                    poll=2,
                    on_fail=lambda: f"{_stored(store)} lag {dep.lag()}",
                )
                wave_1 = _stored(store)
                lag_1 = dep.lag()
                report.append(f"after the kills: stored {wave_1}, lag {lag_1}, {time.monotonic() - published_at:.0f} s")

                # the replacements join: each gets partitions again
                before = {role: _holders(dep.workers, role) for role in ROLES}
                for name in names[6:]:
                    dep.start_worker(name, roles[name], ports[name], LLM_ARGS)
                joined_at = time.monotonic()
                for role in ROLES:
                    after = wait_until(
                        lambda role=role: (
                            (h := _holders(dep.workers, role))
                            and len(h) == 2
                            and all(h.values())
                            and _covers_all(h, role)
                            and h
                        ),
                        JOIN_WAIT_S,
                        f"the replacement {role} worker receiving partitions",
                        on_fail=lambda role=role: _join_failure(dep, role),
                    )
                    report.append(
                        f"{role}: before the replacement {before[role]}, after {after}, "
                        f"{time.monotonic() - joined_at:.0f} s after starting"
                    )
                report.append(f"replacements held partitions {time.monotonic() - joined_at:.0f} s after starting")

                # a second wave, counted by Prometheus from the workers alive now (no restarts in between)
                t0 = prometheus.wait_scraped()
                counted_0 = {
                    "papers": prometheus.scalar('sum(sciqag_papers_total{stage="sink"})', t0),
                    "pairs": prometheus.scalar("sum(sciqag_qa_pairs_stored_total)", t0),
                }
                wave_2_paths = write_papers(inbox, WAVE_2, start=PAPERS)
                _publish(dep, wave_2_paths)
                expected |= {record_for_file(p).paper_id for p in wave_2_paths}
                wait_until(
                    lambda: _stored(store)["paper_ids"] >= len(expected) and dep.lag() == {APP_GROUP: 0, SINK_GROUP: 0},
                    180,
                    "the second wave stored and lag 0",
                    poll=2,
                )
                wave_2 = _stored(store)
                t1 = prometheus.wait_scraped()
                counted_1 = {
                    "papers": prometheus.scalar('sum(sciqag_papers_total{stage="sink"})', t1),
                    "pairs": prometheus.scalar("sum(sciqag_qa_pairs_stored_total)", t1),
                }
                per_worker = {
                    r["metric"]["worker"]: float(r["value"][1])
                    for r in prometheus.query(
                        'sum by (worker) (increase(sciqag_papers_total{stage=~"extractor|judge|sink", '
                        f'outcome=~"ok|scored"}}[{int(t1 - t0) + 5}s]))',
                        t1,
                    )
                }
                report.append(f"second wave, papers by worker (Prometheus): {per_worker}")
                live_now = {w.instance for w in dep.workers if w.alive()}
                targets = wait_until(  # a scrape of a worker busy on 2 shared cores may time out once
                    lambda: (
                        (t := prometheus.targets())
                        and {i for i, x in t.items() if x["health"] == "up"} >= live_now
                        and t
                    ),
                    30,
                    "every live worker a healthy target",
                    on_fail=lambda: {i: (x["health"], x["lastError"]) for i, x in prometheus.targets().items()},
                )
                alerts = prometheus.api("alerts")["alerts"]
                dashboard = {(title, expr): prometheus.query(expr) for title, expr in dashboard_queries()}
                outcome = stored_outcome(store)
                store.close()
                final_lag = dep.lag()
            finally:
                dep.stop()
    finally:
        prometheus.stop()
        stop_process(llm, 10)
        stop_process(clickhouse, 10)

    scored, failed = outcome.scored, outcome.failed
    report.append(
        f"{len(expected)} papers: {outcome.summary()}; rebalances {rebalances}; "
        f"Prometheus counted {counted_1['papers'] - counted_0['papers']:.0f} papers and "
        f"{counted_1['pairs'] - counted_0['pairs']:.0f} pairs in the second wave, ClickHouse "
        f"{wave_2['papers'] - wave_1['papers']} and {wave_2['pairs'] - wave_1['pairs']}"
    )
    print("\n".join(report))

    # 0 lost, 0 twice, every pair once, lag 0
    outcome.assert_each_paper_once(expected)
    assert wave_2["pairs"] == wave_2["pair_ids"], "a pair is stored twice"
    assert {record_for_file(p).paper_id for p in bad} <= failed
    assert len(scored) >= PAPERS, "the stand-in's papers should all be scored"
    assert final_lag == {APP_GROUP: 0, SINK_GROUP: 0}
    # Prometheus: the counters summed over the workers equal what ClickHouse took
    assert counted_1["papers"] - counted_0["papers"] == wave_2["papers"] - wave_1["papers"] == WAVE_2
    assert counted_1["pairs"] - counted_0["pairs"] == wave_2["pairs"] - wave_1["pairs"] > 0
    # each replacement did work of its own in the second wave (it had partitions and they carried papers)
    for name in names[6:]:
        assert per_worker.get(name, 0) > 0, (name, per_worker)
    # every live worker a healthy target; the killed ones down, and the worker-down alert pending for each
    killed = {f"127.0.0.1:{ports[n]}" for n in ("extractor-1", "llm-1", "sink-1")}
    live = {f"127.0.0.1:{ports[n]}" for n in names} - killed
    health = {i: t["health"] for i, t in targets.items() if t["labels"]["job"] == "sciqag-workers"}
    assert {i for i, h in health.items() if h == "up"} == live, health
    assert {i for i, h in health.items() if h == "down"} == killed, health
    down_alerts = {
        a["labels"]["instance"]: a["state"] for a in alerts if a["labels"]["alertname"] == "SciqagWorkerDown"
    }
    assert set(down_alerts) == killed and set(down_alerts.values()) <= {"pending", "firing"}, down_alerts
    # every dashboard query returns data, except vLLM's own series (the stand-in is not vLLM: the real-engine test
    # below runs those against `vllm serve`)
    empty = [(title, expr) for (title, expr), result in dashboard.items() if not result and "vllm:" not in expr]
    assert not empty, f"dashboard queries without data: {empty}"


REAL_PAPERS = 4
REAL_ARGS = ["--pairs", "1", "--keywords", "3", "--mcq", "0", "--max-context-tokens", "400", "--max-model-len", "4096"]


def test_two_llm_workers_share_one_vllm_serve_and_one_killed_loses_nothing(tmp_path, vllm_server):
    """The same topology on the real engine: two generator+judge workers share one `vllm serve` (bundled model), one
    is SIGKILLed after its first judged paper; Prometheus scrapes the workers and vLLM, and the dashboard's vLLM
    queries return data."""
    from processors.settings import Settings
    from processors.store import Store

    inbox = tmp_path / "inbox"
    papers = write_papers(inbox, REAL_PAPERS)
    expected = {record_for_file(p).paper_id for p in papers}
    ch_port = free_port()
    dsn = f"http://default@127.0.0.1:{ch_port}/?compress=false"
    clickhouse = start_clickhouse_http(tmp_path / "clickhouse", ch_port, tmp_path / "clickhouse.log")
    names = {"extractor-1": "extractor", "llm-1": "generator,judge", "llm-2": "generator,judge", "sink-1": "sink"}
    ports = {n: free_port() for n in names}
    vllm_target = vllm_server.split("//", 1)[1]
    prometheus = Prometheus(
        tmp_path / "prometheus", [(n, SHORT[r], ports[n]) for n, r in names.items()], {"vllm": [vllm_target]}
    )
    try:
        with tansu_broker(log_file=tmp_path / "tansu.log") as broker:
            env = worker_env(
                SCIQAG_CLICKHOUSE_DSN=dsn,
                SCIQAG_LLM_URL=f"{vllm_server}/v1",
                SCIQAG_MODEL="sciqag-llm",
                SCIQAG_FILE_ROOTS=str(inbox),
                SCIQAG_QUALITY_METRICS="0",
                SCIQAG_KAFKA_SESSION_TIMEOUT_S="6",
                SCIQAG_GENERATION_MAX_TOKENS="400",
                SCIQAG_JUDGE_MAX_TOKENS="240",
            )
            dep = Deployment(tmp_path, broker, env)
            import asyncio

            asyncio.run(create_topics(dep.bootstrap, PARTITIONS))
            try:
                for name, role in names.items():
                    dep.start_worker(name, role, ports[name], REAL_ARGS)
                wait_until(
                    lambda: all(len(h) == 2 and all(h.values()) for h in [_holders(dep.workers, "generator,judge")]),
                    180,
                    "both LLM workers holding partitions",
                )
                _publish(dep, papers)
                victim = next(w for w in dep.workers if w.name == "llm-1")
                survivor = next(w for w in dep.workers if w.name == "llm-2")
                wait_until(
                    lambda: metric(victim.metrics(), "sciqag_papers_total", stage="judge") >= 1,
                    600,
                    "llm-1 judging a paper",
                    poll=0.5,
                    on_fail=lambda: victim.log.read_text()[-3000:],
                )
                dep.kill(victim)
                # usually 10-40 s; minutes when the survivor is inside a model call longer than the session timeout
                # as the rebalance starts: it misses the join, its commit fails and it rejoins (README, "What does
                # not work yet"; seen in 1 of 5 runs here)
                took = wait_until(
                    lambda: _covers_all(h := _holders(dep.workers, "generator,judge"), "generator,judge") and h,
                    360,
                    "llm-2 taking over",
                )
                rebalance_s = time.monotonic() - victim.killed_at
                store = Store(Settings(clickhouse_dsn=dsn))
                wait_until(
                    lambda: _stored(store)["paper_ids"] >= REAL_PAPERS and dep.lag()[SINK_GROUP] == 0,
                    900,
                    "every paper stored, the sink's lag 0",
                    poll=3,
                    on_fail=lambda: f"{_stored(store)} {dep.lag()}\n{survivor.log.read_text()[-3000:]}",
                )
                # the agents' lag: a record in flight during the rebalance whose commit on revoke failed is processed
                # again and must then be committed (processors/pipeline/faust_commit.py); waited for, asserted below
                try:
                    wait_until(lambda: dep.lag() == {APP_GROUP: 0, SINK_GROUP: 0}, 120, "the agents' lag 0", poll=3)
                except AssertionError:
                    pass
                lag = dep.lag()
                stored = _stored(store)
                ids = Counter(r["paper_id"] for r in store.query("SELECT paper_id FROM sciqag.papers FINAL"))
                store.close()
                prometheus.wait_scraped()
                vllm_queries = {(t, e): prometheus.query(e) for t, e in dashboard_queries() if "vllm:" in e}
                targets = prometheus.targets()
            finally:
                dep.stop()
    finally:
        prometheus.stop()
        stop_process(clickhouse, 10)
    print(
        f"real engine: {REAL_PAPERS} papers, llm-1 killed, llm-2 held {sorted(took['llm-2'])} {rebalance_s:.1f} s "
        f"later; stored {stored}"
    )
    assert set(ids) == expected and max(ids.values()) == 1
    assert stored["pairs"] == stored["pair_ids"]
    assert targets[vllm_target]["health"] == "up"
    empty = [(t, e) for (t, e), result in vllm_queries.items() if not result]
    assert vllm_queries and not empty, f"dashboard vLLM queries without data: {empty}"
    assert lag == {APP_GROUP: 0, SINK_GROUP: 0}, f"every paper stored once, but lag {lag} after 2 minutes"
