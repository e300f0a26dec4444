"""SciQAG-24D-style benchmark splits from stored pairs.

The test split is for closed-book QA: per category, `per_category` papers drawn
with a seeded generator from the papers that have at least one pair passing the
acceptance policy (strict: every RACAR dimension is 3); it holds only those
pairs. The train split is every other paper's pairs that pass the rule-based
filter. Splitting is by paper, so no paper is in both. Only open pairs are used
(multiple-choice items have their own export, `sciqag export --format mera`).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .prefilter import drop_reason
from .racar import passes

INSTRUCTION = "Answer the following scientific question in a few sentences, without access to the source paper."


def category_of(row: dict) -> str:
    """A stored pair's or paper's category: its journal, else its first subject category."""
    return row.get("journal") or (row.get("categories") or ["(unknown)"])[0]


@dataclass
class Split:
    test: list[dict] = field(default_factory=list)
    train: list[dict] = field(default_factory=list)
    rule_dropped: Counter = field(default_factory=Counter)  # pairs the rule-based filter removed, by reason
    policy_dropped: int = 0  # pairs of test papers that did not pass the acceptance policy
    eligible_papers: dict[str, int] = field(default_factory=dict)  # category -> papers with an accepted pair
    duplicates_left_out: int = 0  # pairs marked as near-duplicates of another paper's pair, not offered to the split
    rejected_by_reviewers: int = 0  # pairs whose latest verdict in `sciqag review` was reject, not offered either
    # test pairs removed because their question near-duplicates a train question: (test qa_id, train qa_id, cosine)
    contamination: list[tuple[str, str, float]] = field(default_factory=list)
    contamination_threshold: float | None = None  # None: the contamination check did not run

    def papers(self, split: str) -> set[str]:
        return {r["paper_id"] for r in getattr(self, split)}

    def counts(self) -> dict[str, dict[str, tuple[int, int]]]:
        """category -> split -> (papers, pairs)."""
        out: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
        for name in ("test", "train"):
            by_cat: dict[str, list[dict]] = defaultdict(list)
            for r in getattr(self, name):
                by_cat[category_of(r)].append(r)
            for cat, rows in by_cat.items():
                out[cat][name] = (len({r["paper_id"] for r in rows}), len(rows))
        return dict(sorted(out.items()))


def _passes(row: dict, policy: str) -> bool:
    """A reviewer's latest verdict (sciqag/verdicts.py apply_verdicts; rejected pairs are already out) wins over the
    acceptance policy on the judge's scores."""
    if row.get("review"):
        return True
    return passes(row, policy)


def _rule_filter(rows: list[dict]) -> tuple[list[dict], Counter]:
    kept, dropped, seen = [], Counter(), set()
    for r in sorted(rows, key=lambda r: r["pair_index"]):
        reason = drop_reason(r["question"], r["answer"], seen)
        if reason:
            dropped[reason] += 1
        else:
            kept.append(r)
    return kept, dropped


def split_pairs(rows: Iterable[dict[str, Any]], *, per_category: int, seed: int, policy: str = "strict") -> Split:
    """Deterministic for a seed and a set of rows, whatever order the rows come in."""
    by_paper: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r.get("kind", "open") == "open":
            by_paper[r["paper_id"]].append(r)
    split = Split()
    filtered: dict[str, list[dict]] = {}
    for pid, paper_rows in by_paper.items():
        filtered[pid], dropped = _rule_filter(paper_rows)
        split.rule_dropped.update(dropped)

    eligible: dict[str, list[str]] = defaultdict(list)
    for pid in sorted(filtered):
        if any(_passes(r, policy) for r in filtered[pid]):
            eligible[category_of(filtered[pid][0])].append(pid)
    rng = random.Random(seed)
    test_papers: set[str] = set()
    for cat in sorted(eligible):
        chosen = list(eligible[cat])
        rng.shuffle(chosen)
        test_papers.update(chosen[:per_category])
    split.eligible_papers = {cat: len(ids) for cat, ids in sorted(eligible.items())}

    for pid in sorted(by_paper):
        if pid in test_papers:
            accepted = [r for r in filtered[pid] if _passes(r, policy)]
            split.policy_dropped += len(filtered[pid]) - len(accepted)
            split.test.extend(accepted)
        else:
            split.train.extend(filtered[pid])
    return split


def remove_contamination(split: Split, vectors: dict[str, np.ndarray], threshold: float) -> None:
    """Remove every test pair whose question has a cosine similarity >= threshold to a train question (unit
    vectors by qa_id): no test question near-duplicates a train question. Exact, by blocks of train questions."""
    split.contamination_threshold = threshold
    if not split.test or not split.train:
        return
    test = np.stack([vectors[r["qa_id"]] for r in split.test]).astype(np.float32)
    train = np.stack([vectors[r["qa_id"]] for r in split.train]).astype(np.float32)
    best = np.full(len(test), -1.0, dtype=np.float32)
    best_at = np.zeros(len(test), dtype=np.int64)
    for start in range(0, len(train), 4096):
        sims = test @ train[start : start + 4096].T
        at = sims.argmax(axis=1)
        top = sims[np.arange(len(test)), at]
        better = top > best
        best[better], best_at[better] = top[better], at[better] + start
    kept = []
    for i, row in enumerate(split.test):
        if best[i] >= threshold:
            split.contamination.append((row["qa_id"], split.train[best_at[i]]["qa_id"], round(float(best[i]), 4)))
        else:
            kept.append(row)
    split.test = kept


