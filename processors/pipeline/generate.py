"""The generator: `sciqag.extracted` -> `sciqag.qa.generated`. Fits the paper into the model's window, asks for
keywords and self-contained QA pairs (SciQAG's prompt, JSON-schema output) and, beside them, four-option
multiple-choice items; a rule-based pre-filter drops pairs that refer to the paper or repeat one another."""

from __future__ import annotations

import asyncio
import logging

import msgspec

from schemas import Evidence, ExtractionSummary, PaperExtracted, QAGenerated, QAPair, RecordError, decode
from sciqag.context import context_budget, fit_text
from sciqag.errors import ModelOutputError
from sciqag.grounding import Locator, grounding_score
from sciqag.ids import qa_id_for
from sciqag.parsing import parse_generation, parse_mcq
from sciqag.prefilter import drop_reason, prefilter
from sciqag.prompts import (
    LANGUAGE_NAMES,
    MCQ_PROMPT_VERSION,
    PROMPT_VERSION,
    generation_messages,
    generation_schema,
    mcq_messages,
    mcq_schema,
)

from .. import metrics
from ..errors import EngineDead, LLMError
from .context import LLM_ATTEMPTS, StageContext, record_key, request_id

log = logging.getLogger("sciqag.stages")

STAGE = "generator"


def locate_evidence(text: str, pairs: list[QAPair], threshold: float) -> list[QAPair]:
    """Each pair's quotes located in the paper text (one Locator a paper), with the pair's grounding score."""
    if not any(p.evidence for p in pairs):
        return pairs
    locator = Locator(text)
    located = []
    for pair in pairs:
        spans = locator.locate_all([e.quote for e in pair.evidence], threshold=threshold)
        evidence = [
            Evidence(
                quote=sp.quote,
                start=sp.start,
                end=sp.end,
                ratio=round(sp.ratio, 4),
                located=sp.located,
                passage=text[sp.start : sp.end] if sp.located else "",
            )
            for sp in spans
        ]
        grounding = grounding_score(pair.answer, text, spans)
        located.append(msgspec.structs.replace(pair, evidence=evidence, grounding=grounding))
    return located


def _discard(request: asyncio.Future) -> None:
    """Cancel a request whose answer is no longer needed (the engine aborts it), or mark its error as seen."""
    if not request.done():
        request.cancel()
    elif not request.cancelled():
        request.exception()  # a failed paper does not need its items: no "exception never retrieved" warning


