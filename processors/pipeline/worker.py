"""Starting a worker with whatever embedded services it needs, and running a job inside it.

A job (`sciqag run`, `dataset import-sciqag`, the benchmarks) is a coroutine that gets a `Running` worker: the
settings, the store, the topics to send records to and the LLM engine. It never reaches into the stages.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import msgspec
from prometheus_client import start_http_server

from schemas import topics as T

from ..llm import LLMEngine
from ..local.broker import start_orphan_reaper, tansu_broker
from ..local.model import prepare_bundled_model
from ..logs import quiet_repeated_kafka_logs
from ..settings import Settings
from ..store import Store

if TYPE_CHECKING:
    from .app import Pipeline

log = logging.getLogger("sciqag")

LLM_AGENTS = frozenset({"generator", "judge", "rejudge"})


class Running:
    """What a job sees of the worker it runs in."""

    def __init__(self, app, pipeline: Pipeline) -> None:
        self.app = app
        self._ctx = pipeline.context
        self.settings: Settings = pipeline.context.settings

    async def store(self) -> Store:
        """The worker's ClickHouse store (connected on first use)."""
        return await asyncio.get_running_loop().run_in_executor(None, self._ctx.store)

    async def send(self, topic: str, key: str, record: msgspec.Struct) -> None:
        """Send a record to one of the pipeline's topics, by name (schemas.topics)."""
        topics = self._ctx.topics
        by_name = {
            T.PAPERS: topics.papers,
            T.EXTRACTED: topics.extracted,
            T.GENERATED: topics.generated,
            T.SCORED: topics.scored,
            T.DLQ: topics.dlq,
            T.REJUDGE: topics.rejudge,
        }
        await self._ctx.send(by_name[topic], key, record)

    async def llm(self) -> LLMEngine:
        """The LLM engine, once it is up."""
        return await self._ctx.engine.get()

    def llm_failure(self) -> BaseException | None:
        """Why the LLM engine of a worker with LLM agents is not there (it failed to start or died), else None."""
        holder = self._ctx.engine
        if set(self.settings.agents) & LLM_AGENTS and holder.engine is None and holder.error is not None:
            return holder.error
        return None


Job = Callable[[Running], Awaitable[int]]


def run_worker(settings: Settings, job: Job | None = None) -> int:
    """Run the Faust worker until it is stopped (or `job` finishes); returns the exit code."""
    import faust

    from .app import build_app  # Faust and its agents load only here

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _fresh_event_loop()
    reaper = start_orphan_reaper()
    exit_code = {"code": 0}
    try:
        with contextlib.ExitStack() as stack:
            broker = settings.broker_url
            if not broker:
                broker = stack.enter_context(tansu_broker(log_file=settings.data_dir / "tansu.log"))
            model_dir = None
            if set(settings.agents) & LLM_AGENTS and not settings.llm_url:
                model_dir = settings.model or str(prepare_bundled_model(settings.cache_dir))
            app, pipeline = build_app(settings, broker, model_dir)
            quiet_repeated_kafka_logs()
            # the start-up heap (Faust, aiokafka, vLLM's modules: ~200k objects) would otherwise be walked by every
            # full collection while records stream through; the sink benchmark decoded 2-3x slower without this
            gc.collect()
            gc.freeze()
            stack.callback(pipeline.close)
            start_http_server(settings.metrics_port, addr="0.0.0.0")
            log.info("metrics on http://127.0.0.1:%d/metrics", settings.metrics_port)

            if job is not None:

                @app.task
                async def run_job() -> None:
                    try:
                        exit_code["code"] = await job(Running(app, pipeline))
                    except Exception:
                        log.exception("the job failed")
                        exit_code["code"] = 1
                    finally:
                        os.kill(os.getpid(), signal.SIGTERM)  # a graceful stop of the whole worker

            worker = faust.Worker(app, loglevel=settings.log_level_or("WARNING"), quiet=True, redirect_stdouts=False)
            worker.spinner = None  # its cursor escapes would land in the summary on stdout
            try:
                worker.execute_from_commandline()
            except SystemExit as exc:
                if exc.code not in (0, None) and exit_code["code"] == 0:
                    exit_code["code"] = int(exc.code) if isinstance(exc.code, int) else 1
            if app.crash_reason is not None and exit_code["code"] == 0:
                exit_code["code"] = 1
    finally:
        reaper.kill()
    return exit_code["code"]


def _fresh_event_loop() -> None:
    """Faust takes the current loop and closes it when the worker stops: a second worker in the same process
    (the benchmarks run several) needs a new one."""
    try:
        closed = asyncio.get_event_loop().is_closed()
    except RuntimeError:
        closed = True
    if closed:
        asyncio.set_event_loop(asyncio.new_event_loop())