# -- the three output shapes ---------------------------------------------------------------------


def full_record(row: dict) -> dict:
    return {
        "question": row["question"],
        "answer": row["answer"],
        "paper_id": row["paper_id"],
        "doi": row.get("doi", ""),
        "category": category_of(row),
        "edited": bool(row.get("edited")),  # a reviewer's text replaced the generated one (`sciqag review`)
        "reviewed_by": (row.get("review") or {}).get("reviewer", ""),
    }


def sciqag_record(row: dict) -> dict:
    return {"Q": row["question"], "A": row["answer"]}


def instruction_record(row: dict) -> dict:
    return {"instruction": INSTRUCTION, "input": row["question"], "output": row["answer"]}


SHAPES = {"qa": full_record, "sciqag": sciqag_record, "instruct": instruction_record}


def dataset_card(
    split: Split, *, seed: int, per_category: int, policy: str, models: dict[str, list[str]], built_at: str, source: str
) -> str:
    rows = split.counts()
    table = ["| category | test papers | test pairs | train papers | train pairs |", "|---|---:|---:|---:|---:|"]
    for cat, by_split in rows.items():
        tp, tq = by_split.get("test", (0, 0))
        rp, rq = by_split.get("train", (0, 0))
        table.append(f"| {cat} | {tp} | {tq} | {rp} | {rq} |")
    table.append(
        f"| **all** | {len(split.papers('test'))} | {len(split.test)} | {len(split.papers('train'))} | "
        f"{len(split.train)} |"
    )
    short = [cat for cat, n in split.eligible_papers.items() if n < per_category]
    dropped = ", ".join(f"{k} {v}" for k, v in sorted(split.rule_dropped.items())) or "none"
    return "\n".join(
        [
            "# SciQAG-24D-style benchmark built by sciqag-stream",
            "",
            f"Built {built_at} from {source} with `sciqag dataset build --per-category {per_category} --seed {seed}`.",
            "",
            "## Splits",
            "",
            *table,
            "",
            "Splits are by paper: no paper has pairs in both. The test split is for closed-book QA "
            "(`sciqag eval-open test/qa.jsonl`).",
            "",
            "## How the pairs were chosen",
            "",
            f"- **test**: per category, {per_category} papers drawn with seed {seed} from the papers that have at "
            f"least one pair passing the acceptance policy **{policy}** "
            f"({'every RACAR dimension = 3' if policy == 'strict' else 'mean RACAR score >= 2.5'}); only those pairs. "
            f"{split.policy_dropped} pairs of test papers did not pass and were left out."
            + (f" Categories with fewer eligible papers than asked: {', '.join(short)}." if short else ""),
            "- **train**: every pair of the remaining papers that passes the rule-based filter (no reference to "
            '"this paper", the authors, a figure or table; no trivial answer; no repeated question), which is '
            f"applied to both splits. Removed by it: {dropped}.",
            "- Open pairs only; multiple-choice items are exported with `sciqag export --format mera`.",
            f"- **near-duplicates**: {split.duplicates_left_out} pairs whose question near-duplicates an earlier pair "
            "of another paper (`duplicate_of` in the store) were left out before splitting. "
            + (
                f"{len(split.contamination)} test pairs were removed because their question near-duplicates a train "
                f"question (cosine similarity of the question embeddings >= {split.contamination_threshold}): no "
                "test question near-duplicates a train question."
                if split.contamination_threshold is not None
                else "Test questions were not checked against train questions."
            ),
            f"- **reviewers** (`sciqag review`): {split.rejected_by_reviewers} pairs a reviewer rejected were left out "
            "before splitting; a reviewer's acceptance wins over the policy. In the splits: "
            f"{sum(1 for r in split.test + split.train if r.get('review'))} reviewed pairs, "
            f"{sum(1 for r in split.test + split.train if r.get('edited'))} with the reviewer's edited text "
            "(`edited` in the `qa` shape).",
            "",
            "## Models",
            "",
            f"- generator: {', '.join(models.get('generator') or ['(unknown)'])}",
            f"- judge: {', '.join(models.get('judge') or ['(unknown)'])}",
            "",
            "## Files",
            "",
            "Each split folder holds the same pairs in three shapes, as JSONL and Parquet:",
            "`qa` {question, answer, paper_id, doi, category, edited, reviewed_by}; `sciqag` {Q, A} (SciQAG's release "
            "shape); "
            "`instruct` {instruction, input, output} for instruction tuning.",
            "",
        ]
    )
