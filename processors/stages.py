"""What each agent does with one record (or one batch, for the sink).

Every failure becomes a DeadLetter with the stage, the paper id, a short error
kind and a readable reason; the loop goes on. Nothing here raises out to Faust,
because an exception in an agent would stop its partition.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import multiprocessing
import os
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import msgspec

from schemas import (
    RACAR_DIMENSIONS,
    DeadLetter,
    PaperExtracted,
    PaperQuality,
    PaperSubmitted,
    QAGenerated,
    QAPair,
    QAScored,
    QAScoredCheck,
    RecordError,
    Section,
    decode,
    encode,
)
from schemas import topics as T
from schemas.ddl import DLQ_TABLE
from sciqag.context import fit_text
from sciqag.errors import ExtractionError, ModelOutputError
from sciqag.extraction import EXTRACTOR_VERSION, ExtractedText, extract_pdf
from sciqag.ids import qa_id_for
from sciqag.parsing import parse_correct_options, parse_generation, parse_mcq, parse_racar
from sciqag.prefilter import drop_reason, prefilter
from sciqag.prompts import (
    LANGUAGE_NAMES,
    MCQ_PROMPT_VERSION,
    PROMPT_VERSION,
    generation_messages,
    generation_schema,
    judge_messages,
    judge_schema,
    mcq_judge_schema,
    mcq_messages,
    mcq_schema,
)
from sciqag.quality import answer_coverage, numeric_support, question_diversity
from sciqag.racar import is_accepted, scores

from . import metrics
from .llm import EngineDead, LLMEngine, LLMError
from .settings import Settings
from .sources import SourceError, load_pdf
from .store import Store, StoreError, now

log = logging.getLogger("sciqag.stages")

PROMPT_OVERHEAD_TOKENS = 600  # instructions + chat template around the paper text
LLM_ATTEMPTS = 3  # per request: small models now and then emit a degenerate, unparseable answer


@dataclass
class Topics:
    papers: Any
    extracted: Any
    generated: Any
    scored: Any
    dlq: Any


@dataclass
class SinkBatch:
    """One sink batch, checked and sorted, ready to insert."""

    scored: list = field(default_factory=list)  # the records of scored pairs that passed the check
    paper_rows: list = field(default_factory=list)
    dlq_rows: list = field(default_factory=list)
    completed: list = field(default_factory=list)  # QAScored records that complete a paper
    failed: int = 0  # papers failed by a dead letter in this batch
    # per paper completed or failed in this batch, the pairs its latest outcome keeps (none for a failure)
    keep_pairs: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0  # spent preparing it


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


def _discard(request: asyncio.Future) -> None:
    """Cancel a request whose answer is no longer needed (the engine aborts it), or mark its error as seen."""
    if not request.done():
        request.cancel()
    elif not request.cancelled():
        request.exception()  # a failed paper does not need its items: no "exception never retrieved" warning


def _origin(event):
    """What carries topic, partition, offset and key: a Faust event's message, or an aiokafka ConsumerRecord."""
    return getattr(event, "message", event)


def _key(event) -> str:
    key = _origin(event).key
    if isinstance(key, bytes):
        return key.decode("utf-8", "replace")
    return str(key or "")


