"""The Faust app: five topics, four agents (the sink a task over its own aiokafka consumer), the LLM engine task,
metrics.

`build_app()` makes the app for given settings (the broker URL is only known
once an embedded broker is up). The agents are short loops over the stages.
"""
from __future__ import annotations

import asyncio
import logging

import faust
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from prometheus_client import REGISTRY

from schemas import topics as T

from . import faust_commit
from .kafka_auth import faust_credentials
from .llm import EngineOptions, open_engine
from .settings import Settings
from .sink import SinkConsumer, run_sink_until_cancelled
from .stages import EngineHolder, Stages, Topics

log = logging.getLogger(__name__)

AGENTS = ("extractor", "generator", "judge", "sink")
_faust_metrics: FaustMetrics | None = None


def engine_options(settings: Settings, model_dir: str) -> EngineOptions:
    memory = settings.gpu_memory_utilization
    if memory <= 0:
        # vLLM's CPU backend reads this as the share of RAM to reserve; a GPU wants most of its memory
        memory = 0.85 if _has_cuda() else 0.2
    return EngineOptions(
        model=model_dir,
        max_model_len=settings.max_model_len,
        max_in_flight=settings.max_in_flight,
        temperature=settings.temperature,
        gpu_memory_utilization=memory,
    )


def _has_cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def open_llm(settings: Settings, model_dir: str | None):
    """The LLM backend: an OpenAI-compatible server when SCIQAG_LLM_URL is set, else vLLM in-process."""
    if settings.llm_url:
        from .llm_http import open_http_engine

        return open_http_engine(
            settings.llm_url, model=settings.model, api_key=settings.llm_api_key, timeout_s=settings.llm_timeout_s,
            max_in_flight=settings.max_in_flight, temperature=settings.temperature, tokenizer_path=settings.tokenizer,
        )
    return open_engine(engine_options(settings, model_dir))


def build_app(settings: Settings, broker_url: str, model_dir: str | None) -> tuple[faust.App, Stages]:
    unknown = set(settings.agents) - set(AGENTS)
    if unknown:
        raise ValueError(f"unknown agents {sorted(unknown)}; choose from {', '.join(AGENTS)}")
    faust_commit.install()  # at-least-once under agent concurrency (see faust_commit.py)
    group_timeouts = {}
    # the embedded broker has one member; Kafka-sized timeouts make the group join take ~30 s
    session_s = settings.kafka_session_timeout_s or (6 if settings.embedded_broker else 0)
    if session_s:
        group_timeouts = dict(broker_rebalance_timeout=session_s, broker_session_timeout=session_s,
                              broker_heartbeat_interval=max(0.5, session_s / 6))
    app = faust.App(
        "sciqag",
        broker=broker_url,
        broker_credentials=faust_credentials(settings),
        store="memory://",
        autodiscover=False,
        web_enabled=False,
        topic_partitions=settings.topic_partitions,
        consumer_auto_offset_reset="earliest",
        producer_compression_type="gzip",
        producer_max_request_size=4 * 1024 * 1024,
        stream_buffer_maxsize=settings.stream_buffer,
        datadir=str(settings.data_dir / "faust"),
        **group_timeouts,
    )
    global _faust_metrics
    if _faust_metrics is None:  # the registry is process-wide; create Faust's metrics once
        _faust_metrics = FaustMetrics.create(REGISTRY, "faust")
    app.monitor = PrometheusMonitor(metrics=_faust_metrics)

    def topic(name: str):
        return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    topics = Topics(
        papers=topic(T.PAPERS), extracted=topic(T.EXTRACTED), generated=topic(T.GENERATED),
        scored=topic(T.SCORED), dlq=topic(T.DLQ),
    )
    holder = EngineHolder()

    def stop_on_fatal(error: BaseException) -> None:
        asyncio.ensure_future(app.crash(error))

    holder.on_fatal = stop_on_fatal
    stages = Stages(settings, topics, holder)
    enabled = set(settings.agents)

    if enabled & {"generator", "judge"}:
        if model_dir is None and not settings.llm_url:
            raise ValueError("the generator and judge agents need a model folder or an LLM server URL")

        @app.task
        async def llm_engine() -> None:
            try:
                async with open_llm(settings, model_dir) as engine:
                    holder.set(engine)
                    await asyncio.Event().wait()  # until the worker stops and cancels this task
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                log.error("the LLM engine failed to start: %s", exc)
                holder.set(None, exc)
                await app.crash(exc)

    else:
        holder.set(None, RuntimeError("no LLM agents in this worker"))

    if "extractor" in enabled:

        @app.agent(topics.papers, name="extractor", concurrency=max(2, settings.extract_workers * 2))
        async def extractor(stream):
            async for event in stream.events():
                await stages.extract(event)

    if "generator" in enabled:

        @app.agent(topics.extracted, name="generator", concurrency=settings.max_in_flight)
        async def generator(stream):
            async for event in stream.events():
                await stages.generate(event)

    if "judge" in enabled:
        # each judge call runs all pairs of one paper at once. A quarter of the in-flight cap in papers left the
        # engine short at the end of a stream when a small model's pairs are mostly filtered (~3 a paper:
        # benchmarks/llm_stage.py); half of it keeps the cap filled, and more only queues at the semaphore
        @app.agent(topics.generated, name="judge", concurrency=max(2, settings.max_in_flight // 2))
        async def judge(stream):
            async for event in stream.events():
                await stages.judge(event)

    if "sink" in enabled:
        # not a Faust agent: the sink reads whole batches from aiokafka (see processors/sink.py)
        sink_consumer = SinkConsumer(settings, stages.sink_prepare, stages.sink_store, broker_url=broker_url,
                                     app_id=app.conf.id, monitor=app.monitor, faust_metrics=_faust_metrics)

        @app.task
        async def sink() -> None:
            for topic_ in (topics.scored, topics.dlq):  # created with the app's partition count, as agents' are
                await topic_.maybe_declare()
            await run_sink_until_cancelled(sink_consumer, app.crash)

    return app, stages
