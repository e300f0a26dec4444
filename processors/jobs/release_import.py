"""`sciqag dataset import-sciqag`: SciQAG's released pairs as if the stream had produced them.

Each release record (full text + the authors' QA pairs) goes on `sciqag.qa.generated` as a QAGenerated record, so
the real judge and sink agents score and store it exactly as they do streamed papers. With --assume-score the
judge is skipped and every dimension is recorded as that score (for releases that were already judged, e.g.
SciQAG-24D's all-3 test split); such rows say so in judge_model.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from schemas import RACAR_DIMENSIONS, DimensionScore, PaperRef, QAGenerated, QAPair, QAScored, Racar
from schemas import topics as T
from sciqag.context import context_budget, fit_text
from sciqag.ids import normalize_doi, paper_id_for, qa_id_for
from sciqag.quality import numeric_support
from sciqag.racar import passes

from ..dedup import UNCHECKED, Decision, NearDuplicates, PairView
from ..pipeline.worker import Job, Running, run_worker
from ..progress import Progress
from ..settings import Settings
from ..store import Store, open_store, paper_row_scored, qa_row
from .run import wait_for_papers

RELEASE_PROMPT_VERSION = "sciqag-release"
RELEASE_GENERATOR = "SciQAG authors (release)"
RELEASE_FEED = "sciqag-release"


@dataclass
class ReleasePaper:
    ref: PaperRef
    text: str
    keywords: list[str]
    pairs: list[tuple[str, str]]


def read_release(path: Path, limit: int = 0) -> list[ReleasePaper]:
    """SciQAG release records: {doi, journal, keywords, text, qa: [{q, a}]} one per line."""
    papers: list[ReleasePaper] = []
    seen: set[str] = set()
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            text = raw["text"]
            pairs = [(str(p["q"]).strip(), str(p["a"]).strip()) for p in raw["qa"]]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{lineno}: not a SciQAG record (needs text and qa [{{q, a}}]): {exc}") from exc
        doi = normalize_doi(raw.get("doi", ""))
        pid = paper_id_for(doi=doi, content=text.encode())
        if pid in seen:
            continue
        seen.add(pid)
        journal = str(raw.get("journal") or "")
        ref = PaperRef(
            paper_id=pid,
            doi=doi,
            title=str(raw.get("title") or ""),
            journal=journal,
            categories=[journal] if journal else [],
            source_uri=f"{path.name}#{lineno}",
            source_feed=RELEASE_FEED,
        )
        papers.append(
            ReleasePaper(ref, text, [str(k) for k in raw.get("keywords") or []], [(q, a) for q, a in pairs if q and a])
        )
        if limit and len(papers) >= limit:
            break
    return papers


def release_generated(paper: ReleasePaper, context: str, strategy: str) -> QAGenerated:
    pid = paper.ref.paper_id
    return QAGenerated(
        paper=paper.ref,
        language="en",
        keywords=paper.keywords,
        pairs=[
            QAPair(qa_id=qa_id_for(pid, i, RELEASE_PROMPT_VERSION), index=i, question=q, answer=a)
            for i, (q, a) in enumerate(paper.pairs)
        ],
        context=context,
        context_strategy=strategy,
        model=RELEASE_GENERATOR,
        prompt_version=RELEASE_PROMPT_VERSION,
    )


def assumed_scores(generated: QAGenerated, score: int, policy: str) -> list[QAScored]:
    reason = f"not judged here: imported with --assume-score {score}"
    racar = Racar(**{d: DimensionScore(score=score, reason=reason) for d in RACAR_DIMENSIONS})
    accepted = passes({d: score for d in RACAR_DIMENSIONS}, policy)
    return [
        QAScored(
            paper=generated.paper,
            qa_id=p.qa_id,
            pair_index=p.index,
            sequence=i,
            pair_count=len(generated.pairs),
            language=generated.language,
            keywords=generated.keywords,
            question=p.question,
            answer=p.answer,
            racar=racar,
            numeric_support=numeric_support(p.answer, generated.context),
            accepted=accepted,
            generator_model=generated.model,
            judge_model=f"assumed:{score}",
            prompt_version=generated.prompt_version,
            judge_prompt_version="",
            context_strategy=generated.context_strategy,
        )
        for i, p in enumerate(generated.pairs)
    ]


def _already_imported(store: Store, papers: list[ReleasePaper]) -> set[str]:
    status = store.paper_status(p.ref.paper_id for p in papers)
    return {pid for pid, s in status.items() if s["status"] == "scored"}


def near_duplicate_decisions(settings: Settings, store: Store, scored: list[QAScored]) -> list[Decision]:
    """The sink's near-duplicate decision for pairs stored here without it (processors/dedup.py)."""
    if not settings.near_duplicates:
        return [UNCHECKED] * len(scored)
    return NearDuplicates(store, settings).decide([PairView.of(r) for r in scored])


