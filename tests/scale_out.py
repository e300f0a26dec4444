"""A scaled-out deployment on one machine, for the scale-out tests and the scaling benchmark: a Tansu broker whose
topics have several partitions, ClickHouse as a server (chDB behind HTTP: several writers), the LLM stage behind an
OpenAI-compatible server, and separate `sciqag worker --agents ...` processes by role, as docker-compose.yml runs
them; a real Prometheus server scraping them with the project's own configuration, adapted to the ports here."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from processors.kafka import bootstrap_servers
from processors.local.broker import free_port, stop_process
from processors.pipeline.sink import SINK_TOPICS, sink_group
from schemas import topics as T

from .conftest import ROOT, sciqag_exe
from .e2e import scrape_metrics

APP_GROUP = "sciqag"  # the Faust agents' consumer group (the app id)
SINK_GROUP = sink_group(APP_GROUP)
GROUP_TOPICS = {APP_GROUP: (T.PAPERS, T.EXTRACTED, T.GENERATED), SINK_GROUP: tuple(SINK_TOPICS)}
# which group and topics each role's workers consume
ROLE_TOPICS = {
    "extractor": (APP_GROUP, (T.PAPERS,)),
    "generator,judge": (APP_GROUP, (T.EXTRACTED, T.GENERATED)),
    "sink": (SINK_GROUP, tuple(SINK_TOPICS)),
}
ALL_TOPICS = (T.PAPERS, T.EXTRACTED, T.GENERATED, T.SCORED, T.DLQ)


async def create_topics(bootstrap: str, partitions: int) -> dict[str, int]:
    """Every topic with `partitions` partitions before any worker starts; returns what the broker reports."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, partitions, 1) for t in ALL_TOPICS])
    finally:
        await admin.close()
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await reader.start()
    try:
        await reader.topics()  # fresh metadata
        return {t: len(reader.partitions_for_topic(t) or ()) for t in ALL_TOPICS}
    finally:
        await reader.stop()


async def group_lag(bootstrap: str) -> dict[str, int]:
    """Records not yet committed, per group, over the topics it consumes. The end of each partition is found by
    reading to it: Tansu 0.6's ListOffsets answers with the base offset of the last batch + 1, not the end."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await reader.start()
    try:
        tps = [TopicPartition(t, p) for t in ALL_TOPICS for p in sorted(reader.partitions_for_topic(t) or ())]
        ends = {tp: 0 for tp in tps}
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        quiet = 0
        while quiet < 2:
            batch = await reader.getmany(timeout_ms=500, max_records=5000)
            quiet = 0 if batch else quiet + 1
            for tp, messages in batch.items():
                if messages:
                    ends[tp] = messages[-1].offset + 1
        lag = {}
        for group, topics in GROUP_TOPICS.items():
            member = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
            await member.start()
            try:
                lag[group] = 0
                for tp in tps:
                    if tp.topic in topics:
                        lag[group] += ends[tp] - ((await member.committed(tp)) or 0)
            finally:
                await member.stop()
        return lag
    finally:
        await reader.stop()


async def group_members(bootstrap: str, groups: list[str]) -> dict[str, int]:
    """Members per consumer group (Tansu 0.6 answers DescribeGroups with the members, not their assignments)."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaConnectionError

    for attempt in range(3):  # Tansu closed the connection once in a few tries here; the next one answered
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            answers = await admin.describe_consumer_groups(groups)
            break
        except KafkaConnectionError:
            if attempt == 2:
                raise
        finally:
            await admin.close()
    # each group: (error_code, group, state, protocol_type, protocol, members)
    return {g[1]: len(g[5]) for answer in answers for g in answer.groups}


@dataclass
class Worker:
    name: str
    role: str  # the --agents value
    port: int
    log: Path
    proc: subprocess.Popen | None = None
    killed_at: float | None = None

    @property
    def instance(self) -> str:
        return f"127.0.0.1:{self.port}"

    def metrics(self) -> dict:
        try:
            return scrape_metrics(self.port)
        except OSError:
            return {}

    def held(self) -> set[tuple[str, int]]:
        """(topic, partition) this worker holds now, from its sciqag_partition_assigned."""
        group, topics = ROLE_TOPICS[self.role]
        held = set()
        for (name, labels), value in self.metrics().items():
            lab = dict(labels)
            if name == "sciqag_partition_assigned" and value == 1 and lab["group"] == group and lab["topic"] in topics:
                held.add((lab["topic"], int(lab["partition"])))
        return held

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Deployment:
    """What a test starts; `stop()` ends it all."""

    root: Path
    broker: str
    env: dict
    workers: list[Worker] = field(default_factory=list)
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def bootstrap(self) -> str:
        return bootstrap_servers(self.broker)

    def start_worker(self, name: str, role: str, port: int | None = None, extra: list[str] = ()) -> Worker:
        worker = Worker(name, role, port or free_port(), self.root / f"{name}.log")
        cmd = [
            sciqag_exe(),
            "worker",
            "--agents",
            role,
            "--broker",
            self.broker,
            "--data-dir",
            str(self.root / name),
            "--metrics-port",
            str(worker.port),
            *extra,
        ]
        with open(worker.log, "w") as log:
            worker.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        self.workers.append(worker)
        return worker

    def kill(self, worker: Worker) -> None:
        worker.proc.send_signal(signal.SIGKILL)
        worker.proc.wait(30)
        worker.killed_at = time.monotonic()

    def stop(self) -> None:
        for w in self.workers:
            if w.alive():
                w.proc.send_signal(signal.SIGTERM)
        for w in self.workers:
            if w.proc is not None:
                stop_process(w.proc, 60)
        for p in reversed(self.procs):
            stop_process(p, 10)

    def lag(self) -> dict[str, int]:
        return asyncio.run(group_lag(self.bootstrap))