class Stages:
    def __init__(self, settings: Settings, topics: Topics, engine: EngineHolder) -> None:
        self.settings = settings
        self.topics = topics
        self.engine = engine
        self._store: Store | None = None
        self._store_lock = threading.Lock()
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._judge_schema = judge_schema()
        self._gen_schema = generation_schema(settings.keywords_per_paper, settings.pairs_per_paper)
        self._mcq_schema = mcq_schema(settings.mcq_per_paper) if settings.mcq_per_paper > 0 else None
        self._mcq_judge_schema = mcq_judge_schema()
        self._embeddings_warned = False
        # fault injection for the crash tests: die (SIGKILL) after this many stored sink batches, i.e. after the
        # insert and before Faust can commit the batch's offsets; 0 (the default) never
        self._kill_after_sink_batches = int(os.environ.get("SCIQAG_FAULT_KILL_AFTER_SINK_BATCHES", "0") or 0)
        self._sink_batches = 0

    # -- shared -------------------------------------------------------------------------------
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
        self, *, stage: str, kind: str, message: str, paper_id: str = "", event=None, source_uri: str = "",
        paper_failed: bool = True,
    ) -> None:
        payload = b""
        if event is not None and isinstance(event.value, (bytes, bytearray)):
            payload = bytes(event.value[:300])
        record = DeadLetter(
            stage=stage,
            paper_id=paper_id,
            error_kind=kind,
            message=message[:2000],
            source_topic=_origin(event).topic if event is not None else "",
            source_partition=_origin(event).partition if event is not None else -1,
            source_offset=_origin(event).offset if event is not None else -1,
            source_uri=source_uri,
            payload_excerpt=payload.decode("utf-8", "replace"),
            paper_failed=paper_failed,
        )
        metrics.DLQ.labels(stage, kind).inc()
        if paper_failed:
            metrics.PAPERS.labels(stage, "failed").inc()
        log.warning("%s: paper %s -> DLQ (%s): %s", stage, paper_id or "?", kind, message[:300])
        await self.send(self.topics.dlq, paper_id, record)

    async def _guard(self, stage: str, event, work: Callable[[], Awaitable[None]]) -> None:
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
            await self.dead_letter(stage=stage, kind="internal_error", message=f"{type(exc).__name__}: {exc}",
                                   paper_id=_key(event), event=event)
        finally:
            metrics.STAGE_SECONDS.labels(stage).observe(time.perf_counter() - started)

    # -- extractor ----------------------------------------------------------------------------
    def _extraction_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            # spawn: the worker process holds threads (broker client, engine), fork would copy their locks
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.settings.extract_workers, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    def _reset_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.kill()  # a worker stuck in PyMuPDF cannot be interrupted any other way
            pool.shutdown(wait=False, cancel_futures=True)

    async def _extract(self, data: bytes) -> ExtractedText:
        loop = asyncio.get_running_loop()
        job = functools.partial(extract_pdf, data, max_pages=self.settings.max_pages)
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(self._extraction_pool(), job), timeout=self.settings.extract_timeout_s
            )
        except asyncio.TimeoutError:
            self._reset_pool()
            raise ExtractionError(
                f"extraction took longer than {self.settings.extract_timeout_s:.0f} s", kind="extract_timeout"
            ) from None
        except concurrent.futures.process.BrokenProcessPool:
            self._reset_pool()
            raise ExtractionError("the extraction process crashed on this PDF", kind="extractor_crashed") from None

    async def extract(self, event) -> None:
        await self._guard("extractor", event, lambda: self._extract_one(event))

    async def _extract_one(self, event) -> None:
        try:
            paper = decode(event.value, PaperSubmitted)
        except RecordError as exc:
            return await self.dead_letter(stage="extractor", kind=exc.kind, message=str(exc), paper_id=_key(event), event=event)
        try:
            data = await load_pdf(paper, self.settings)
            extracted = await self._extract(data)
        except (SourceError, ExtractionError) as exc:
            return await self.dead_letter(stage="extractor", kind=exc.kind, message=str(exc), paper_id=paper.paper_id,
                                          event=event, source_uri=paper.pdf_uri)
        ref = paper.ref()
        if not ref.title and extracted.title:
            ref = msgspec.structs.replace(ref, title=extracted.title)
        record = PaperExtracted(
            paper=ref,
            text=extracted.text,
            sections=[Section(*s) for s in extracted.sections],
            pages=extracted.pages,
            language=paper.language or extracted.language,
            extractor_version=EXTRACTOR_VERSION,
            removed=extracted.removed,
        )
        await self.send(self.topics.extracted, paper.paper_id, record)
        metrics.PAPERS.labels("extractor", "ok").inc()

    # -- generator ----------------------------------------------------------------------------
    def _request_id(self, role: str, event, attempt: int) -> str:
        m = event.message
        # unique even when a record is redelivered while its first request still runs (vllm#10583)
        return f"{role}:{m.topic}:{m.partition}:{m.offset}:{attempt}:{uuid.uuid4().hex[:8]}"

    async def generate(self, event) -> None:
        await self._guard("generator", event, lambda: self._generate_one(event))

    async def _generate_one(self, event) -> None:
        try:
            paper = decode(event.value, PaperExtracted)
        except RecordError as exc:
            return await self.dead_letter(stage="generator", kind=exc.kind, message=str(exc), paper_id=_key(event), event=event)
        engine = await self.engine.get()
        s = self.settings
        budget = s.max_context_tokens or (engine.max_model_len - s.generation_max_tokens - PROMPT_OVERHEAD_TOKENS)
        context, strategy = fit_text(
            paper.text, [(x.title, x.start, x.end) for x in paper.sections], budget, engine.count_tokens
        )
        language = s.qa_language if s.qa_language != "auto" else paper.language
        language = language if language in LANGUAGE_NAMES else "en"
        messages = generation_messages(
            context, language=language, n_keywords=s.keywords_per_paper, n_pairs=s.pairs_per_paper
        )
        # the multiple-choice request needs only the context: it runs beside the open pairs' request, so the paper
        # reaches the judge one request-time sooner (the LLM-stage benchmark's pipeline/offline ratio)
        mcq_request = (asyncio.ensure_future(self._request_mcq(engine, event, context, language))
                       if self._mcq_schema is not None else None)
        try:
            await self._generate_pairs(engine, event, paper, context, strategy, language, messages, mcq_request)
        finally:
            if mcq_request is not None:
                _discard(mcq_request)

    async def _generate_pairs(self, engine, event, paper: PaperExtracted, context: str, strategy: str, language: str,
                              messages: list, mcq_request: asyncio.Future | None) -> None:
        s = self.settings
        pid = paper.paper.paper_id
        last_error: Exception | None = None
        for attempt in range(1, LLM_ATTEMPTS + 1):
            try:
                result = await engine.generate(
                    messages, json_schema=self._gen_schema, max_tokens=s.generation_max_tokens,
                    request_id=self._request_id("gen", event, attempt), role="generator",
                )
                parsed = parse_generation(result.text)
            except EngineDead:
                raise
            except (LLMError, ModelOutputError) as exc:
                last_error = exc
                log.info("generator: attempt %d for %s failed: %s", attempt, pid, exc)
                continue
            candidates = parsed.pairs[: s.pairs_per_paper]
            kept, dropped = prefilter(candidates)
            if kept or attempt == LLM_ATTEMPTS:
                break
            log.info("generator: the pre-filter dropped every pair of %s (%s); sampling again", pid, dict(dropped))
        else:
            kind = getattr(last_error, "kind", "llm_error")
            return await self.dead_letter(stage="generator", kind=kind, message=str(last_error),
                                          paper_id=pid, event=event, source_uri=paper.paper.source_uri)
        pairs = [
            QAPair(qa_id=qa_id_for(pid, i, PROMPT_VERSION), index=i, question=candidates[i][0], answer=candidates[i][1])
            for i in kept
        ]
        prompt_tokens, generated_tokens = result.prompt_tokens, result.generated_tokens
        if mcq_request is not None:
            mcqs, usage = await self._mcq_pairs(mcq_request, event, paper, dropped)
            pairs += mcqs
            prompt_tokens += usage[0]
            generated_tokens += usage[1]
        for reason, count in dropped.items():
            metrics.PREFILTER_DROPPED.labels(reason).inc(count)
        if not pairs:
            return await self.dead_letter(
                stage="generator", kind="all_pairs_filtered",
                message=f"the pre-filter dropped all {len(candidates)} pairs: {dict(dropped)}",
                paper_id=pid, event=event, source_uri=paper.paper.source_uri)
        record = QAGenerated(
            paper=paper.paper,
            language=language,
            keywords=parsed.keywords,
            pairs=pairs,
            context=context,
            context_strategy=strategy,
            model=engine.model_name,
            prompt_version=PROMPT_VERSION,
            prompt_tokens=prompt_tokens,
            generated_tokens=generated_tokens,
            prefilter_dropped=dict(dropped),
        )
        await self.send(self.topics.generated, pid, record)
        metrics.PAPERS.labels("generator", "ok").inc()

    async def _request_mcq(self, engine, event, context: str, language: str):
        messages = mcq_messages(context, language=language, n_items=self.settings.mcq_per_paper)
        result = await engine.generate(
            messages, json_schema=self._mcq_schema, max_tokens=self.settings.generation_max_tokens,
            request_id=self._request_id("mcq", event, 1), role="generator",
        )
        return result, parse_mcq(result.text)

    async def _mcq_pairs(self, mcq_request: asyncio.Future, event, paper: PaperExtracted, dropped):
        """Four-option items for the paper; a failure here costs the items, not the paper's open pairs."""
        pid = paper.paper.paper_id
        try:
            result, items = await mcq_request
        except EngineDead:
            raise
        except (LLMError, ModelOutputError) as exc:
            await self.dead_letter(stage="generator", kind=getattr(exc, "kind", "llm_error"),
                                   message=f"multiple-choice items: {exc}", paper_id=pid, event=event,
                                   source_uri=paper.paper.source_uri, paper_failed=False)
            return [], (0, 0)
        seen: set[str] = set()
        pairs = []
        for i, item in enumerate(items):
            reason = drop_reason(item.question, item.options[item.correct], seen)
            if reason:
                dropped[f"mcq_{reason}"] += 1
                continue
            pairs.append(QAPair(
                qa_id=qa_id_for(pid, i, MCQ_PROMPT_VERSION, kind="mcq"), index=i, kind="mcq",
                question=item.question, answer=item.options[item.correct], options=item.options,
                correct_option=item.correct,
            ))
        return pairs, (result.prompt_tokens, result.generated_tokens)

    # -- judge --------------------------------------------------------------------------------
    async def judge(self, event) -> None:
        await self._guard("judge", event, lambda: self._judge_one(event))

    async def _judge_pair(self, engine: LLMEngine, event, generated: QAGenerated, pair: QAPair):
        """(pair, (racar, single_correct), result) or (pair, error, None)."""
        is_mcq = pair.kind == "mcq"
        messages = judge_messages(generated.context, pair.question, pair.answer, pair.options if is_mcq else None)
        schema = self._mcq_judge_schema if is_mcq else self._judge_schema
        last_error: Exception | None = None
        for attempt in range(1, LLM_ATTEMPTS + 1):
            try:
                result = await engine.generate(
                    messages, json_schema=schema, max_tokens=self.settings.judge_max_tokens,
                    request_id=self._request_id(f"judge-{pair.kind}{pair.index}", event, attempt), role="judge",
                )
                racar = parse_racar(result.text)
                single = parse_correct_options(result.text) == {pair.correct_option} if is_mcq else None
                return pair, (racar, single), result
            except EngineDead:
                raise
            except (LLMError, ModelOutputError) as exc:
                last_error = exc
        return pair, last_error, None

    async def _judge_one(self, event) -> None:
        try:
            generated = decode(event.value, QAGenerated)
        except RecordError as exc:
            return await self.dead_letter(stage="judge", kind=exc.kind, message=str(exc), paper_id=_key(event), event=event)
        engine = await self.engine.get()
        pid = generated.paper.paper_id
        results = await asyncio.gather(*(self._judge_pair(engine, event, generated, p) for p in generated.pairs))
        judged = [(pair, racar, res) for pair, racar, res in results if res is not None]
        for pair, error, res in results:
            if res is None:
                await self.dead_letter(stage="judge", kind=getattr(error, "kind", "llm_error"),
                                       message=f"{'multiple-choice item' if pair.kind == 'mcq' else 'pair'} "
                                               f"{pair.index}: {error}", paper_id=pid, event=event,
                                       source_uri=generated.paper.source_uri, paper_failed=False)
        if not judged:
            return await self.dead_letter(stage="judge", kind="no_pair_judged",
                                          message=f"none of the {len(generated.pairs)} pairs could be judged",
                                          paper_id=pid, event=event, source_uri=generated.paper.source_uri)
        quality = await self._paper_quality(generated)
        run_qa_ids = [pair.qa_id for pair, _, _ in judged]
        for sequence, (pair, (racar, single_correct), res) in enumerate(judged):
            accepted = is_accepted(racar, self.settings.acceptance_policy) and single_correct is not False
            record = QAScored(
                paper=generated.paper,
                qa_id=pair.qa_id,
                pair_index=pair.index,
                sequence=sequence,
                pair_count=len(judged),
                kind=pair.kind,
                language=generated.language,
                keywords=generated.keywords,
                question=pair.question,
                answer=pair.answer,
                racar=racar,
                options=list(pair.options),
                correct_option=pair.correct_option,
                single_correct=single_correct,
                paper_quality=quality,
                numeric_support=numeric_support(pair.answer, generated.context),
                accepted=accepted,
                generator_model=generated.model,
                judge_model=engine.model_name,
                prompt_version=generated.prompt_version,
                judge_prompt_tokens=res.prompt_tokens,
                judge_generated_tokens=res.generated_tokens,
                paper_qa_ids=run_qa_ids if sequence == len(judged) - 1 else [],
            )
            await self.send(self.topics.scored, pid, record)
            metrics.QA_PAIRS.labels("accepted" if accepted else "rejected").inc()
            for dim, value in scores(racar).items():
                metrics.RACAR_SCORE.labels(dim).observe(value)
        metrics.PAPERS.labels("judge", "ok").inc()

    async def _paper_quality(self, generated: QAGenerated) -> PaperQuality:
        """Question diversity and answer coverage (sentence embeddings, off the event loop)."""
        dropped = dict(generated.prefilter_dropped)
        if not self.settings.quality_metrics:
            return PaperQuality(prefilter_dropped=dropped)
        pairs = generated.pairs  # open and multiple-choice: an item's answer is its correct option

        def compute() -> PaperQuality:
            from sciqag.embeddings import embed

            diversity = question_diversity([p.question for p in pairs], embed)
            return PaperQuality(
                q_similarity_mean=diversity.mean_similarity if diversity else None,
                q_share_below_0_3=diversity.share_below_0_3 if diversity else None,
                q_pairs_over_0_7=diversity.pairs_over_0_7 if diversity else 0,
                coverage=answer_coverage([p.answer for p in pairs], generated.context, embed),
                prefilter_dropped=dropped,
            )

        try:
            return await asyncio.get_running_loop().run_in_executor(None, compute)
        except Exception as exc:  # missing optional package or model: measures are skipped, pairs still flow
            if not self._embeddings_warned:
                log.warning("judge: question diversity and coverage are skipped: %s", exc)
                self._embeddings_warned = True
            return PaperQuality(prefilter_dropped=dropped)

    # -- sink ---------------------------------------------------------------------------------
    async def sink(self, records: list) -> None:
        """Store one batch of records from the scored and dead-letter topics; returns once it is stored."""
        await self.sink_store(await self.sink_prepare(records))

    async def sink_prepare(self, records: list) -> SinkBatch:
        """Check and sort one batch; records that fail are dead-lettered here. Python work only, so the sink's
        consumer runs it for the next batch while ClickHouse stores the previous one (processors/sink.py).

        `records` are consumer records (topic, partition, offset, key, value). Scored pairs take the fast path:
        each is checked for its required fields (QAScoredCheck, no full decode), and ClickHouse parses the JSON
        itself in sink_store; only the record that completes a paper is decoded whole, for the papers row.
        """
        started = time.perf_counter()
        batch = SinkBatch()
        for record in records:
            if record.topic == T.SCORED:
                try:
                    check = decode(record.value, QAScoredCheck)
                    rec = decode(record.value, QAScored) if check.completes_paper else None
                except RecordError as exc:
                    await self.dead_letter(stage="sink", kind=exc.kind, message=str(exc), paper_id=_key(record),
                                           event=record)
                    continue
                batch.scored.append(record)
                if rec is not None:
                    batch.paper_rows.append(paper_row_scored(rec))
                    batch.completed.append(rec)
                    if rec.paper_qa_ids:  # records written before the field existed cannot be reconciled
                        batch.keep_pairs[rec.paper.paper_id] = list(rec.paper_qa_ids)
            else:
                try:
                    dead = decode(record.value, DeadLetter)
                except RecordError as exc:
                    log.error("sink: undecodable dead letter at %s/%d/%d: %s", record.topic, record.partition,
                              record.offset, exc)
                    metrics.DLQ.labels("sink", "undecodable_dead_letter").inc()
                    continue
                batch.dlq_rows.append(_dlq_row(dead))
                if dead.paper_failed and dead.paper_id:
                    batch.paper_rows.append(_paper_row_failed(dead))
                    batch.keep_pairs[dead.paper_id] = []
                    batch.failed += 1
        batch.seconds = time.perf_counter() - started
        return batch

    async def sink_store(self, batch: SinkBatch) -> None:
        """Insert a prepared batch, retrying until ClickHouse took it (its offsets are committed after this)."""
        started = time.perf_counter()
        stored = await self._store_scored(batch.scored)
        await self._insert_until_stored(DLQ_TABLE, lambda: self.store().insert_dead_letters(batch.dlq_rows),
                                        bool(batch.dlq_rows))
        await self._insert_until_stored("papers", lambda: self.store().insert_papers(batch.paper_rows),
                                        bool(batch.paper_rows))
        # last, so a crash before it is repaired by the re-delivered batch
        await self._insert_until_stored("qa_pairs", lambda: self._prune_stale_pairs(batch.keep_pairs),
                                        bool(batch.keep_pairs))
        metrics.QA_STORED.inc(stored)
        metrics.PAPERS.labels("sink", "scored").inc(len(batch.completed))
        metrics.PAPERS.labels("sink", "failed").inc(batch.failed)
        for rec in batch.completed:
            if rec.paper.submitted_at is not None:
                metrics.END_TO_END_SECONDS.observe((now() - rec.paper.submitted_at).total_seconds())
        metrics.STAGE_SECONDS.labels("sink").observe(batch.seconds + time.perf_counter() - started)
        self._sink_batches += 1
        if self._kill_after_sink_batches and self._sink_batches >= self._kill_after_sink_batches:
            log.critical("fault injection: killing the worker after sink batch %d, before its offsets are committed",
                         self._sink_batches)
            os.kill(os.getpid(), signal.SIGKILL)

    async def _store_scored(self, records: list) -> int:
        """Insert the scored pairs; returns how many were stored (the rest were dead-lettered)."""
        if not records:
            return 0
        payloads = [r.value for r in records]
        started = time.perf_counter()
        try:
            await asyncio.get_running_loop().run_in_executor(None, lambda: self.store().insert_qa_json(payloads))
            metrics.SINK_INSERT_SECONDS.labels("qa_pairs").observe(time.perf_counter() - started)
            return len(records)
        except StoreError as exc:
            # not "refused": an unreachable ClickHouse ends here too, and the row path below retries until it is back
            log.warning("sink: %d scored records not stored as JSON (%s); checking each here, storing the valid ones "
                        "as rows", len(records), exc)
        # ClickHouse away, or a record it cannot read: find the records that are not valid QAScored, store the rest
        # as rows (retrying until stored); any error from here on is ClickHouse's
        rows = []
        for record in records:
            try:
                rows.append(qa_row(decode(record.value, QAScored)))
            except RecordError as exc:
                await self.dead_letter(stage="sink", kind=exc.kind, message=str(exc), paper_id=_key(record),
                                       event=record)
        await self._insert_until_stored("qa_pairs", lambda: self.store().insert_qa(rows), bool(rows))
        return len(rows)

    def _prune_stale_pairs(self, keep_pairs: dict[str, list[str]]) -> None:
        deleted = self.store().prune_pairs(keep_pairs)
        if deleted:
            log.info("sink: deleted %d pairs of %d papers that their latest run no longer has", deleted,
                     len(keep_pairs))
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

    def close(self) -> None:
        self._reset_pool()
        if self._store is not None:
            self._store.close()
            self._store = None


