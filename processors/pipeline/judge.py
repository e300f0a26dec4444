"""The judge: `sciqag.qa.generated` -> `sciqag.qa.scored`. Scores every pair of a paper on RACAR at once (the paper
text first in each prompt, so the engine's prefix cache serves all of them), adds the per-paper quality measures
and each answer's numeric support, and decides acceptance under the policy."""

from __future__ import annotations

import asyncio
import logging

import msgspec

from schemas import PaperQuality, QAGenerated, QAPair, QAScored, RecordError, decode
from sciqag.errors import ModelOutputError
from sciqag.parsing import parse_correct_options, parse_racar
from sciqag.prompts import (
    JUDGE_EVIDENCE_PROMPT_VERSION,
    JUDGE_PROMPT_VERSION,
    judge_messages,
    judge_schema,
    mcq_judge_schema,
)
from sciqag.quality import answer_coverage, numeric_support, question_diversity
from sciqag.racar import is_accepted, scores

from .. import metrics
from ..errors import EngineDead, LLMError
from ..llm import LLMEngine
from .context import LLM_ATTEMPTS, StageContext, record_key, request_id

log = logging.getLogger("sciqag.stages")

STAGE = "judge"


def grounded_enough(grounding: float | None, min_grounding: float) -> bool:
    """SCIQAG_MIN_GROUNDING: off at 0; else a pair needs located evidence covering that share of its answer."""
    return min_grounding <= 0 or (grounding is not None and grounding >= min_grounding)


class Judge:
    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self._judge_schema = judge_schema()
        self._mcq_judge_schema = mcq_judge_schema()
        self._embeddings_warned = False

    async def handle(self, event) -> None:
        await self.ctx.guard(STAGE, event, lambda: self._judge_one(event))

    async def _judge_pair(self, engine: LLMEngine, event, generated: QAGenerated, pair: QAPair):
        """(pair, (racar, single_correct), result) or (pair, error, None)."""
        is_mcq = pair.kind == "mcq"
        # the located passages after the pair (the paper stays first: the prefix cache still serves every pair)
        evidence = [e.passage for e in pair.evidence if e.located] if pair.evidence else None
        messages = judge_messages(
            generated.context, pair.question, pair.answer, pair.options if is_mcq else None, evidence=evidence
        )
        schema = self._mcq_judge_schema if is_mcq else self._judge_schema
        last_error: LLMError | ModelOutputError | None = None
        for attempt in range(1, LLM_ATTEMPTS + 1):
            try:
                result = await engine.generate(
                    messages,
                    json_schema=schema,
                    max_tokens=self.settings.judge_max_tokens,
                    request_id=request_id(f"judge-{pair.kind}{pair.index}", event, attempt),
                    role="judge",
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
        ctx = self.ctx
        try:
            generated = decode(event.value, QAGenerated)
        except RecordError as exc:
            return await ctx.reject(STAGE, exc, paper_id=record_key(event), event=event)
        engine = await ctx.engine.get()
        pid = generated.paper.paper_id
        source_uri = generated.paper.source_uri
        results = await asyncio.gather(*(self._judge_pair(engine, event, generated, p) for p in generated.pairs))
        judged = [(pair, racar, res) for pair, racar, res in results if res is not None]
        for pair, error, res in results:
            if res is None:
                what = "multiple-choice item" if pair.kind == "mcq" else "pair"
                await ctx.reject(
                    STAGE,
                    error,
                    paper_id=pid,
                    event=event,
                    source_uri=source_uri,
                    paper_failed=False,
                    prefix=f"{what} {pair.index}: ",
                )
        if not judged:
            return await ctx.dead_letter(
                stage=STAGE,
                kind="no_pair_judged",
                message=f"none of the {len(generated.pairs)} pairs could be judged",
                paper_id=pid,
                event=event,
                source_uri=source_uri,
            )
        quality = await self._paper_quality(generated)
        run_qa_ids = [pair.qa_id for pair, _, _ in judged]
        for sequence, (pair, (racar, single_correct), res) in enumerate(judged):
            accepted = (
                is_accepted(racar, self.settings.acceptance_policy)
                and single_correct is not False
                and grounded_enough(pair.grounding, self.settings.min_grounding)
            )
            completes = sequence == len(judged) - 1
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
                judge_prompt_version=JUDGE_EVIDENCE_PROMPT_VERSION if pair.evidence else JUDGE_PROMPT_VERSION,
                evidence=[msgspec.structs.replace(e, passage="") for e in pair.evidence],
                grounding=pair.grounding,
                context_strategy=generated.context_strategy,
                judge_prompt_tokens=res.prompt_tokens,
                judge_generated_tokens=res.generated_tokens,
                paper_qa_ids=run_qa_ids if completes else [],
                extraction=generated.extraction if completes else None,
            )
            await ctx.send(ctx.topics.scored, pid, record)
            metrics.QA_PAIRS.labels("accepted" if accepted else "rejected").inc()
            for dim, value in scores(racar).items():
                metrics.RACAR_SCORE.labels(dim).observe(value)
            if pair.grounding is not None:
                metrics.GROUNDING.labels(pair.kind, generated.language).observe(pair.grounding)
        metrics.PAPERS.labels(STAGE, "ok").inc()

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
