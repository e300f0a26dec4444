"""`sciqag worker` with a subset of agents and `sciqag publish`, against a real Tansu broker and chDB.

No LLM agents, so no engine: extraction, dead letters and the sink on their own.
"""

import asyncio
import os
import signal
import subprocess
import time

import pytest

from processors.kafka import bootstrap_servers
from processors.local.broker import tansu_broker
from processors.local.samples import write_sample_pdfs
from schemas import PaperExtracted, decode
from schemas import topics as T

from .conftest import SCAN, sciqag_exe, shared_pdfs
from .e2e import metric, open_store, scrape_metrics

pytestmark = pytest.mark.slow


async def _produce_raw(bootstrap: str, key: bytes, value: bytes) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(T.PAPERS, key=key, value=value)
    finally:
        await producer.stop()


async def _read_extracted(bootstrap: str, expected: int, timeout: float = 60) -> list[PaperExtracted]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        T.EXTRACTED, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id="test-reader"
    )
    await consumer.start()
    records = []
    try:
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=1000)
            for messages in batch.values():
                records += [decode(m.value, PaperExtracted) for m in messages]
    finally:
        await consumer.stop()
    return records


def test_worker_subset_with_publish_and_poison(tmp_path, free_port):
    scan = next(p for p in shared_pdfs() if p.name == SCAN)
    inbox = tmp_path / "inbox"
    good = write_sample_pdfs(inbox)[0]
    (inbox / "notes.txt").write_text("not a paper")
    data = tmp_path / "data"
    with tansu_broker() as broker:
        # OCR off: the scan is the image-only case here (tests/test_end_to_end.py OCRs it)
        env = {**os.environ, "SCIQAG_FILE_ROOTS": f"{inbox}:{scan.parent}", "SCIQAG_OCR": "off"}
        worker = subprocess.Popen(
            [
                sciqag_exe(),
                "worker",
                "--agents",
                "extractor,sink",
                "--broker",
                broker,
                "--data-dir",
                str(data),
                "--metrics-port",
                str(free_port),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        try:
            publish = subprocess.run(
                [sciqag_exe(), "publish", "--broker", broker, str(good), str(inbox / "notes.txt"), str(scan)],
                capture_output=True,
                text=True,
                timeout=120,
                env=env,
            )
            assert publish.returncode == 0, publish.stderr
            assert "published 3 papers" in publish.stdout
            asyncio.run(_produce_raw(bootstrap_servers(broker), b"poison-1", b"\x00\x9f not json"))
            asyncio.run(_produce_raw(bootstrap_servers(broker), b"poison-2", b'{"paper_id": "p", "schema_version": 7}'))

            deadline = time.monotonic() + 180
            failed = 0
            while time.monotonic() < deadline:
                try:
                    failed = metric(scrape_metrics(free_port), "sciqag_papers_total", stage="sink", outcome="failed")
                except OSError:
                    pass  # the endpoint is not up yet
                if failed >= 4 or worker.poll() is not None:
                    break
                time.sleep(1)
            assert failed == 4, f"dead letters stored: {failed}"
            extracted = asyncio.run(_read_extracted(bootstrap_servers(broker), 1))
            assert [r.paper.source_uri.rsplit("/", 1)[-1] for r in extracted] == [good.name]
            assert len(extracted[0].text) > 1000 and extracted[0].sections
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                output, _ = worker.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
                output, _ = worker.communicate()
        assert worker.returncode == 0, output[-3000:]

    store = open_store(data)
    dead = store.query("SELECT paper_id, stage, error_kind, message FROM sciqag.dead_letters FINAL")
    store.close()
    kinds = sorted(d["error_kind"] for d in dead)
    assert kinds == ["image_only_pdf", "not_a_pdf", "undecodable", "unsupported_schema_version"]
    assert {d["paper_id"] for d in dead if d["error_kind"] in ("undecodable", "unsupported_schema_version")} == {
        "poison-1",
        "poison-2",
    }
    assert all(d["stage"] == "extractor" and d["message"] for d in dead)


def test_services_log_at_info_unless_told_otherwise(monkeypatch):
    from argparse import Namespace

    from processors.cli.common import settings_from

    monkeypatch.delenv("SCIQAG_LOG_LEVEL", raising=False)
    assert settings_from(Namespace(log_level=None)).log_level_or("INFO") == "INFO"
    assert settings_from(Namespace(log_level=None)).log_level_or("WARNING") == "WARNING"  # a job's own default
    monkeypatch.setenv("SCIQAG_LOG_LEVEL", "DEBUG")  # the environment is heard (it was not, before)
    assert settings_from(Namespace(log_level=None)).log_level_or("INFO") == "DEBUG"
    assert settings_from(Namespace(log_level="WARNING")).log_level_or("INFO") == "WARNING"  # the flag wins
    monkeypatch.setenv("SCIQAG_LOG_LEVEL", "WARNING")  # set to the jobs' default, yet heard by the services
    assert settings_from(Namespace(log_level=None)).log_level_or("INFO") == "WARNING"
