"""The deployment, validated with the real tools: promtool, docker-compose, kubernetes-validate,
and the dashboard's metric names against a live worker's /metrics."""

import json
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from processors.pipeline.app import AGENTS
from processors.settings import Settings
from schemas.ddl import ddl_script
from schemas.jsonschema import schema_for
from schemas.records import RECORD_TYPES

from .conftest import ROOT, sciqag_exe

DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "sciqag.json"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run `make tools` (Debian packages prometheus and docker-compose)")
    return path


def test_prometheus_config_and_alert_rules_pass_promtool():
    config = subprocess.run(
        [_tool("promtool"), "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert config.returncode == 0, config.stdout + config.stderr
    rules = subprocess.run(
        [_tool("promtool"), "check", "rules", str(DEPLOY / "prometheus" / "alerts.yml")], capture_output=True, text=True
    )
    assert rules.returncode == 0 and "SUCCESS: 6 rules found" in rules.stdout, rules.stdout + rules.stderr


def test_alert_rules_fire_on_their_series_and_stay_quiet_on_a_healthy_one():
    """deploy/prometheus/alerts_test.yml: a dead-letter surge, growing lag, nothing scored (also from a sink that
    never scored anything since it started), a worker down, LLM errors and a failing feed source each fire; a
    healthy hour fires none."""
    proc = subprocess.run(
        [_tool("promtool"), "test", "rules", str(DEPLOY / "prometheus" / "alerts_test.yml")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout, proc.stdout + proc.stderr
    tested = set(re.findall(r"alertname: (\w+)", (DEPLOY / "prometheus" / "alerts_test.yml").read_text()))
    defined = set(re.findall(r"- alert: (\w+)", (DEPLOY / "prometheus" / "alerts.yml").read_text()))
    assert tested == defined, defined ^ tested


def _compose_config(tmp_path) -> dict:
    env = tmp_path / "test.env"
    shutil.copy(DEPLOY / "env.example", env)
    proc = subprocess.run(
        [_tool("docker-compose"), "--env-file", str(env), "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)


def test_compose_validates_and_matches_the_cli_and_settings(tmp_path):
    config = _compose_config(tmp_path)
    services = config["services"]
    assert {"kafka", "clickhouse", "vllm", "extractor", "generator", "judge", "sink", "prometheus", "grafana"} <= set(
        services
    )
    known_env = {f"SCIQAG_{f.name.upper()}" for f in fields(Settings)} | {"SCIQAG_CLICKHOUSE_PASSWORD_FILE"}
    agents_seen = set()
    for name in ("extractor", "generator", "judge", "sink"):
        service = services[name]
        command = service["command"]
        assert command[:2] == ["worker", "--agents"], command
        agents = set(command[2].split(","))
        assert agents <= set(AGENTS)
        agents_seen |= agents
        unknown = {k for k in service["environment"] if k.startswith("SCIQAG_")} - known_env
        assert not unknown, f"{name} sets variables the app does not read: {unknown}"
        # the worker's subcommand and flags exist in the CLI
        help_text = subprocess.run([sciqag_exe(), *command[:1], "--help"], capture_output=True, text=True).stdout
        assert "--agents" in help_text
    assert agents_seen == set(AGENTS)
    gpu = services["vllm"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"]
    assert services["generator"]["environment"]["SCIQAG_LLM_URL"].startswith("http://vllm:8000")
    assert services["generator"]["depends_on"]["vllm"]["condition"] == "service_healthy"
    assert services["sink"]["depends_on"]["clickhouse"]["condition"] == "service_healthy"
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if source.startswith(str(ROOT)):
                assert Path(source).exists(), f"{name} mounts a missing file: {source}"
    # no secrets in the file itself: passwords come from the env file
    text = (ROOT / "docker-compose.yml").read_text()
    assert "change-me" not in text and re.search(r"PASSWORD: \$\{", text)


def test_kubernetes_manifests_validate():
    exe = Path(sys.executable).parent / "kubernetes-validate"
    proc = subprocess.run(
        [str(exe), "--strict", "--quiet", *map(str, sorted((DEPLOY / "k8s").glob("*.yaml")))],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    docs = [d for f in (DEPLOY / "k8s").glob("*.yaml") for d in yaml.safe_load_all(f.read_text()) if d]
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for agent in AGENTS:
        assert ("Deployment", f"sciqag-{agent}") in kinds
    assert ("HorizontalPodAutoscaler", "sciqag-generator") in kinds
    gen = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "sciqag-generator")
    assert gen["spec"]["template"]["spec"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}


def test_generated_contracts_are_in_sync_with_the_code():
    assert (DEPLOY / "clickhouse" / "init.sql").read_text() == ddl_script("sciqag"), "run `make schemas`"
    for name in RECORD_TYPES:
        committed = json.loads((ROOT / "schemas" / "json" / f"{name}.schema.json").read_text())
        assert committed == schema_for(name), f"schemas/json/{name}.schema.json is stale: run `make schemas`"


def dashboard_metric_names() -> set[str]:
    exprs = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]
    names = set()
    for expr in exprs:
        names |= set(re.findall(r"\b((?:sciqag|faust)_[a-z0-9_]+|vllm:[a-z0-9_:]+)", expr))
    return names


def family_name(sample_name: str) -> str:
    for suffix in ("_bucket", "_count", "_sum", "_total", "_created"):
        if sample_name.endswith(suffix):
            return sample_name[: -len(suffix)]
    return sample_name


def test_every_dashboard_metric_is_exported_by_a_live_worker(tmp_path, free_port):
    """sciqag_* and faust_* names from a running worker; vllm:* names are checked against a live
    `vllm serve` in test_http_backend.py."""
    from prometheus_client.parser import text_string_to_metric_families

    from processors.local.broker import tansu_broker

    with tansu_broker() as broker:
        worker = subprocess.Popen(
            [
                sciqag_exe(),
                "worker",
                "--agents",
                "extractor,sink",
                "--broker",
                broker,
                "--data-dir",
                str(tmp_path),
                "--metrics-port",
                str(free_port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            body = ""
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    body = urllib.request.urlopen(f"http://127.0.0.1:{free_port}/metrics", timeout=5).read().decode()
                    if "faust_topic_partition_end_offset" in body:
                        break
                except OSError:
                    pass
                time.sleep(1)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)
    exported = {f.name for f in text_string_to_metric_families(body)}
    used = {n for n in dashboard_metric_names() if not n.startswith("vllm:")}
    missing = {n for n in used if family_name(n) not in exported and n not in exported}
    assert used and not missing, f"dashboard metrics not exported: {sorted(missing)}"
    alerts = (DEPLOY / "prometheus" / "alerts.yml").read_text()
    for name in set(re.findall(r"\b((?:sciqag|faust)_[a-z0-9_]+)", alerts)):
        assert family_name(name) in exported or name in exported, f"alert uses {name}, which is not exported"
