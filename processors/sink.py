"""The sink agent's consumer: batches from `sciqag.qa.scored` and `sciqag.dlq` into ClickHouse, offsets committed
by hand once ClickHouse has the batch.

The sink is the one agent that is not a Faust agent. Faust hands a stream one event at a time, and that machinery
cost ~100 us per record here against ~10 us for the whole bulk insert of one row (benchmarks/sink.py): the sink
works on batches, so it reads them straight from aiokafka's `getmany()`. It runs as a task of the same worker
(`sciqag worker --agents sink`), with its own consumer group (`<app id>-sink`), and reports its offsets and lag
through Faust's Prometheus metrics like the other agents.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from schemas import topics as T

from .kafka_auth import aiokafka_security
from .publish import bootstrap_servers
from .settings import Settings

log = logging.getLogger("sciqag.sink")

SINK_TOPICS = (T.SCORED, T.DLQ)


def sink_group(app_id: str) -> str:
    return f"{app_id}-sink"


@dataclass
class _Batch:
    records: list = field(default_factory=list)
    ends: dict = field(default_factory=dict)  # TopicPartition -> the offset to commit (last record's + 1)
    received: dict[str, int] = field(default_factory=dict)  # records per topic

    def add(self, tp, part: list) -> None:
        self.records.extend(part)
        self.ends[tp] = part[-1].offset + 1
        self.received[tp.topic] = self.received.get(tp.topic, 0) + len(part)


class SinkConsumer:
    """Reads batches of up to `sink_batch_rows` records, or what arrived within `sink_batch_seconds` of the first;
    `prepare` each (Python work), then `store` it and commit its offsets only after that returned.

    Two batches at most are in hand: while ClickHouse stores one (in a thread, without the GIL), the next is read
    and prepared; it is stored only after the previous one is stored and committed, so batches land in order.
    While ClickHouse is away nothing more is fetched: memory stays at two batches plus aiokafka's prefetch."""

    def __init__(self, settings: Settings, prepare: Callable[[list], Awaitable[Any]],
                 store: Callable[[Any], Awaitable[None]], *, broker_url: str = "", app_id: str = "sciqag",
                 monitor: Any = None, faust_metrics: Any = None) -> None:
        self.settings = settings
        self.broker_url = broker_url or settings.broker_url  # the embedded broker's is known only once it is up
        self.prepare = prepare
        self.store = store
        self.group_id = sink_group(app_id)
        self.monitor = monitor  # Faust's PrometheusMonitor: committed and end offsets per partition (consumer lag)
        self.faust_metrics = faust_metrics  # records received per topic, as Faust counts them for its agents

    def _consumer(self):
        from aiokafka import AIOKafkaConsumer

        session_s = self.settings.kafka_session_timeout_s or (6 if self.settings.embedded_broker else 0)
        timeouts = {}
        if session_s:
            timeouts = dict(session_timeout_ms=int(session_s * 1000), heartbeat_interval_ms=int(max(0.5, session_s / 6) * 1000))
        return AIOKafkaConsumer(
            *SINK_TOPICS,
            bootstrap_servers=bootstrap_servers(self.broker_url),
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.settings.sink_batch_rows,
            **timeouts,
            **aiokafka_security(self.settings),
        )

    async def run(self) -> None:
        consumer = self._consumer()
        await consumer.start()
        storing: asyncio.Future | None = None  # the previous batch: stored, then committed
        try:
            while True:
                batch = await self._next_batch(consumer, storing)
                prepared = await self.prepare(batch.records)
                if storing is not None:
                    await storing
                storing = asyncio.ensure_future(self._store_and_commit(consumer, batch, prepared))
        finally:
            if storing is not None and not storing.done():
                storing.cancel()  # not committed: the batch is read again by whoever consumes next
                with contextlib.suppress(BaseException):
                    await storing
            await consumer.stop()

    async def _store_and_commit(self, consumer, batch: _Batch, prepared: Any) -> None:
        await self.store(prepared)
        await self._commit(consumer, batch)

    async def _next_batch(self, consumer, storing: asyncio.Future | None) -> _Batch:
        batch = _Batch()
        limit, window = self.settings.sink_batch_rows, self.settings.sink_batch_seconds
        deadline = None
        while True:
            if storing is not None and storing.done() and storing.exception() is not None:
                raise storing.exception()  # the previous batch could not be stored: stop now, not at the next one
            wait_s = 1.0 if deadline is None else max(0.0, deadline - time.monotonic())
            fetched = await consumer.getmany(timeout_ms=int(wait_s * 1000), max_records=limit - len(batch.records))
            for tp, part in fetched.items():
                if part:
                    batch.add(tp, part)
            if batch.records and deadline is None:
                deadline = time.monotonic() + window
            if batch.records and (len(batch.records) >= limit or time.monotonic() >= deadline):
                return batch

    async def _commit(self, consumer, batch: _Batch) -> None:
        from aiokafka.errors import CommitFailedError, KafkaError

        try:
            await consumer.commit(batch.ends)
        except (CommitFailedError, KafkaError) as exc:
            # the group moved the partitions meanwhile: their new owner reads the batch again, and the tables
            # replace rather than duplicate (ReplacingMergeTree keyed by ids)
            log.warning("sink: committing %d records failed (%s); they will be stored again", len(batch.records), exc)
            return
        self._report(consumer, batch)

    def _report(self, consumer, batch: _Batch) -> None:
        if self.faust_metrics is not None:
            for topic, count in batch.received.items():
                self.faust_metrics.messages_received_per_topics.labels(topic=topic).inc(count)
        if self.monitor is None:
            return
        from faust.types import TP

        self.monitor.on_tp_commit({TP(tp.topic, tp.partition): offset for tp, offset in batch.ends.items()})
        for tp in batch.ends:
            highwater = consumer.highwater(tp)
            if highwater is not None:
                self.monitor.track_tp_end_offset(TP(tp.topic, tp.partition), highwater)


async def run_sink_until_cancelled(consumer: SinkConsumer, on_crash: Callable[[BaseException], Awaitable[None]]) -> None:
    """The worker's sink task: a sink that stops for any reason but cancellation takes the worker down with it
    (a supervisor restarts it), rather than leaving a worker that consumes nothing into ClickHouse."""
    try:
        await consumer.run()
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        log.critical("the sink stopped: %s", exc, exc_info=True)
        await on_crash(exc)
