"""The judge: `sciqag.qa.generated` -> `sciqag.qa.scored`. Scores every pair of a paper on RACAR at once (the paper
text first in each prompt, so the engine's prefix cache serves all of them), adds the per-paper quality measures
and each answer's numeric support, and decides acceptance under the policy.

The same judge runs in three roles (issue 20), each record saying which judge it is (`judge_id`) and in which role:
`live` (the stream's judge: its records complete the paper), `rejudge` (`sciqag rejudge`: stored papers again, from
`sciqag.qa.rejudge`; a failure is dead-lettered without failing the paper) and `shadow` (`ShadowJudge`: a second
engine on a share of the live pairs, in the background; its failures are only counted)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import msgspec

from schemas import PaperQuality, QAGenerated, QAPair, QAScored, RecordError, decode
from sciqag.errors import ModelOutputError
from sciqag.judges import in_share, judge_id
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
from ..llm import LLMEngine, open_llm
from .context import LLM_ATTEMPTS, EngineHolder, StageContext, record_key, request_id

log = logging.getLogger("sciqag.stages")

STAGE = "judge"


def grounded_enough(grounding: float | None, min_grounding: float) -> bool:
    """SCIQAG_MIN_GROUNDING: off at 0; else a pair needs located evidence covering that share of its answer."""
    return min_grounding <= 0 or (grounding is not None and grounding >= min_grounding)


class Judge:
    def __init__(
        self,
        ctx: StageContext,
        *,
        role: str = "live",
        engine: EngineHolder | None = None,
        temperature: float | None = None,
    ) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.role = role
        self.stage = STAGE if role == "live" else role  # dead letters and the LLM metrics' role
        self.engine = engine or ctx.engine
        self.temperature = self.settings.temperature if temperature is None else temperature
        self.shadow: ShadowJudge | None = None  # the live judge offers its papers to it
        self._judge_schema = judge_schema()
        self._mcq_judge_schema = mcq_judge_schema()
        self._embeddings_warned = False

    def judge_id(self, engine: LLMEngine) -> str:
        s = self.settings
        return judge_id(
            engine.model_name, policy=s.acceptance_policy, temperature=self.temperature, min_grounding=s.min_grounding
        )

    async def handle(self, event) -> None:
        await self.ctx.guard(self.stage, event, lambda: self._judge_one(event))

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
                    request_id=request_id(f"{self.stage}-{pair.kind}{pair.index}", event, attempt),
                    role=self.stage,
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
            return await ctx.reject(self.stage, exc, paper_id=record_key(event), event=event)
        await self.judge(generated, event)
        if self.shadow is not None:  # after the live records were sent: the shadow never delays them
            self.shadow.offer(generated, event)

    async def judge(self, generated: QAGenerated, event) -> int:
        """Score the pairs of one generated record and send them on; returns how many pairs could not be judged."""
        ctx = self.ctx
        live = self.role == "live"
        engine = await self.engine.get()
        pid = generated.paper.paper_id
        source_uri = generated.paper.source_uri
        results = await asyncio.gather(*(self._judge_pair(engine, event, generated, p) for p in generated.pairs))
        judged = [(pair, racar, res) for pair, racar, res in results if res is not None]
        failed = len(results) - len(judged)
        if failed:
            metrics.JUDGE_PAIRS.labels(self.role, "failed").inc(failed)
        not_judged: dict[str, int] = {}
        for pair, _, res in results:
            if res is None:
                not_judged[pair.kind] = not_judged.get(pair.kind, 0) + 1
        if live:
            for kind, n in not_judged.items():
                metrics.QA_FUNNEL.labels(kind, "not_judged").inc(n)
        if self.role == "shadow":  # counted, never dead-lettered: the paper is not at fault
            if not judged:
                return failed
        else:
            for pair, error, res in results:
                if res is None:
                    what = "multiple-choice item" if pair.kind == "mcq" else "pair"
                    await ctx.reject(
                        self.stage,
                        error,
                        paper_id=pid,
                        event=event,
                        source_uri=source_uri,
                        paper_failed=False,
                        prefix=f"{what} {pair.index}: ",
                    )
            if not judged:
                await ctx.dead_letter(
                    stage=self.stage,
                    kind="no_pair_judged",
                    message=f"none of the {len(generated.pairs)} pairs could be judged",
                    paper_id=pid,
                    event=event,
                    source_uri=source_uri,
                    paper_failed=live,  # a re-judge that fails leaves the paper as it was
                )
                return failed
        # the per-paper measures are the papers row's, which only the live judge writes
        quality = await self._paper_quality(generated, not_judged) if live else None
        run_qa_ids = [pair.qa_id for pair, _, _ in judged]
        this_judge = self.judge_id(engine)
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
                paper_qa_ids=run_qa_ids if completes and live else [],
                extraction=generated.extraction if completes and live else None,
                judge_id=this_judge,
                judge_role=self.role,
                acceptance_policy=self.settings.acceptance_policy,
                judge_temperature=self.temperature,
            )
            await ctx.send(ctx.topics.scored, pid, record)
            if not live:
                continue
            metrics.QA_PAIRS.labels("accepted" if accepted else "rejected").inc()
            metrics.QA_FUNNEL.labels(pair.kind, "judged").inc()
            if accepted:
                metrics.QA_FUNNEL.labels(pair.kind, "accepted").inc()
            for dim, value in scores(racar).items():
                metrics.RACAR_SCORE.labels(dim).observe(value)
            if pair.grounding is not None:
                metrics.GROUNDING.labels(pair.kind, generated.language).observe(pair.grounding)
        metrics.JUDGE_PAIRS.labels(self.role, "scored").inc(len(judged))
        if live:
            metrics.PAPERS.labels(STAGE, "ok").inc()
        return failed

    async def _paper_quality(self, generated: QAGenerated, not_judged: dict[str, int]) -> PaperQuality:
        """Question diversity and answer coverage (sentence embeddings, off the event loop), and the paper's pair
        funnel."""
        funnel = {
            "prefilter_dropped": dict(generated.prefilter_dropped),
            "pairs_requested": dict(generated.pairs_requested),
            "pairs_parsed": dict(generated.pairs_parsed),
            "pairs_not_judged": dict(not_judged),
        }
        if not self.settings.quality_metrics:
            return PaperQuality(**funnel)
        pairs = generated.pairs  # open and multiple-choice: an item's answer is its correct option

        def compute() -> PaperQuality:
            from sciqag.embeddings import embed

            diversity = question_diversity([p.question for p in pairs], embed)
            return PaperQuality(
                q_similarity_mean=diversity.mean_similarity if diversity else None,
                q_share_below_0_3=diversity.share_below_0_3 if diversity else None,
                q_pairs_over_0_7=diversity.pairs_over_0_7 if diversity else 0,
                coverage=answer_coverage([p.answer for p in pairs], generated.context, embed),
                **funnel,
            )

        try:
            return await asyncio.get_running_loop().run_in_executor(None, compute)
        except Exception as exc:  # missing optional package or model: measures are skipped, pairs still flow
            if not self._embeddings_warned:
                log.warning("judge: question diversity and coverage are skipped: %s", exc)
                self._embeddings_warned = True
            return PaperQuality(**funnel)


class ShadowJudge:
    """A second judge on a deterministic share of the live pairs (Settings.shadow_*), in the background.

    The live judge offers each paper after its own records were sent; the pairs in the share wait in a bounded queue
    (full: dropped and counted) for `run`, which judges them with an engine of its own and sends the records with
    `judge_role = "shadow"` (the sink stores them as judgments only). Nothing here can fail, delay or dead-letter the
    live path: an engine that does not start, a server that dies, a request past its timeout are counted
    (sciqag_shadow_judge_pairs_total) and the pairs dropped."""

    WORKERS = 2  # papers judged at once; each sends all its pairs at once, as the live judge does

    def __init__(self, ctx: StageContext) -> None:
        s = ctx.settings
        self.settings = s
        self.share = s.shadow_share
        self.judge = Judge(ctx, role="shadow", engine=EngineHolder(), temperature=self._temperature(s))
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=max(1, s.shadow_queue))
        self.label = "shadow"  # the metrics' judge label: its judge_id once the engine is up

    @staticmethod
    def _temperature(s) -> float:
        return s.temperature if s.shadow_temperature is None else s.shadow_temperature

    def engine_settings(self):
        s = self.settings
        return s.with_overrides(
            llm_url=s.shadow_llm_url,
            model=s.shadow_model,
            llm_api_key=s.shadow_llm_api_key or s.llm_api_key,
            llm_timeout_s=s.shadow_timeout_s,
            temperature=self._temperature(s),
        )

    def offer(self, generated: QAGenerated, event) -> None:
        pairs = [p for p in generated.pairs if in_share(p.qa_id, self.share)]
        if not pairs:
            return
        try:
            self.queue.put_nowait((msgspec.structs.replace(generated, pairs=pairs), event))
        except asyncio.QueueFull:
            metrics.SHADOW_PAIRS.labels(self.label, "dropped").inc(len(pairs))

    async def run(self) -> None:
        """Open the shadow engine and judge what is offered until cancelled; never raises but CancelledError."""
        settings = self.engine_settings()
        model_dir = None if settings.llm_url else settings.model
        try:
            async with open_llm(settings, model_dir) as engine:
                self.judge.engine.set(engine)
                self.label = self.judge.judge_id(engine)
                log.info("shadow judge %s on %s pairs of every paper", self.label, f"{self.share:.0%}")
                workers = [asyncio.ensure_future(self._work()) for _ in range(self.WORKERS)]
                try:
                    await asyncio.gather(*workers)
                finally:
                    for w in workers:
                        w.cancel()
                    for w in workers:
                        with contextlib.suppress(BaseException):
                            await w
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # no shadow engine: the live judge goes on; what is offered is dropped
            log.error("the shadow judge's engine is not available (%s); its pairs are counted as failed", exc)
            self.judge.engine.set(None, exc)
            while True:
                generated, _ = await self.queue.get()
                metrics.SHADOW_PAIRS.labels(self.label, "failed").inc(len(generated.pairs))

    async def _work(self) -> None:
        while True:
            generated, event = await self.queue.get()
            try:
                failed = await self.judge.judge(generated, event)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # EngineDead included: the live worker must not stop for the shadow
                log.warning("shadow judge: paper %s not judged: %s", generated.paper.paper_id, str(exc)[:300])
                metrics.SHADOW_PAIRS.labels(self.label, "failed").inc(len(generated.pairs))
                continue
            if failed:
                metrics.SHADOW_PAIRS.labels(self.label, "failed").inc(failed)
            if len(generated.pairs) - failed:
                metrics.SHADOW_PAIRS.labels(self.label, "judged").inc(len(generated.pairs) - failed)
