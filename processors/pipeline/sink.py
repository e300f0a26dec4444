"""The sink: batches from `sciqag.qa.scored` and `sciqag.dlq` into ClickHouse, offsets committed by hand once
ClickHouse has the batch. `Sink` checks and sorts a batch (`prepare`), then stores it (`store`): scored pairs, dead
letters, papers rows, and the pruning of pairs a paper's latest run no longer has; `SinkConsumer` reads the batches.

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
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from schemas import DeadLetter, PaperExtracted, QAGenerated, QAScored, QAScoredCheck, RecordError, decode
from schemas import topics as T
from schemas.ddl import DLQ_TABLE

from .. import metrics
from ..dedup import UNCHECKED, NearDuplicates, PairView, with_decision
from ..errors import StoreError
from ..kafka import aiokafka_security, bootstrap_servers, group_timeouts
from ..settings import Settings
from ..store import (
    dlq_row,
    judgment_row,
    now,
    paper_context_row,
    paper_row_failed,
    paper_row_scored,
    paper_text_row,
    qa_row,
)
from .context import StageContext, record_key

log = logging.getLogger("sciqag.sink")

STAGE = "sink"
# a batch stops growing here (with up to one fetch more), whatever its row count: paper texts make records large, and
# a batch is held in up to four copies (records, decoded, rows, the insert block) while the next one is prepared
MAX_BATCH_BYTES = 8 * 1024 * 1024

# scored pairs and dead letters; the extracted text and the generator's context for paper_texts / paper_contexts
SINK_TOPICS = (T.SCORED, T.DLQ, T.EXTRACTED, T.GENERATED)


def sink_group(app_id: str) -> str:
    return f"{app_id}-sink"


@dataclass
class SinkBatch:
    """One sink batch, checked and sorted, ready to insert."""

    scored: list = field(default_factory=list)  # the records of scored pairs that passed the check
    # which of them are the live judge's (they write qa_pairs too; every one writes a judgments row), and the
    # judgments by role (live | rejudge | shadow)
    live: list[bool] = field(default_factory=list)
    judgments: dict[str, int] = field(default_factory=dict)
    views: list = field(default_factory=list)  # what the near-duplicate decision reads of each (PairView)
    paper_rows: list = field(default_factory=list)
    dlq_rows: list = field(default_factory=list)
    completed: list = field(default_factory=list)  # QAScored records that complete a paper
    failed: int = 0  # papers failed by a dead letter in this batch
    # per paper completed or failed in this batch, the pairs its latest outcome keeps (none for a failure)
    keep_pairs: dict[str, list[str]] = field(default_factory=dict)
    text_rows: list = field(default_factory=list)  # paper_texts rows (from sciqag.extracted)
    context_rows: list = field(default_factory=list)  # paper_contexts rows (from sciqag.qa.generated)
    seconds: float = 0.0  # spent preparing it


class Sink:
    """What the sink does with one batch of consumer records (topic, partition, offset, key, value)."""

    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx
        self._kill_after_batches = ctx.settings.fault_kill_after_sink_batches
        self._batches = 0
        self._dedup_warned = False

    async def prepare(self, records: list) -> SinkBatch:
        """Check and sort one batch; records that fail are dead-lettered here. Python work only, so the sink's
        consumer runs it for the next batch while ClickHouse stores the previous one.

        Scored pairs take the fast path: each is checked for its required fields (QAScoredCheck, no full decode),
        and ClickHouse parses the JSON itself in `store`; only the record that completes a paper is decoded whole,
        for the papers row.
        """
        started = time.perf_counter()
        batch = SinkBatch()
        for record in records:
            if record.topic == T.SCORED:
                try:
                    check = decode(record.value, QAScoredCheck)
                    rec = decode(record.value, QAScored) if check.completes_paper else None
                except RecordError as exc:
                    await self.ctx.reject(STAGE, exc, paper_id=record_key(record), event=record)
                    continue
                batch.scored.append(record)
                batch.live.append(check.live)
                batch.judgments[check.judge_role] = batch.judgments.get(check.judge_role, 0) + 1
                batch.views.append(PairView.of(check))
                if rec is not None:
                    batch.paper_rows.append(paper_row_scored(rec))
                    batch.completed.append(rec)
                    if rec.paper_qa_ids:  # records written before the field existed cannot be reconciled
                        batch.keep_pairs[rec.paper.paper_id] = list(rec.paper_qa_ids)
            elif record.topic in (T.EXTRACTED, T.GENERATED):
                # a bad record here is the generator's or the judge's to dead-letter: the sink only keeps texts
                try:
                    if record.topic == T.EXTRACTED:
                        batch.text_rows.append(paper_text_row(decode(record.value, PaperExtracted)))
                    else:
                        batch.context_rows.append(paper_context_row(decode(record.value, QAGenerated)))
                except Exception:  # RecordError, or a row builder meeting a value it cannot take: never a crash
                    continue
            else:
                try:
                    dead = decode(record.value, DeadLetter)
                except RecordError as exc:
                    # not sent back to sciqag.dlq (the sink reads it): stored as the sink's own dead letter, logged
                    # once, and the batch goes on and is committed
                    log.error(
                        "sink: undecodable dead letter at %s/%d/%d (%s): %s",
                        record.topic,
                        record.partition,
                        record.offset,
                        exc.kind,
                        str(exc)[:300],
                    )
                    metrics.DLQ.labels(STAGE, "undecodable_dead_letter").inc()
                    batch.dlq_rows.append(dlq_row(self._own_dead_letter(record, exc)))
                    continue
                batch.dlq_rows.append(dlq_row(dead))
                if dead.paper_failed and dead.paper_id:
                    batch.paper_rows.append(paper_row_failed(dead))
                    batch.keep_pairs[dead.paper_id] = []
                    batch.failed += 1
        batch.seconds = time.perf_counter() - started
        return batch

    def _own_dead_letter(self, record, exc: RecordError) -> DeadLetter:
        value = record.value if isinstance(record.value, (bytes, bytearray)) else b""
        return DeadLetter(
            stage=STAGE,
            paper_id=record_key(record),
            error_kind=exc.kind,
            message=f"a record on {record.topic} that is not a DeadLetter: {str(exc)[:1900]}",
            source_topic=record.topic,
            source_partition=record.partition,
            source_offset=record.offset,
            payload_excerpt=bytes(value[:300]).decode("utf-8", "replace"),
            paper_failed=False,  # whose paper it was is not known
        )

    async def store(self, batch: SinkBatch) -> None:
        """Insert a prepared batch, retrying until ClickHouse took it (its offsets are committed after this)."""
        started = time.perf_counter()
        store = self.ctx.store
        # the live judge's records are the pairs (qa_pairs), decided near-duplicate or not before they are stored;
        # every scored record is also a judgment. A record that cannot be stored is dead-lettered once, by the first
        # insert that meets it
        live_records = [r for r, is_live in zip(batch.scored, batch.live, strict=True) if is_live]
        live_views = [v for v, is_live in zip(batch.views, batch.live, strict=True) if is_live]
        decisions = await self._near_duplicate_decisions(live_views)
        live = await self._store_scored(live_records, decisions)
        stored = len(live)
        if stored and self.ctx.settings.near_duplicates:
            await self._insert_until_stored(
                "qa_pairs", lambda: NearDuplicates(store(), self.ctx.settings).recheck(live_views, decisions), True
            )
        await self._store_judgments([r for r, is_live in zip(batch.scored, batch.live) if not is_live or id(r) in live])
        await self._insert_until_stored(
            "paper_texts", lambda: store().insert_paper_texts(batch.text_rows), bool(batch.text_rows)
        )
        await self._insert_until_stored(
            "paper_contexts", lambda: store().insert_paper_contexts(batch.context_rows), bool(batch.context_rows)
        )
        await self._insert_until_stored(
            DLQ_TABLE, lambda: store().insert_dead_letters(batch.dlq_rows), bool(batch.dlq_rows)
        )
        await self._insert_until_stored(
            "papers", lambda: store().insert_papers(batch.paper_rows), bool(batch.paper_rows)
        )
        # last, so a crash before it is repaired by the re-delivered batch
        await self._insert_until_stored(
            "qa_pairs", lambda: self._prune_stale_pairs(batch.keep_pairs), bool(batch.keep_pairs)
        )
        metrics.QA_STORED.inc(stored)
        for role, count in batch.judgments.items():
            metrics.JUDGMENTS_STORED.labels(role).inc(count)
        metrics.PAPERS.labels(STAGE, "scored").inc(len(batch.completed))
        metrics.PAPERS.labels(STAGE, "failed").inc(batch.failed)
        for rec in batch.completed:
            if rec.paper.submitted_at is not None:
                metrics.END_TO_END_SECONDS.observe((now() - rec.paper.submitted_at).total_seconds())
        metrics.STAGE_SECONDS.labels(STAGE).observe(batch.seconds + time.perf_counter() - started)
        self._batches += 1
        if self._kill_after_batches and self._batches >= self._kill_after_batches:
            log.critical(
                "fault injection: killing the worker after sink batch %d, before its offsets are committed",
                self._batches,
            )
            os.kill(os.getpid(), signal.SIGKILL)

    async def _store_judgments(self, records: list) -> None:
        """Insert a judgments row of each scored record (the ones ClickHouse cannot read are dead-lettered)."""
        if not records:
            return
        payloads = [r.value for r in records]
        started = time.perf_counter()
        try:
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: self.ctx.store().insert_judgments_json(payloads)
            )
            metrics.SINK_INSERT_SECONDS.labels("judgments").observe(time.perf_counter() - started)
            return
        except StoreError as exc:
            log.warning("sink: %d judgments not stored as JSON (%s); storing the valid ones as rows", len(records), exc)
        rows = []
        for record in records:
            try:
                rows.append(judgment_row(decode(record.value, QAScored)))
            except RecordError as exc:
                await self.ctx.reject(STAGE, exc, paper_id=record_key(record), event=record)
        await self._insert_until_stored("judgments", lambda: self.ctx.store().insert_judgments(rows), bool(rows))

    async def _near_duplicate_decisions(self, views: list[PairView]) -> list:
        """Each pair's near-duplicate decision (processors/dedup.py), made before the pairs are stored; retried
        while ClickHouse is away. Without the embeddings model the pairs are stored unchecked, with a warning."""
        if not views or not self.ctx.settings.near_duplicates:
            return [UNCHECKED] * len(views)
        dedup = NearDuplicates(self.ctx.store(), self.ctx.settings)
        delay = 0.5
        while True:
            try:
                return await asyncio.get_running_loop().run_in_executor(None, dedup.decide, views)
            except StoreError as exc:
                metrics.SINK_RETRIES.inc()
                log.warning("sink: near-duplicate lookup failed: %s; retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
            except Exception as exc:  # the embeddings model is missing or broken: pairs still flow, unchecked
                if not self._dedup_warned:
                    log.warning("sink: near-duplicate questions are not checked: %s", exc)
                    self._dedup_warned = True
                return [UNCHECKED] * len(views)

    async def _store_scored(self, records: list, decisions: list) -> set[int]:
        """Insert the scored pairs with their near-duplicate decisions; returns the records stored, by id() (the
        rest were dead-lettered)."""
        if not records:
            return set()
        payloads = [with_decision(r.value, d) for r, d in zip(records, decisions, strict=True)]
        started = time.perf_counter()
        try:
            await asyncio.get_running_loop().run_in_executor(None, lambda: self.ctx.store().insert_qa_json(payloads))
            metrics.SINK_INSERT_SECONDS.labels("qa_pairs").observe(time.perf_counter() - started)
            return {id(r) for r in records}
        except StoreError as exc:
            # not "refused": an unreachable ClickHouse ends here too, and the row path below retries until it is back
            log.warning(
                "sink: %d scored records not stored as JSON (%s); checking each here, storing the valid ones as rows",
                len(records),
                exc,
            )
        # ClickHouse away, or a record it cannot read: find the records that are not valid QAScored, store the rest
        # as rows (retrying until stored); any error from here on is ClickHouse's
        rows, stored = [], set()
        for record, decision in zip(records, decisions, strict=True):
            try:
                rows.append(qa_row(decode(record.value, QAScored), decision))
                stored.add(id(record))
            except RecordError as exc:
                await self.ctx.reject(STAGE, exc, paper_id=record_key(record), event=record)
        await self._insert_until_stored("qa_pairs", lambda: self.ctx.store().insert_qa(rows), bool(rows))
        return stored

    def _prune_stale_pairs(self, keep_pairs: dict[str, list[str]]) -> None:
        deleted = self.ctx.store().prune_pairs(keep_pairs)
        if deleted:
            log.info(
                "sink: deleted %d pairs of %d papers that their latest run no longer has", deleted, len(keep_pairs)
            )
            metrics.QA_PRUNED.inc(deleted)

    async def _insert_until_stored(self, table: str, insert: Callable[[], None], needed: bool) -> None:
        if not needed:
            return
        delay = 0.5
        while True:
            started = time.perf_counter()
            try:
                await asyncio.get_running_loop().run_in_executor(None, insert)
                metrics.SINK_INSERT_SECONDS.labels(table).observe(time.perf_counter() - started)
                return
            except StoreError as exc:
                # keep the batch and do not ack: the offsets stay uncommitted until ClickHouse takes it
                metrics.SINK_RETRIES.inc()
                log.warning("sink: %s; retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)


@dataclass
class _Batch:
    records: list = field(default_factory=list)
    ends: dict = field(default_factory=dict)  # TopicPartition -> the offset to commit (last record's + 1)
    received: dict[str, int] = field(default_factory=dict)  # records per topic
    bytes: int = 0  # of the records' values: paper texts make some records large

    def add(self, tp, part: list) -> None:
        self.records.extend(part)
        self.bytes += sum(len(r.value or b"") for r in part)
        self.ends[tp] = part[-1].offset + 1
        self.received[tp.topic] = self.received.get(tp.topic, 0) + len(part)


class SinkConsumer:
    """Reads batches of up to `sink_batch_rows` records, or what arrived within `sink_batch_seconds` of the first;
    `prepare` each (Python work), then `store` it and commit its offsets only after that returned.

    Two batches at most are in hand: while ClickHouse stores one (in a thread, without the GIL), the next is read
    and prepared; it is stored only after the previous one is stored and committed, so batches land in order.
    While ClickHouse is away nothing more is fetched: memory stays at two batches plus aiokafka's prefetch."""

    def __init__(
        self,
        settings: Settings,
        prepare: Callable[[list], Awaitable[Any]],
        store: Callable[[Any], Awaitable[None]],
        *,
        broker_url: str = "",
        app_id: str = "sciqag",
        monitor: Any = None,
        faust_metrics: Any = None,
    ) -> None:
        self.settings = settings
        self.broker_url = broker_url or settings.broker_url  # the embedded broker's is known only once it is up
        self.prepare = prepare
        self.store = store
        self.group_id = sink_group(app_id)
        self.monitor = monitor  # Faust's PrometheusMonitor: committed and end offsets per partition (consumer lag)
        self.faust_metrics = faust_metrics  # records received per topic, as Faust counts them for its agents
        self.consumer = None  # the running aiokafka consumer (its assignment is a metric: metrics.ASSIGNED_PARTITIONS)

    def _consumer(self):
        from aiokafka import AIOKafkaConsumer

        timeouts = {}
        if (group := group_timeouts(self.settings)) is not None:
            timeouts = dict(session_timeout_ms=int(group[0] * 1000), heartbeat_interval_ms=int(group[1] * 1000))
        return AIOKafkaConsumer(
            *SINK_TOPICS,
            bootstrap_servers=bootstrap_servers(self.broker_url),
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.settings.sink_batch_rows,
            # aiokafka prefetches up to 50 MB by default: with paper texts on two of the four topics that is what a
            # burst of papers would hold in the sink; a fetch still returns a record larger than this
            fetch_max_bytes=MAX_BATCH_BYTES,
            max_partition_fetch_bytes=1024 * 1024,
            **timeouts,
            **aiokafka_security(self.settings),
        )

    async def run(self) -> None:
        consumer = self.consumer = self._consumer()
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
            full = len(batch.records) >= limit or batch.bytes >= MAX_BATCH_BYTES
            if batch.records and (full or time.monotonic() >= deadline):
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


async def run_sink_until_cancelled(
    consumer: SinkConsumer, on_crash: Callable[[BaseException], Awaitable[None]]
) -> None:
    """The worker's sink task: a sink that stops for any reason but cancellation takes the worker down with it
    (a supervisor restarts it), rather than leaving a worker that consumes nothing into ClickHouse."""
    try:
        await consumer.run()
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        log.critical("the sink stopped: %s", exc, exc_info=True)
        await on_crash(exc)
