"""Downstream consumers of the embedded broker (Tansu 0.6): which Kafka clients read `sciqag.qa.scored` from it, in a
consumer group, and what they need. Each record read is validated against the published JSON Schema.

What was found (README "Topic contracts"):
- Tansu completes the first join of a group only after about half the members' session timeout. Clients whose
  default session timeout is 45 s (kafka-python 3, librdkafka) joined after ~23 s: a kafka-python consumer with a 15 s
  timeout gave up before it had partitions. With a 6 s session timeout (as the workers use on the embedded broker)
  they join in ~3 s.
- librdkafka 2.0 (Debian's kcat) cannot read Tansu's ApiVersions v3 answer ("Read underflow" in its tagged fields:
  Tansu writes SupportedFeatures, FinalizedFeaturesEpoch, FinalizedFeatures and ZkMigrationReady with their default
  values, which Kafka leaves out). Without the ApiVersions request (0.9 protocol) it reads the topic, from an explicit
  offset: Tansu's ListOffsets v0 answer is short too. librdkafka 2.16 (confluent-kafka) works as it is.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time

import jsonschema
import pytest

from processors.kafka import bootstrap_servers
from processors.local.broker import tansu_broker
from schemas import encode
from schemas import topics as T

from .conftest import ROOT
from .scale_out import create_topics
from .stage_harness import scored_run

pytestmark = pytest.mark.slow

RECORDS = 12  # 4 papers of 3 pairs, spread over the 4 partitions by key
SESSION_MS = 6000


def _validator():
    return jsonschema.Draft202012Validator(json.loads((ROOT / "schemas" / "json" / "QAScored.schema.json").read_text()))


async def _produce(bootstrap: str) -> set[str]:
    """Scored records as the judge writes them: gzip-compressed batches, acks from every replica."""
    from aiokafka import AIOKafkaProducer

    from processors.kafka import producer_options
    from processors.settings import Settings

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **producer_options(Settings()))
    await producer.start()
    ids = set()
    try:
        for n in range(RECORDS // 3):
            for record in scored_run(f"p-client-{n}", [0, 1, 2]):
                await producer.send(T.SCORED, key=record.paper.paper_id.encode(), value=encode(record))
                ids.add(record.qa_id)
        await producer.flush()
    finally:
        await producer.stop()
    return ids


@pytest.fixture
def broker_with_records(tmp_path):
    with tansu_broker(log_file=tmp_path / "tansu.log") as broker:
        bootstrap = bootstrap_servers(broker)
        asyncio.run(create_topics(bootstrap, 4))
        yield bootstrap, asyncio.run(_produce(bootstrap))


def _check(values: list[bytes], ids: set[str]) -> None:
    validator = _validator()
    records = [json.loads(v) for v in values]
    for record in records:
        validator.validate(record)
    assert {r["qa_id"] for r in records} == ids and len(records) == len(ids)


def test_the_example_consumer_aiokafka_reads_every_record_in_a_group(broker_with_records):
    bootstrap, ids = broker_with_records
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "deploy" / "examples" / "consumer.py"),
            "--bootstrap",
            bootstrap,
            "--group",
            "example",
            "--session-timeout-ms",
            str(SESSION_MS),
            "--max-messages",
            str(RECORDS),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"read {RECORDS} records, 0 skipped" in proc.stderr
    assert {json.loads(line)["qa_id"] for line in proc.stdout.splitlines()} == ids
    print(f"aiokafka (deploy/examples/consumer.py): {RECORDS} records in {time.monotonic() - started:.1f} s")


def test_kafka_python_in_a_group_reads_every_record(broker_with_records):
    from kafka import KafkaConsumer

    bootstrap, ids = broker_with_records
    started = time.monotonic()
    consumer = KafkaConsumer(
        T.SCORED,
        bootstrap_servers=bootstrap,
        group_id="kafka-python",
        auto_offset_reset="earliest",
        session_timeout_ms=SESSION_MS,
        heartbeat_interval_ms=1000,
        consumer_timeout_ms=20_000,
    )
    values = []
    try:
        for message in consumer:
            values.append(message.value)
            if len(values) == RECORDS:
                break
        assignment = consumer.assignment()
    finally:
        consumer.close()
    took = time.monotonic() - started
    print(f"kafka-python in a group: {len(values)} records in {took:.1f} s")
    assert len(assignment) == 4
    _check(values, ids)
    assert took < 15, "the group join took as long as with a 45 s session timeout"


def test_confluent_kafka_in_a_group_reads_every_record(broker_with_records):
    from confluent_kafka import Consumer, libversion

    bootstrap, ids = broker_with_records
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "confluent-kafka",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": SESSION_MS,
            "heartbeat.interval.ms": 1000,
        }
    )
    consumer.subscribe([T.SCORED])
    values, started = [], time.monotonic()
    try:
        while len(values) < RECORDS and time.monotonic() - started < 30:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                values.append(message.value())
    finally:
        consumer.close()
    print(f"confluent-kafka ({libversion()[0]}) in a group: {len(values)} in {time.monotonic() - started:.0f} s")
    _check(values, ids)


# what Debian's kcat (librdkafka 2.0) needs on Tansu 0.6: no ApiVersions request, the 0.9 protocol, explicit offsets
KCAT_ON_TANSU = ["-X", "api.version.request=false", "-X", "broker.version.fallback=0.9.0"]


def test_kcat_reads_the_topic_in_a_group_with_the_workaround_and_fails_without_it(broker_with_records):
    kcat = shutil.which("kcat")
    if kcat is None:
        pytest.fail("kcat is not installed: run `make tools` (Debian package kcat)")
    bootstrap, ids = broker_with_records
    plain = subprocess.run([kcat, "-b", bootstrap, "-L", "-m", "5"], capture_output=True, text=True, timeout=30)
    version = subprocess.run([kcat, "-V"], capture_output=True, text=True).stdout
    # the broker's ApiVersions answer is what librdkafka 2.0 cannot read; this fails once either side changes
    assert plain.returncode != 0 and "Read underflow" in plain.stderr, (version, plain.stderr[-500:])
    group = subprocess.run(
        [
            kcat,
            "-b",
            bootstrap,
            *KCAT_ON_TANSU,
            "-X",
            "session.timeout.ms=6000",
            "-G",
            "kcat",
            "-o",
            "0",
            T.SCORED,
            "-e",
            "-q",
            "-D",
            "\n@@\n",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    values = [v.encode() for v in group.stdout.split("\n@@\n") if v.strip()]
    print(f"kcat ({next((v for v in version.splitlines() if 'librdkafka' in v), version)}): {len(values)} records")
    assert group.returncode == 0, group.stderr[-1000:]
    _check(values, ids)