def wait_until(predicate, timeout: float, what: str, poll: float = 0.5, on_fail=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"{what}: not within {timeout:.0f} s" + (f"\n{on_fail()}" if on_fail else ""))


# -- Prometheus ----------------------------------------------------------------------------------------------------


def prometheus_config(workers: list[tuple[str, str, int]], port: int, extra_jobs: dict[str, list[str]]) -> dict:
    """deploy/prometheus/prometheus.yml with the workers' DNS discovery replaced by their ports here: the same job,
    the same target label the relabelling sets, the same rule files; a scrape every 2 s instead of 15 s."""
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = "2s"  # the timeout is at most the interval: a loaded worker answers in 1-2 s
    config["global"]["scrape_timeout"] = "2s"
    config["global"]["evaluation_interval"] = "1s"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    workers_job = jobs["sciqag-workers"]
    (relabel,) = workers_job.pop("relabel_configs")
    assert relabel["source_labels"] == ["__meta_dns_name"], relabel
    workers_job.pop("dns_sd_configs")
    workers_job["static_configs"] = [
        {"targets": [f"127.0.0.1:{p}"], "labels": {relabel["target_label"]: service, "worker": name}}
        for name, service, p in workers
    ]
    jobs["prometheus"]["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
    for name, targets in extra_jobs.items():
        jobs[name]["static_configs"] = [{"targets": targets}]
    config["scrape_configs"] = [j for n, j in jobs.items() if n in {"sciqag-workers", "prometheus", *extra_jobs}]
    return config


class Prometheus:
    def __init__(self, root: Path, workers: list[tuple[str, str, int]], extra_jobs: dict[str, list[str]] = None):
        self.port = free_port()
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        for rules in yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())["rule_files"]:
            shutil.copy(ROOT / "deploy" / "prometheus" / rules, root / rules)
        (root / "prometheus.yml").write_text(yaml.safe_dump(prometheus_config(workers, self.port, extra_jobs or {})))
        self.log = root / "prometheus.log"
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [
                    shutil.which("prometheus") or "prometheus",
                    f"--config.file={root / 'prometheus.yml'}",
                    f"--storage.tsdb.path={root / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--web.enable-lifecycle",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=root,
            )
        wait_until(lambda: self._ready(), 60, "Prometheus ready", on_fail=lambda: self.log.read_text()[-2000:])

    def _ready(self) -> bool:
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2).status == 200
        except OSError:
            return False

    def api(self, path: str, **params) -> dict:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        answer = json.loads(urllib.request.urlopen(url, timeout=30).read())
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self.api("query", **params)["result"]

    def scalar(self, expr: str, at: float | None = None) -> float:
        result = self.query(expr, at)
        assert len(result) == 1, (expr, result)
        return float(result[0]["value"][1])

    def targets(self) -> dict[str, dict]:
        return {t["labels"]["instance"]: t for t in self.api("targets", state="active")["activeTargets"]}

    def wait_scraped(self) -> float:
        """Wait until every target was scraped after now (two intervals), return the time to query at."""
        now = time.time()
        wait_until(
            lambda: all(_ts(t["lastScrape"]) > now + 0.5 for t in self.targets().values() if t["health"] == "up"),
            30,
            "a fresh scrape of every target",
        )
        return time.time()

    def stop(self) -> None:
        stop_process(self.proc, 10)


def _ts(rfc3339: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def dashboard_queries() -> list[tuple[str, str]]:
    """Each panel's PromQL as Grafana sends it: its built-in range variables replaced by the dashboard's range."""
    out = []
    for path in sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        # "now-6h" -> "6h": $__range is the whole time range; $__rate_interval at least four 15 s scrapes
        grafana = {"$__range": dashboard["time"]["from"].removeprefix("now-"), "$__rate_interval": "1m"}
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    expr = target["expr"]
                    for variable, value in grafana.items():
                        expr = expr.replace(variable, value)
                    assert "$" not in expr, f"a dashboard variable the tests do not know: {expr}"
                    out.append((panel.get("title", ""), expr))
    return out


def worker_env(**settings: str) -> dict:
    return {**os.environ, "SCIQAG_LOG_LEVEL": "INFO", **settings}
