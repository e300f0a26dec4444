"""What every stage shares: the topics, the LLM engine once it is up, the ClickHouse store, and the two ways a
record leaves a stage (sent on, or dead-lettered).

Every failure becomes a DeadLetter with the stage, the paper id, a short error kind and a readable reason; the
loop goes on. Nothing raises out to Faust, because an exception in an agent would stop its partition.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from schemas import DeadLetter, encode

from .. import metrics
from ..errors import EngineDead, RecordTooLarge, SciqagError
from ..kafka import MAX_RECORD_BYTES
from ..llm import LLMEngine
from ..settings import Settings
from ..store import Store

log = logging.getLogger("sciqag.stages")

LLM_ATTEMPTS = 3  # per request: small models now and then emit a degenerate, unparseable answer
KEY_WHOLE_BYTES = 1024  # a key up to this long is a paper id and is used whole (Settings.max_key_bytes' default)
EXCERPT_CHARS = 200  # how much of a longer key (or another unbounded string) a dead letter or a log line carries
DEAD_LETTER_ATTEMPTS = 3


@dataclass
class Topics:
    papers: Any
    extracted: Any
    generated: Any
    scored: Any
    dlq: Any
    rejudge: Any = None  # sciqag.qa.rejudge: what `sciqag rejudge` puts back for the re-judging judge


class EngineHolder:
    """The LLM engine once it is up; agents wait for it."""

    def __init__(self) -> None:
        self._ready = asyncio.Event()
        self.engine: LLMEngine | None = None
        self.error: BaseException | None = None

    def set(self, engine: LLMEngine | None, error: BaseException | None = None) -> None:
        self.engine, self.error = engine, error
        self._ready.set()

    def fatal(self, error: BaseException) -> None:
        """The engine died: remember why and let the worker stop (see app.py)."""
        if self.error is None:
            self.error = error
        self.engine = None
        self.on_fatal(error)

    def on_fatal(self, error: BaseException) -> None:  # replaced by the app
        pass

    async def get(self) -> LLMEngine:
        await self._ready.wait()
        if self.engine is None:
            raise RuntimeError(f"the LLM engine did not start: {self.error}")
        return self.engine


def origin(event):
    """What carries topic, partition, offset and key: a Faust event's message, or an aiokafka ConsumerRecord."""
    return getattr(event, "message", event)


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """`text` when it is at most `limit` characters, else its first `limit` characters and its length."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...[{len(text)} chars]"


def record_key(event) -> str:
    """The record's key as text; a key over KEY_WHOLE_BYTES becomes an excerpt (its start and its length), so a
    hostile key is never copied whole into a dead letter, a log line or the key of another record."""
    key = origin(event).key
    if key is None:
        return ""
    raw = bytes(key) if isinstance(key, (bytes, bytearray)) else str(key).encode("utf-8", "replace")
    if len(raw) <= KEY_WHOLE_BYTES:
        return raw.decode("utf-8", "replace")
    return f"{raw[: EXCERPT_CHARS * 2].decode('utf-8', 'replace')[:EXCERPT_CHARS]}...[{len(raw)} bytes]"


def request_id(role: str, event, attempt: int) -> str:
    m = origin(event)
    # unique even when a record is redelivered while its first request still runs (vllm#10583)
    return f"{role}:{m.topic}:{m.partition}:{m.offset}:{attempt}:{uuid.uuid4().hex[:8]}"


class StageContext:
    """The plumbing the stages share; one per worker."""

    def __init__(self, settings: Settings, topics: Topics, engine: EngineHolder) -> None:
        self.settings = settings
        self.topics = topics
        self.engine = engine
        self._store: Store | None = None
        self._store_lock = threading.Lock()

    def store(self) -> Store:
        """The ClickHouse store, connected on first use (called from executor threads)."""
        with self._store_lock:
            if self._store is None:
                store = Store(self.settings)
                store.ensure_schema()
                self._store = store
            return self._store

    async def send(self, topic, paper_id: str, record: msgspec.Struct) -> None:
        """Produce one record, its sizes checked first: the producer would refuse it later with an error that says
        nothing about the record (MessageSizeTooLargeError)."""
        key = paper_id.encode("utf-8", "replace")
        if len(key) > self.settings.max_key_bytes:
            raise RecordTooLarge(
                f"paper id of {len(key)} bytes, over the limit of {self.settings.max_key_bytes}", kind="key_too_large"
            )
        value = encode(record)
        if len(key) + len(value) > MAX_RECORD_BYTES:
            raise RecordTooLarge(
                f"the {type(record).__name__} record would be {len(key) + len(value)} bytes, over the producer's "
                f"limit of {MAX_RECORD_BYTES}",
                kind="record_too_large",
            )
        await topic.send(key=key, value=value)

    async def dead_letter(
        self,
        *,
        stage: str,
        kind: str,
        message: str,
        paper_id: str = "",
        event=None,
        source_uri: str = "",
        paper_failed: bool = True,
    ) -> None:
        payload = b""
        if event is not None and isinstance(event.value, (bytes, bytearray)):
            payload = bytes(event.value[:300])
        source = origin(event) if event is not None else None
        # every field bounded, so a dead letter always fits the producer's limit whatever the record carried
        if len(paper_id.encode("utf-8", "replace")) > self.settings.max_key_bytes:
            paper_id = excerpt(paper_id)
        record = DeadLetter(
            stage=stage[:100],
            paper_id=paper_id,
            error_kind=kind[:100],
            message=message[:2000],
            source_topic=source.topic if source is not None else "",
            source_partition=source.partition if source is not None else -1,
            source_offset=source.offset if source is not None else -1,
            source_uri=excerpt(source_uri, self.settings.max_uri_chars),
            payload_excerpt=payload.decode("utf-8", "replace"),
            paper_failed=paper_failed,
        )
        log.warning("%s: paper %s -> DLQ (%s): %s", stage, excerpt(paper_id, 300) or "?", kind, message[:300])
        await self.send(self.topics.dlq, paper_id, record)
        # counted once it is sent: a dead letter that fails and is sent again by the fallback counts once
        metrics.DLQ.labels(stage, kind).inc()
        if paper_failed:
            metrics.PAPERS.labels(stage, "failed").inc()

    async def reject(
        self,
        stage: str,
        error: SciqagError,
        *,
        paper_id: str,
        event,
        source_uri: str = "",
        paper_failed: bool = True,
        prefix: str = "",
    ) -> None:
        """Dead-letter a record for a project error: its kind, its message."""
        await self.dead_letter(
            stage=stage,
            kind=error.kind,
            message=f"{prefix}{error}",
            paper_id=paper_id,
            event=event,
            source_uri=source_uri,
            paper_failed=paper_failed,
        )

    async def guard(self, stage: str, event, work: Callable[[], Awaitable[None]]) -> None:
        """Run one record's work; an unexpected error dead-letters the record instead of killing the agent."""
        started = time.perf_counter()
        try:
            key = origin(event).key
            if key is not None and len(key) > self.settings.max_key_bytes:
                raise RecordTooLarge(
                    f"key of {len(key)} bytes, over the limit of {self.settings.max_key_bytes} (a paper id is the key)",
                    kind="key_too_large",
                )
            await work()
        except asyncio.CancelledError:
            raise
        except EngineDead as exc:
            # not the paper's fault: leave it unacknowledged (it is redelivered after a restart) and stop
            log.critical("%s: %s; stopping the worker", stage, exc)
            self.engine.fatal(exc)
            await asyncio.Event().wait()
        except SciqagError as exc:  # the record's own fault found on the way (a bound, a bad field): its kind
            await self._dead_letter_or_log(stage, event, exc.kind, str(exc))
        except Exception as exc:  # the last line of defence: a bug must not wedge the partition
            text = str(exc)
            log.error("%s: unexpected error: %s: %s", stage, type(exc).__name__, text[:500], exc_info=len(text) < 2000)
            await self._dead_letter_or_log(stage, event, "internal_error", f"{type(exc).__name__}: {text[:2000]}")
        finally:
            metrics.STAGE_SECONDS.labels(stage).observe(time.perf_counter() - started)

    async def _dead_letter_or_log(self, stage: str, event, kind: str, message: str) -> None:
        """The fallback dead letter; it cannot be too large (every field is bounded), so what fails here is the
        broker: a few tries, then a log line with the record's place, and the partition goes on."""
        for attempt in range(DEAD_LETTER_ATTEMPTS):
            try:
                return await self.dead_letter(
                    stage=stage, kind=kind, message=message, paper_id=record_key(event), event=event
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = exc
                await asyncio.sleep(0.5 * (attempt + 1))
        m = origin(event)
        log.critical(
            "%s: the dead letter for %s/%s/%s (%s) could not be sent: %s",
            stage,
            m.topic,
            m.partition,
            m.offset,
            kind,
            str(error)[:300],
        )
        metrics.DLQ.labels(stage, "dead_letter_not_sent").inc()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