def import_assumed(settings: Settings, papers: list[ReleasePaper], score: int, *, force: bool) -> tuple[int, int, int]:
    """Store the pairs with assumed scores; returns (papers stored, pairs stored, papers skipped as already stored)."""
    with open_store(settings) as store:
        skip = set() if force else _already_imported(store, papers)
        todo = [p for p in papers if p.ref.paper_id not in skip]
        progress = Progress(len(todo))
        for done, paper in enumerate(todo, 1):
            scored = assumed_scores(release_generated(paper, paper.text, "full"), score, settings.acceptance_policy)
            if scored:
                decisions = near_duplicate_decisions(settings, store, scored)
                store.insert_qa([qa_row(r, d) for r, d in zip(scored, decisions, strict=True)])
                store.insert_papers([paper_row_scored(scored[-1])])
            progress.update(done)
        progress.close()
        return len(todo), sum(len(p.pairs) for p in todo), len(skip)


def make_import_job(papers: list[ReleasePaper], counts: dict, *, force: bool, timeout_s: float) -> Job:
    """A worker job (judge and sink agents): publish the records to the judge's topic and wait for them."""

    async def job(worker: Running) -> int:
        store = await worker.store()
        skip = (
            set() if force else await asyncio.get_running_loop().run_in_executor(None, _already_imported, store, papers)
        )
        todo = [p for p in papers if p.ref.paper_id not in skip]
        counts.update(skipped=len(skip), papers=len(todo))
        if not todo:
            return 0
        engine = await worker.llm()
        # the judge sees the paper as the generator would have: fitted to the window, never cut mid-sentence
        s = worker.settings
        budget = context_budget(engine.max_model_len, s.judge_max_tokens, s.max_context_tokens)
        submitted, started = time.time(), time.monotonic()
        for paper in todo:
            context, strategy = fit_text(paper.text, [], budget, engine.count_tokens)
            await worker.send(T.GENERATED, paper.ref.paper_id, release_generated(paper, context, strategy))
        print(f"sent {len(todo)} papers to the judge; waiting for them to be scored", file=sys.stderr)
        status, code = await wait_for_papers(
            worker, store, [p.ref.paper_id for p in todo], submitted=submitted, started=started, timeout_s=timeout_s
        )
        counts["scored"] = sum(1 for v in status.values() if v["status"] == "scored")
        counts["failed"] = sum(1 for v in status.values() if v["status"] == "failed")
        return code

    return job


def import_release(
    settings: Settings, path: Path, *, limit: int, assume_score: int | None, force: bool, timeout_s: float
) -> int:
    """`sciqag dataset import-sciqag`: with assumed scores straight into the store, else through a worker of its
    own running the judge and sink agents. Prints what was stored; returns the exit code."""
    papers = read_release(path, limit)
    if assume_score:
        stored, pairs, skipped = import_assumed(settings, papers, assume_score, force=force)
        print(
            f"imported {stored} papers, {pairs} pairs, every score assumed {assume_score}; "
            f"{skipped} papers already stored"
        )
        return 0
    counts: dict = {}
    code = run_worker(
        settings.with_overrides(agents=["judge", "sink"]),
        make_import_job(papers, counts, force=force, timeout_s=timeout_s),
    )
    print(
        f"judged and stored {counts.get('scored', 0)} papers, {counts.get('failed', 0)} failed; "
        f"{counts.get('skipped', 0)} already stored"
    )
    return code
