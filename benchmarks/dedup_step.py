"""The near-duplicate step's cost per pair in the sink, against the judge's time per pair, in the same run.

The step (processors/dedup.py) for one sink batch: look up earlier decisions, embed the new questions
(all-MiniLM-L6-v2 on CPU), one HNSW lookup per pair, one query for the neighbours' states, the embeddings insert,
then after the pairs' insert the recheck (one more lookup per canonical pair). Measured on the 400 questions of the
SciQAG release records, stored one paper (10 pairs) per batch as a sink would at a low rate (the worst case per
pair: batches of many papers share the fixed costs), into a table already holding `--stored` synthetic vectors.

Baseline: the judge's wall time per pair with the bundled model in this process, judging the first papers' pairs
as the judge agent does (all pairs of a paper at once, the paper text first in every prompt). Target: the step
costs below 5% of it (ratio <= 0.05).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import msgspec
import numpy as np

from .common import Row

RELEASE = Path(__file__).resolve().parents[2] / "shared" / "data" / "sciqag" / "papers_dev.jsonl"


def _step_seconds_per_pair(papers, stored: int) -> tuple[float, int]:
    from processors.dedup import NearDuplicates, PairView, with_decision
    from processors.jobs.release_import import assumed_scores, release_generated
    from processors.settings import Settings
    from processors.store import open_store
    from sciqag.embeddings import embed

    with tempfile.TemporaryDirectory() as tmp, open_store(Settings(data_dir=Path(tmp))) as store:
        rng = np.random.default_rng(0)
        filler = rng.normal(size=(stored, 384)).astype(np.float32)
        filler /= np.linalg.norm(filler, axis=1, keepdims=True)
        for start in range(0, stored, 5000):
            store.replace_embeddings(
                [
                    {
                        "qa_id": f"filler{i}",
                        "paper_id": f"filler{i // 10}",
                        "kind": "open",
                        "language": "en",
                        "question": "",
                        "model": "synthetic",
                        "embedding": filler[i],
                        "first_stored_at": "2026-01-01T00:00:00Z",
                    }
                    for i in range(start, min(stored, start + 5000))
                ]
            )
        embed(["warm the model up"])  # loaded once per process in the sink too
        dedup = NearDuplicates(store, Settings(data_dir=Path(tmp)))
        spent, pairs = 0.0, 0
        for paper in papers:
            scored = assumed_scores(release_generated(paper, paper.text, "full"), 3, "strict")
            views = [PairView.of(r) for r in scored]
            started = time.perf_counter()
            decisions = dedup.decide(views)
            middle = time.perf_counter()
            store.insert_qa_json([with_decision(msgspec.json.encode(r), d) for r, d in zip(scored, decisions)])
            resumed = time.perf_counter()
            dedup.recheck(views, decisions)
            spent += (middle - started) + (time.perf_counter() - resumed)  # not the pairs' own insert
            pairs += len(views)
        return spent / pairs, pairs


async def _judge_seconds_per_pair(papers) -> tuple[float, int]:
    from processors.llm import open_llm
    from processors.local.model import prepare_bundled_model
    from processors.settings import Settings
    from sciqag.context import context_budget, fit_text
    from sciqag.prompts import judge_messages, judge_schema

    settings = Settings()
    model_dir = str(prepare_bundled_model())
    schema = judge_schema()
    async with open_llm(settings, model_dir) as engine:
        budget = context_budget(engine.max_model_len, settings.judge_max_tokens, 0)
        wall, pairs = 0.0, 0
        for n, paper in enumerate(papers):
            context, _ = fit_text(paper.text, [], budget, engine.count_tokens)
            started = time.perf_counter()
            await asyncio.gather(
                *(
                    engine.generate(
                        judge_messages(context, q, a),
                        json_schema=schema,
                        max_tokens=settings.judge_max_tokens,
                        request_id=f"bench-judge-{n}-{i}",
                        role="judge",
                    )
                    for i, (q, a) in enumerate(paper.pairs)
                )
            )
            if n:  # the first paper warms the engine up (compilation, caches)
                wall += time.perf_counter() - started
                pairs += len(paper.pairs)
        return wall / pairs, pairs


def run(stored: int = 10_000, judge_papers: int = 3) -> list[Row]:
    from processors.jobs.release_import import read_release

    if not RELEASE.exists():
        print(f"near-duplicate step: skipped ({RELEASE} not found)")
        return []
    papers = read_release(RELEASE)
    step, step_pairs = _step_seconds_per_pair(papers, stored)
    judge, judge_pairs = asyncio.run(_judge_seconds_per_pair(papers[:judge_papers]))
    return [
        Row(
            "near-duplicate step",
            "seconds per pair in the sink (decide + embeddings insert + recheck)",
            step,
            "judge wall seconds per pair (bundled model, this machine)",
            judge,
            target=0.05,
            at_most=True,
            note=f"{step_pairs} SciQAG questions, one paper a batch, {stored} vectors stored before; "
            f"judge: {judge_pairs} pairs after a warm-up paper",
        )
    ]
