"""Judges as things to tell apart and compare (issue 20).

A judge is what changes scores: the model, the RACAR prompt, the acceptance policy, the sampling temperature and the
grounding rule. `judge_id` names that combination in a stable, readable way; `in_share` picks a deterministic share of
pairs for a shadow judge; `compare` computes how two judges agree on the pairs both scored.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from schemas import RACAR_DIMENSIONS

from .prompts import JUDGE_EVIDENCE_PROMPT_VERSION, JUDGE_PROMPT_VERSION

# the judge's prompt as a whole: the pair-only prompt and the one with evidence change together
JUDGE_PROMPTS = f"{JUDGE_PROMPT_VERSION}+{JUDGE_EVIDENCE_PROMPT_VERSION}"
# qa_pairs' own scores (the live judge's, as they were stored), whatever judge wrote them: readers' `--judge live`
LIVE = "live"
# Cohen's kappa weighting for the ordinal 1..3 scores: quadratic (a 1 against a 3 costs four times a 1 against a 2),
# the usual choice for ordinal ratings
KAPPA_WEIGHTS = "quadratic"


def judge_id(model: str, *, policy: str, temperature: float, min_grounding: float = 0.0, prompts: str = "") -> str:
    """`<model>-<8 hex>`: the model's short name, and a hash of everything that changes scores. The model's folder
    path is cut to its last part, so the same model has one id on every host."""
    name = model.rstrip("/").rsplit("/", 1)[-1] or "model"
    short = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-")[:40] or "model"
    key = "|".join([name, prompts or JUDGE_PROMPTS, policy, f"{temperature:g}", f"{min_grounding:g}"])
    return f"{short}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def in_share(qa_id: str, share: float) -> bool:
    """Whether a pair is in a `share` (0..1) of all pairs: a hash of its id, so every worker and every re-delivery
    picks the same pairs."""
    if share <= 0:
        return False
    if share >= 1:
        return True
    return int.from_bytes(hashlib.sha256(qa_id.encode()).digest()[:8], "big") / 2**64 < share


@dataclass
class DimensionAgreement:
    dimension: str
    exact: float  # share of pairs with the same score
    mean_a: float
    mean_b: float
    mean_difference: float  # mean of b - a
    kappa: float | None  # weighted Cohen's kappa; None where it is undefined (one judge gave a single value)


@dataclass
class JudgeCost:
    judge_id: str
    pairs: int
    accepted: int
    prompt_tokens: int
    generated_tokens: int

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.generated_tokens

    @property
    def tokens_per_pair(self) -> float:
        return self.tokens / self.pairs if self.pairs else 0.0

    @property
    def tokens_per_accepted(self) -> float | None:
        return self.tokens / self.accepted if self.accepted else None

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.pairs if self.pairs else 0.0


@dataclass
class Comparison:
    judge_a: str
    judge_b: str
    pairs: int  # scored by both
    dimensions: list[DimensionAgreement] = field(default_factory=list)
    acceptance_agreement: float = 0.0
    acceptance_kappa: float | None = None
    accepted_by_a_only: int = 0
    accepted_by_b_only: int = 0
    cost_a: JudgeCost | None = None
    cost_b: JudgeCost | None = None


def _kappa(a: Sequence[int], b: Sequence[int], weights: str | None) -> float | None:
    from sklearn.metrics import cohen_kappa_score

    if len(set(a) | set(b)) < 2:  # both judges gave one and the same value everywhere: kappa is 0/0
        return None
    value = float(cohen_kappa_score(a, b, weights=weights, labels=sorted(set(a) | set(b))))
    return None if value != value else value  # NaN: chance agreement was total


def compare(judge_a: str, judge_b: str, rows: Sequence[dict]) -> Comparison:
    """Agreement of two judges on the pairs both scored. `rows`: one per such pair, with `<dimension>_a`,
    `<dimension>_b`, `accepted_a`, `accepted_b`, and tokens `prompt_tokens_a`/`generated_tokens_a` (and _b)."""
    n = len(rows)
    result = Comparison(judge_a, judge_b, n)
    if not n:
        return result
    for d in RACAR_DIMENSIONS:
        a = [int(r[f"{d}_a"]) for r in rows]
        b = [int(r[f"{d}_b"]) for r in rows]
        result.dimensions.append(
            DimensionAgreement(
                dimension=d,
                exact=sum(x == y for x, y in zip(a, b)) / n,
                mean_a=sum(a) / n,
                mean_b=sum(b) / n,
                mean_difference=(sum(b) - sum(a)) / n,
                kappa=_kappa(a, b, KAPPA_WEIGHTS),
            )
        )
    acc_a = [bool(r["accepted_a"]) for r in rows]
    acc_b = [bool(r["accepted_b"]) for r in rows]
    result.acceptance_agreement = sum(x == y for x, y in zip(acc_a, acc_b)) / n
    result.acceptance_kappa = _kappa([int(x) for x in acc_a], [int(x) for x in acc_b], None)
    result.accepted_by_a_only = sum(x and not y for x, y in zip(acc_a, acc_b))
    result.accepted_by_b_only = sum(y and not x for x, y in zip(acc_a, acc_b))
    for side, judge in (("a", judge_a), ("b", judge_b)):
        cost = JudgeCost(
            judge_id=judge,
            pairs=n,
            accepted=sum(bool(r[f"accepted_{side}"]) for r in rows),
            prompt_tokens=sum(int(r[f"prompt_tokens_{side}"]) for r in rows),
            generated_tokens=sum(int(r[f"generated_tokens_{side}"]) for r in rows),
        )
        setattr(result, f"cost_{side}", cost)
    return result


def _f(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def format_comparison(c: Comparison) -> str:
    """The comparison as a plain-text table."""
    lines = [f"judges compare: A = {c.judge_a}, B = {c.judge_b}; {c.pairs} pairs scored by both", ""]
    if not c.pairs:
        return "\n".join(lines + ["no pair was scored by both judges"])
    lines.append(f"{'dimension':<16}{'exact':>8}{'mean A':>9}{'mean B':>9}{'B - A':>8}  kappa ({KAPPA_WEIGHTS})")
    for d in c.dimensions:
        lines.append(
            f"{d.dimension:<16}{d.exact:>8.3f}{d.mean_a:>9.3f}{d.mean_b:>9.3f}{d.mean_difference:>+8.3f}  {_f(d.kappa)}"
        )
    lines += [
        "",
        f"acceptance agreement {c.acceptance_agreement:.3f} (kappa {_f(c.acceptance_kappa)}); accepted by A only "
        f"{c.accepted_by_a_only}, by B only {c.accepted_by_b_only}",
        "",
        f"{'judge':<28}{'pairs':>7}{'accepted':>10}{'tokens':>10}{'tokens/pair':>13}{'tokens/accepted':>17}",
    ]
    for cost in (c.cost_a, c.cost_b):
        lines.append(
            f"{cost.judge_id:<28}{cost.pairs:>7}{cost.accepted:>10}{cost.tokens:>10}"
            f"{cost.tokens_per_pair:>13.1f}{_f(cost.tokens_per_accepted, 1):>17}"
        )
    return "\n".join(lines)
