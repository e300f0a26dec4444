"""The Faust app: five topics, four agents (the sink a task over its own aiokafka consumer), the LLM engine task,
metrics.

`build_app()` makes the app for given settings (the broker URL is only known
once an embedded broker is up). The agents are short loops over the stages.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import faust
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from prometheus_client import REGISTRY

from schemas import topics as T

from .. import judging, metrics
from ..kafka import COMPRESSION, MAX_REQUEST_BYTES, faust_credentials, group_timeouts
from ..llm import open_llm
from ..settings import Settings
from . import faust_commit
from .context import EngineHolder, StageContext, Topics
from .extract import Extractor
from .generate import Generator
from .judge import Judge, ShadowJudge
from .sink import Sink, SinkConsumer, run_sink_until_cancelled

log = logging.getLogger(__name__)

AGENTS = ("extractor", "generator", "judge", "sink")
APP_ID = "sciqag"  # the agents' consumer group; the sink's is sink_group(APP_ID)
# agents a job's own worker runs: rejudge, the judge again on `sciqag.qa.rejudge` for `sciqag rejudge`
JOB_AGENTS = ("rejudge",)
_faust_metrics: FaustMetrics | None = None


@dataclass
class Pipeline:
    """The stages of one worker, over one shared context."""

    context: StageContext
    extractor: Extractor
    generator: Generator
    judge: Judge
    sink: Sink
    rejudge: Judge | None = None

    @classmethod
    def create(cls, settings: Settings, topics: Topics, engine: EngineHolder) -> Pipeline:
        ctx = StageContext(settings, topics, engine)
        return cls(ctx, Extractor(ctx), Generator(ctx), Judge(ctx), Sink(ctx), Judge(ctx, role="rejudge"))

    @property
    def settings(self) -> Settings:
        return self.context.settings

    @property
    def topics(self) -> Topics:
        return self.context.topics

    def close(self) -> None:
        self.extractor.close()
        self.context.close()


def build_app(settings: Settings, broker_url: str, model_dir: str | None) -> tuple[faust.App, Pipeline]:
    unknown = set(settings.agents) - set(AGENTS) - set(JOB_AGENTS)
    if unknown:
        raise ValueError(f"unknown agents {sorted(unknown)}; choose from {', '.join(AGENTS)}")
    faust_commit.install()  # at-least-once under agent concurrency (see faust_commit.py)
    timeouts = {}
    if (group := group_timeouts(settings)) is not None:
        timeouts = dict(
            broker_rebalance_timeout=group[0], broker_session_timeout=group[0], broker_heartbeat_interval=group[1]
        )
    # a worker of the sink alone runs no Faust agent, but Faust's consumer would still join the agents' group (with no
    # topics), so every start or stop of a sink would rebalance the extractor and LLM workers: it gets its own group
    enabled = set(settings.agents)
    app = faust.App(
        APP_ID if enabled - {"sink"} else f"{APP_ID}-sink-worker",
        broker=broker_url,
        broker_credentials=faust_credentials(settings),
        store="memory://",
        autodiscover=False,
        web_enabled=False,
        topic_partitions=settings.topic_partitions,
        consumer_auto_offset_reset="earliest",
        producer_compression_type=COMPRESSION,
        producer_max_request_size=MAX_REQUEST_BYTES,
        stream_buffer_maxsize=settings.stream_buffer,
        datadir=str(settings.data_dir / "faust"),
        **timeouts,
    )
    global _faust_metrics
    if _faust_metrics is None:  # the registry is process-wide; create Faust's metrics once
        _faust_metrics = FaustMetrics.create(REGISTRY, "faust")
    app.monitor = PrometheusMonitor(metrics=_faust_metrics)
    # each labelled counter of this worker's stages exists from the start, at 0: a series that first appears with
    # its value already up makes rate() and increase() miss the increments before it (a new replica's first papers)
    for agent in enabled:
        for outcome in ("scored", "failed") if agent == "sink" else ("ok", "failed"):
            metrics.PAPERS.labels(agent, outcome)
    if "judge" in enabled:
        for outcome in ("accepted", "rejected"):
            metrics.QA_PAIRS.labels(outcome)
    if enabled - {"sink"}:  # the Faust agents' group (a sink-only worker's Faust consumer holds nothing)
        metrics.ASSIGNED_PARTITIONS.sources[app.conf.id] = lambda: [
            (tp.topic, tp.partition) for tp in app.consumer.assignment()
        ]

    def topic(name: str):
        return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    topics = Topics(
        papers=topic(T.PAPERS),
        extracted=topic(T.EXTRACTED),
        generated=topic(T.GENERATED),
        scored=topic(T.SCORED),
        dlq=topic(T.DLQ),
        rejudge=topic(T.REJUDGE),
    )
    holder = EngineHolder()

    def stop_on_fatal(error: BaseException) -> None:
        asyncio.ensure_future(app.crash(error))

    holder.on_fatal = stop_on_fatal
    pipeline = Pipeline.create(settings, topics, holder)

    if enabled & {"generator", "judge", "rejudge"}:
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
                await pipeline.extractor.handle(event)

    if "generator" in enabled:

        @app.agent(topics.extracted, name="generator", concurrency=settings.max_in_flight)
        async def generator(stream):
            async for event in stream.events():
                await pipeline.generator.handle(event)

    if "judge" in enabled:
        # each judge call runs all pairs of one paper at once. A quarter of the in-flight cap in papers left the
        # engine short at the end of a stream when a small model's pairs are mostly filtered (~3 a paper:
        # benchmarks/llm_stage.py); half of it keeps the cap filled, and more only queues at the semaphore
        @app.agent(topics.generated, name="judge", concurrency=max(2, settings.max_in_flight // 2))
        async def judge(stream):
            async for event in stream.events():
                await pipeline.judge.handle(event)

        if settings.shadow_share > 0:
            shadow = ShadowJudge(pipeline.context)
            pipeline.judge.shadow = shadow

            @app.task
            async def shadow_judge() -> None:
                await shadow.run()  # never raises: the live judge goes on without it

    if "rejudge" in enabled:

        @app.agent(topics.rejudge, name="rejudge", concurrency=max(2, settings.max_in_flight // 2))
        async def rejudge(stream):
            async for event in stream.events():
                await pipeline.rejudge.handle(event)

    if "sink" in enabled:
        # not a Faust agent: the sink reads whole batches from aiokafka (see sink.py)
        sink_consumer = SinkConsumer(
            settings,
            pipeline.sink.prepare,
            pipeline.sink.store,
            broker_url=broker_url,
            app_id=APP_ID,
            monitor=app.monitor,
            faust_metrics=_faust_metrics,
        )
        metrics.ASSIGNED_PARTITIONS.sources[sink_consumer.group_id] = lambda: (
            [(tp.topic, tp.partition) for tp in sink_consumer.consumer.assignment()] if sink_consumer.consumer else []
        )

        @app.task
        async def sink() -> None:
            # created with the app's partition count, as the agents' are
            for topic_ in (topics.scored, topics.dlq, topics.extracted, topics.generated):
                await topic_.maybe_declare()
            await run_sink_until_cancelled(sink_consumer, app.crash)

        if settings.judge_metrics_interval_s > 0:

            @app.task
            async def judge_metrics() -> None:
                # the judges' agreement and cost against the primary, for the dashboard (sciqag_judge_* gauges)
                while True:
                    await asyncio.sleep(settings.judge_metrics_interval_s)
                    try:
                        await asyncio.get_running_loop().run_in_executor(
                            None, judging.publish_metrics, pipeline.context.store(), settings
                        )
                    except Exception as exc:  # figures for a dashboard: never a reason to stop the worker
                        log.warning("judge metrics not computed: %s", exc)

    return app, pipeline
