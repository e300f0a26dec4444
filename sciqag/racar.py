"""RACAR acceptance policies (SciQAG: Relevance, Agnosticism, Completeness, Accuracy, Reasonableness)."""

from __future__ import annotations

from schemas import RACAR_DIMENSIONS, Racar

POLICIES = ("strict", "mean2.5")


def scores(racar: Racar) -> dict[str, int]:
    return {d: getattr(racar, d).score for d in RACAR_DIMENSIONS}


def is_accepted(racar: Racar, policy: str = "strict") -> bool:
    return passes(scores(racar), policy)


def passes(values_by_dimension: dict[str, int], policy: str = "strict") -> bool:
    """`strict`: every dimension is 3 (SciQAG-24D's test split); `mean2.5`: the mean is at least 2.5."""
    values = [int(values_by_dimension[d]) for d in RACAR_DIMENSIONS]
    if policy == "strict":
        return all(v == 3 for v in values)
    if policy == "mean2.5":
        return sum(values) / len(values) >= 2.5
    raise ValueError(f"unknown acceptance policy {policy!r}; choose from {', '.join(POLICIES)}")