class Generator:
    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx
        self.settings = s = ctx.settings
        self._gen_schema = generation_schema(s.keywords_per_paper, s.pairs_per_paper)
        self._mcq_schema = mcq_schema(s.mcq_per_paper) if s.mcq_per_paper > 0 else None

    async def handle(self, event) -> None:
        await self.ctx.guard(STAGE, event, lambda: self._generate_one(event))

    async def _generate_one(self, event) -> None:
        try:
            paper = decode(event.value, PaperExtracted)
        except RecordError as exc:
            return await self.ctx.reject(STAGE, exc, paper_id=record_key(event), event=event)
        engine = await self.ctx.engine.get()
        s = self.settings
        context, strategy = fit_text(
            paper.text,
            [(x.title, x.start, x.end) for x in paper.sections],
            context_budget(engine.max_model_len, s.generation_max_tokens, s.max_context_tokens),
            engine.count_tokens,
        )
        language = s.qa_language if s.qa_language != "auto" else paper.language
        language = language if language in LANGUAGE_NAMES else "en"
        messages = generation_messages(
            context, language=language, n_keywords=s.keywords_per_paper, n_pairs=s.pairs_per_paper
        )
        # the multiple-choice request needs only the context: it runs beside the open pairs' request, so the paper
        # reaches the judge one request-time sooner (the LLM-stage benchmark's pipeline/offline ratio)
        mcq_request = (
            asyncio.ensure_future(self._request_mcq(engine, event, context, language))
            if self._mcq_schema is not None
            else None
        )
        try:
            await self._generate_pairs(engine, event, paper, context, strategy, language, messages, mcq_request)
        finally:
            if mcq_request is not None:
                _discard(mcq_request)

    async def _generate_pairs(
        self,
        engine,
        event,
        paper: PaperExtracted,
        context: str,
        strategy: str,
        language: str,
        messages: list,
        mcq_request: asyncio.Future | None,
    ) -> None:
        s = self.settings
        pid = paper.paper.paper_id
        last_error: LLMError | ModelOutputError | None = None
        for attempt in range(1, LLM_ATTEMPTS + 1):
            try:
                result = await engine.generate(
                    messages,
                    json_schema=self._gen_schema,
                    max_tokens=s.generation_max_tokens,
                    request_id=request_id("gen", event, attempt),
                    role="generator",
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
            self._count_lost_paper()
            return await self.ctx.reject(
                STAGE, last_error, paper_id=pid, event=event, source_uri=paper.paper.source_uri
            )
        pairs = [
            QAPair(
                qa_id=qa_id_for(pid, i, PROMPT_VERSION),
                index=i,
                question=candidates[i][0],
                answer=candidates[i][1],
                evidence=[Evidence(quote=q) for q in parsed.evidence[i]],
            )
            for i in kept
        ]
        prompt_tokens, generated_tokens = result.prompt_tokens, result.generated_tokens
        requested = {"open": s.pairs_per_paper}
        usable = {"open": len(candidates)}
        if mcq_request is not None:
            mcqs, usage, usable["mcq"] = await self._mcq_pairs(mcq_request, event, paper, dropped)
            requested["mcq"] = s.mcq_per_paper
            pairs += mcqs
            prompt_tokens += usage[0]
            generated_tokens += usage[1]
        for reason, count in dropped.items():
            metrics.PREFILTER_DROPPED.labels(reason).inc(count)
        if not pairs:
            self._count_lost_paper()
            return await self.ctx.dead_letter(
                stage=STAGE,
                kind="all_pairs_filtered",
                message=f"the pre-filter dropped all {len(candidates)} pairs: {dict(dropped)}",
                paper_id=pid,
                event=event,
                source_uri=paper.paper.source_uri,
            )
        pairs = await asyncio.get_running_loop().run_in_executor(
            None, locate_evidence, paper.text, pairs, self.settings.evidence_threshold
        )
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
            extraction=ExtractionSummary.of(paper),
            pairs_requested=requested,
            pairs_parsed=usable,
        )
        await self.ctx.send(self.ctx.topics.generated, pid, record)
        metrics.PAPERS.labels(STAGE, "ok").inc()
        for kind, n in requested.items():
            funnel = metrics.QA_FUNNEL
            funnel.labels(kind, "requested").inc(n)
            funnel.labels(kind, "generated").inc(usable[kind])
            funnel.labels(kind, "unparseable").inc(n - usable[kind])
            funnel.labels(kind, "prefiltered").inc(
                sum(c for r, c in dropped.items() if r.startswith("mcq_") == (kind == "mcq"))
            )

    def _count_lost_paper(self) -> None:
        """The pairs asked of a paper the generator fails: requested, and lost with the paper."""
        s = self.settings
        for kind, n in (("open", s.pairs_per_paper), ("mcq", s.mcq_per_paper)):
            if n > 0:
                metrics.QA_FUNNEL.labels(kind, "requested").inc(n)
                metrics.QA_FUNNEL.labels(kind, "failed_paper").inc(n)

    async def _request_mcq(self, engine, event, context: str, language: str):
        messages = mcq_messages(context, language=language, n_items=self.settings.mcq_per_paper)
        result = await engine.generate(
            messages,
            json_schema=self._mcq_schema,
            max_tokens=self.settings.generation_max_tokens,
            request_id=request_id("mcq", event, 1),
            role="generator",
        )
        return result, parse_mcq(result.text)

    async def _mcq_pairs(self, mcq_request: asyncio.Future, event, paper: PaperExtracted, dropped):
        """Four-option items for the paper, the request's token usage, and how many usable items it parsed (before
        the pre-filter); a failure here costs the items (0 parsed), not the paper's open pairs."""
        pid = paper.paper.paper_id
        try:
            result, items = await mcq_request
        except EngineDead:
            raise
        except (LLMError, ModelOutputError) as exc:
            await self.ctx.reject(
                STAGE,
                exc,
                paper_id=pid,
                event=event,
                source_uri=paper.paper.source_uri,
                paper_failed=False,
                prefix="multiple-choice items: ",
            )
            return [], (0, 0), 0
        seen: set[str] = set()
        pairs = []
        for i, item in enumerate(items):
            reason = drop_reason(item.question, item.options[item.correct], seen)
            if reason:
                dropped[f"mcq_{reason}"] += 1
                continue
            pairs.append(
                QAPair(
                    qa_id=qa_id_for(pid, i, MCQ_PROMPT_VERSION, kind="mcq"),
                    index=i,
                    kind="mcq",
                    question=item.question,
                    answer=item.options[item.correct],
                    options=item.options,
                    correct_option=item.correct,
                    evidence=[Evidence(quote=q) for q in item.evidence],
                )
            )
        return pairs, (result.prompt_tokens, result.generated_tokens), len(items)
