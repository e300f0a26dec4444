"""Our quality metrics run on the SciQAG authors' own QA pairs, side by side with the paper's figures."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .quality import Embed, answer_coverage, numbers_in, numeric_support, question_diversity

PAPER_FIGURES = {
    "numeric_support": ("99.15% of numbers in answers appear in the source", 0.9915),
    "coverage": ("78.6% coverage rate over 50 papers", 0.786),
    "diversity": ("87% of question pairs below 0.3 similarity (LLM judge)", 0.87),
}


@dataclass
class ReleaseCheck:
    papers: int
    pairs: int
    numbers: int
    numeric_support_micro: float  # numbers found in the text / numbers in answers
    numeric_support_mean: float  # mean over answers that contain numbers
    coverage_joint: float
    coverage_per_answer: float
    share_below_0_3: float
    mean_similarity: float
    pairs_over_0_7: int

    def rows(self) -> list[tuple[str, str, str]]:
        return [
            (
                "numeric support",
                f"{PAPER_FIGURES['numeric_support'][1]:.2%}",
                f"{self.numeric_support_micro:.2%} of {self.numbers} numbers "
                f"({self.numeric_support_mean:.2%} mean per answer)",
            ),
            (
                "coverage rate",
                f"{PAPER_FIGURES['coverage'][1]:.1%}",
                f"{self.coverage_joint:.1%} (joint top 15%); {self.coverage_per_answer:.1%} if top 15% per answer",
            ),
            (
                "question diversity: pairs < 0.3",
                f"{PAPER_FIGURES['diversity'][1]:.0%} (LLM judge)",
                f"{self.share_below_0_3:.1%} (MiniLM cosine); mean similarity {self.mean_similarity:.2f}; "
                f"{self.pairs_over_0_7} pairs > 0.7",
            ),
        ]


def load_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _memoized(embed: Embed) -> Embed:
    """Both coverage readings embed the same sentences; embed each text once."""
    cache: dict[str, np.ndarray] = {}

    def cached(texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in cache]
        if missing:
            cache.update(zip(missing, embed(missing)))
        return np.stack([cache[t] for t in texts]) if texts else embed([])

    return cached


def check_release(records: list[dict], embed: Embed) -> ReleaseCheck:
    embed = _memoized(embed)
    found = total = 0
    per_answer: list[float] = []
    joint, split, below, mean_sim, over = [], [], [], [], 0
    for rec in records:
        text, pairs = rec["text"], rec["qa"]
        source = set(numbers_in(text))
        for qa in pairs:
            nums = numbers_in(qa["a"])
            total += len(nums)
            found += sum(1 for n in nums if n in source or n.lstrip("-") in source)
            support = numeric_support(qa["a"], text)
            if support is not None:
                per_answer.append(support)
        answers = [qa["a"] for qa in pairs]
        joint.append(answer_coverage(answers, text, embed))
        split.append(answer_coverage(answers, text, embed, per_answer=True))
        diversity = question_diversity([qa["q"] for qa in pairs], embed)
        if diversity:
            below.append(diversity.share_below_0_3)
            mean_sim.append(diversity.mean_similarity)
            over += diversity.pairs_over_0_7
    return ReleaseCheck(
        papers=len(records),
        pairs=sum(len(r["qa"]) for r in records),
        numbers=total,
        numeric_support_micro=found / total if total else float("nan"),
        numeric_support_mean=float(np.mean(per_answer)) if per_answer else float("nan"),
        coverage_joint=float(np.mean([c for c in joint if c is not None])),
        coverage_per_answer=float(np.mean([c for c in split if c is not None])),
        share_below_0_3=float(np.mean(below)),
        mean_similarity=float(np.mean(mean_sim)),
        pairs_over_0_7=over,
    )


def format_table(check: ReleaseCheck) -> str:
    rows = [("measure", "SciQAG paper", f"ours, on the authors' pairs ({check.papers} papers, {check.pairs} pairs)")]
    rows += check.rows()
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]}" for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