def qa_row(r: QAScored) -> list:
    p = r.paper
    s = scores(r.racar)
    return [
        p.paper_id, r.qa_id, r.kind, r.pair_index, p.doi, p.title, p.journal, list(p.categories), p.source_uri,
        r.language, list(r.keywords), r.question, r.answer, *(s[d] for d in RACAR_DIMENSIONS),
        {d: getattr(r.racar, d).reason for d in RACAR_DIMENSIONS}, r.numeric_support, r.accepted,
        r.generator_model, r.judge_model, r.prompt_version, r.scored_at, now(),
        list(r.options), r.correct_option, r.single_correct,
    ]


def paper_row_scored(r: QAScored) -> list:
    p = r.paper
    q = r.paper_quality or PaperQuality()
    return [p.paper_id, p.doi, p.title, p.journal, list(p.categories), p.source_uri, p.source_feed, r.language,
            "scored", "sink", "", "", list(r.keywords), r.pair_count, "", now(),
            q.q_similarity_mean, q.q_share_below_0_3, q.q_pairs_over_0_7, q.coverage, dict(q.prefilter_dropped)]


def _paper_row_failed(d: DeadLetter) -> list:
    return [d.paper_id, "", "", "", [], d.source_uri, "", "", "failed", d.stage, d.error_kind, d.message, [], 0, "",
            now(), None, None, 0, None, {}]


def _dlq_row(d: DeadLetter) -> list:
    return [d.stage, d.paper_id, d.error_kind, d.message, d.source_topic, d.source_partition, d.source_offset,
            d.source_uri, d.paper_failed, d.failed_at]
