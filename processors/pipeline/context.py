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
from ..errors import EngineDead, SciqagError
from ..llm import LLMEngine
from ..settings import Settings
from ..store import Store

log = logging.getLogger("sciqag.stages")

LLM_ATTEMPTS = 3  # per request: small models now and then emit a degenerate, unparseable answer


@dataclass
class Topics:
    papers: Any
    extracted: Any
    generated: Any
    scored: Any
    dlq: Any


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


def record_key(event) -> str:
    key = origin(event).key
    if isinstance(key, bytes):
        return key.decode("utf-8", "replace")
    return str(key or "")


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
        await topic.send(key=paper_id.encode(), value=encode(record))

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
        record = DeadLetter(
            stage=stage,
            paper_id=paper_id,
            error_kind=kind,
            message=message[:2000],
            source_topic=source.topic if source is not None else "",
            source_partition=source.partition if source is not None else -1,
            source_offset=source.offset if source is not None else -1,
            source_uri=source_uri,
            payload_excerpt=payload.decode("utf-8", "replace"),
            paper_failed=paper_failed,
        )
        metrics.DLQ.labels(stage, kind).inc()
        if paper_failed:
            metrics.PAPERS.labels(stage, "failed").inc()
        log.warning("%s: paper %s -> DLQ (%s): %s", stage, paper_id or "?", kind, message[:300])
        await self.send(self.topics.dlq, paper_id, record)

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
            await work()
        except asyncio.CancelledError:
            raise
        except EngineDead as exc:
            # not the paper's fault: leave it unacknowledged (it is redelivered after a restart) and stop
            log.critical("%s: %s; stopping the worker", stage, exc)
            self.engine.fatal(exc)
            await asyncio.Event().wait()
        except Exception as exc:  # the last line of defence: a bug must not wedge the partition
            log.exception("%s: unexpected error", stage)
            await self.dead_letter(
                stage=stage,
                kind="internal_error",
                message=f"{type(exc).__name__}: {exc}",
                paper_id=record_key(event),
                event=event,
            )
        finally:
            metrics.STAGE_SECONDS.labels(stage).observe(time.perf_counter() - started)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
