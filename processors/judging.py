"""Judges over the store (issue 20): which judge is the reference, how the others compare with it, and the same
figures as Prometheus gauges (set by a worker with the sink every SCIQAG_JUDGE_METRICS_INTERVAL_S)."""

from __future__ import annotations

from sciqag.judges import LIVE, Comparison, compare

from . import metrics
from .settings import Settings
from .store import Store


def reference_judge(store: Store, settings: Settings, judges: list[dict] | None = None) -> str:
    """The primary judge (SCIQAG_PRIMARY_JUDGE), else the live judge with the most stored judgments, else `live`
    (qa_pairs' own scores: a database from before judge ids)."""
    if settings.primary_judge and settings.primary_judge != LIVE:
        return settings.primary_judge
    judges = store.judges() if judges is None else judges
    live = [j for j in judges if "live" in j["roles"].split(",")]
    return max(live, key=lambda j: j["pairs"])["judge_id"] if live else LIVE


def comparison(store: Store, judge_a: str, judge_b: str) -> Comparison:
    return compare(judge_a, judge_b, store.judged_by_both(judge_a, judge_b))


def publish_metrics(store: Store, settings: Settings) -> list[Comparison]:
    """Every judge against the reference: agreement, kappa and mean difference per dimension, and each judge's
    cost and acceptance on all it judged."""
    judges = store.judges()
    reference = reference_judge(store, settings, judges)
    for j in judges:
        pairs, tokens = j["pairs"], j["prompt_tokens"] + j["generated_tokens"]
        metrics.JUDGE_TOKENS_PER_PAIR.labels(j["judge_id"]).set(tokens / pairs if pairs else 0)
        if j["accepted"]:
            metrics.JUDGE_TOKENS_PER_ACCEPTED.labels(j["judge_id"]).set(tokens / j["accepted"])
        metrics.JUDGE_ACCEPTANCE.labels(j["judge_id"]).set(j["accepted"] / pairs if pairs else 0)
    done = []
    for j in judges:
        if j["judge_id"] == reference:
            continue
        c = comparison(store, reference, j["judge_id"])
        done.append(c)
        judge = j["judge_id"]
        metrics.JUDGE_COMMON_PAIRS.labels(judge, reference).set(c.pairs)
        if not c.pairs:
            continue
        for d in c.dimensions:
            metrics.JUDGE_AGREEMENT.labels(judge, reference, d.dimension).set(d.exact)
            metrics.JUDGE_MEAN_DIFFERENCE.labels(judge, reference, d.dimension).set(d.mean_difference)
            if d.kappa is not None:
                metrics.JUDGE_KAPPA.labels(judge, reference, d.dimension).set(d.kappa)
        metrics.JUDGE_AGREEMENT.labels(judge, reference, "accepted").set(c.acceptance_agreement)
        if c.acceptance_kappa is not None:
            metrics.JUDGE_KAPPA.labels(judge, reference, "accepted").set(c.acceptance_kappa)
    return done
