"""Judgments keyed by judge (issue 20), without an engine: the sink keeps the live judge's view in qa_pairs and every
judge's scores side by side in judgments; readers switch judge; the comparison is what scikit-learn computes."""

from __future__ import annotations

import asyncio
import random

import msgspec
import pytest
from sklearn.metrics import cohen_kappa_score

from processors import judging
from processors.pipeline.app import Pipeline
from processors.pipeline.context import EngineHolder
from processors.settings import Settings
from processors.store import Store, judgment_row
from schemas import RACAR_DIMENSIONS, DimensionScore, Racar, encode
from schemas.ddl import JUDGMENTS_TABLE
from sciqag.judges import compare, in_share, judge_id

from .stage_harness import Record, scored_run, sink_batch, stage_topics


def _records(records, offset: int = 0) -> list[Record]:
    return [
        Record("sciqag.qa.scored", 0, offset + i, r.paper.paper_id.encode(), encode(r)) for i, r in enumerate(records)
    ]


def _as_judge(records, judge: str, role: str, score: int, accepted: bool, tokens: int = 10):
    racar = Racar(**{d: DimensionScore(score=score, reason=f"{judge} {d}") for d in RACAR_DIMENSIONS})
    return [
        msgspec.structs.replace(
            r,
            racar=racar,
            accepted=accepted,
            judge_id=judge,
            judge_role=role,
            judge_model=judge,
            judge_prompt_tokens=tokens,
            judge_generated_tokens=tokens // 2,
            paper_qa_ids=[] if role != "live" else r.paper_qa_ids,
        )
        for r in records
    ]


@pytest.fixture
def pipeline(tmp_path):
    stages = Pipeline.create(Settings(data_dir=tmp_path, quality_metrics=False), stage_topics(), EngineHolder())
    yield stages
    stages.close()


def test_other_judges_add_judgments_and_leave_pairs_and_papers_as_they_are(pipeline):
    live = _as_judge(scored_run("p1", [0, 1, 2]), "live-a", "live", 2, False)
    asyncio.run(sink_batch(pipeline, _records(live)))
    store = pipeline.context.store()
    before_pairs, before_papers = store.qa_rows(), store.papers()
    # a re-judge of the same pairs (its last record would complete the paper if it were live), sent twice
    other = _as_judge(scored_run("p1", [0, 1, 2]), "judge-b", "rejudge", 3, True)
    for attempt in range(2):
        asyncio.run(sink_batch(pipeline, _records(other, offset=10 * attempt)))
    shadow = _as_judge(scored_run("p1", [1]), "judge-c", "shadow", 1, False)
    asyncio.run(sink_batch(pipeline, _records(shadow, offset=30)))

    pairs = store.qa_rows()
    strip = [{k: v for k, v in r.items() if k != "inserted_at"} for r in pairs]
    assert strip == [{k: v for k, v in r.items() if k != "inserted_at"} for r in before_pairs]
    assert [p["updated_at"] for p in store.papers()] == [p["updated_at"] for p in before_papers]
    assert all(r["relevance"] == 2 and not r["accepted"] for r in pairs)
    db = store.database
    counts = store.query(
        f"SELECT judge_id, judge_role, count() AS n, uniqExact(qa_id) AS ids FROM `{db}`.{JUDGMENTS_TABLE} FINAL "
        "GROUP BY judge_id, judge_role ORDER BY judge_id"
    )
    assert [(c["judge_id"], c["judge_role"], c["n"], c["ids"]) for c in counts] == [
        ("judge-b", "rejudge", 3, 3),
        ("judge-c", "shadow", 1, 1),
        ("live-a", "live", 3, 3),
    ]

    # a reader told --judge sees that judge's scores with the pairs' text; the default view stays the live one
    as_b = store.qa_rows(judge="judge-b")
    assert [r["qa_id"] for r in as_b] == [r["qa_id"] for r in pairs]
    assert all(r["relevance"] == 3 and r["accepted"] and r["judge_model"] == "judge-b" for r in as_b)
    assert [r["question"] for r in as_b] == [r["question"] for r in pairs]
    assert all(r["reasons"]["accuracy"] == "judge-b accuracy" for r in as_b)
    assert [r["qa_id"] for r in store.qa_rows(judge="judge-c")] == [shadow[0].qa_id]
    listed = {j["judge_id"]: j for j in store.judges()}
    assert listed["judge-b"]["pairs"] == 3 and listed["judge-b"]["prompt_tokens"] == 30
    assert judging.reference_judge(store, pipeline.settings) == "live-a"


def test_the_fallback_rows_are_the_rows_clickhouse_builds(tmp_path):
    records = _as_judge(scored_run("p2", [0, 1]), "j-x", "shadow", 2, True) + [scored_run("p3", [0])[0]]
    stores = []
    for name in ("via_json", "via_rows"):
        store = Store(Settings(data_dir=tmp_path, clickhouse_database=name))
        store.ensure_schema()
        stores.append(store)
    stores[0].insert_judgments_json([encode(r) for r in records])
    stores[1].insert_judgments([judgment_row(r) for r in records])
    read = [
        [
            {k: v for k, v in row.items() if k != "inserted_at"}
            for row in s.query(f"SELECT * FROM `{s.database}`.{JUDGMENTS_TABLE} FINAL ORDER BY judge_id, qa_id")
        ]
        for s in stores
    ]
    assert read[0] == read[1] and len(read[0]) == 3
    assert read[0][0]["judge_id"] == "j-x" and read[0][-1]["judge_id"] == "legacy::"  # a record without a judge id
    for s in stores:
        s.close()


def test_compare_matches_a_recomputation_from_the_stored_scores(pipeline):
    rng = random.Random(7)
    base = scored_run("p4", list(range(40)))
    a, b = [], []
    for r in base:
        sa = {d: rng.randint(1, 3) for d in RACAR_DIMENSIONS}
        sb = {d: min(3, max(1, v + rng.choice([-1, 0, 0, 1]))) for d, v in sa.items()}
        for side, scores, out in (("A", sa, a), ("B", sb, b)):
            out.append(
                msgspec.structs.replace(
                    r,
                    racar=Racar(**{d: DimensionScore(score=v) for d, v in scores.items()}),
                    accepted=all(v == 3 for v in scores.values()) or scores["accuracy"] == 3,
                    judge_id=f"judge-{side}",
                    judge_role="rejudge",
                    judge_prompt_tokens=rng.randint(100, 200),
                    judge_generated_tokens=rng.randint(10, 50),
                )
            )
    live = _as_judge(base, "live-a", "live", 2, False)
    asyncio.run(sink_batch(pipeline, _records(live + a + b[:30])))  # B judged only 30 of the 40
    store = pipeline.context.store()
    got = judging.comparison(store, "judge-A", "judge-B")

    both = {r.qa_id for r in b[:30]}
    ra = [r for r in a if r.qa_id in both]
    rb = b[:30]
    assert got.pairs == 30
    for d in got.dimensions:
        xa = [getattr(r.racar, d.dimension).score for r in ra]
        xb = [getattr(r.racar, d.dimension).score for r in rb]
        assert d.exact == pytest.approx(sum(x == y for x, y in zip(xa, xb)) / 30)
        assert d.mean_difference == pytest.approx((sum(xb) - sum(xa)) / 30)
        assert d.kappa == pytest.approx(cohen_kappa_score(xa, xb, weights="quadratic"))
    assert got.acceptance_agreement == pytest.approx(sum(x.accepted == y.accepted for x, y in zip(ra, rb)) / 30)
    tokens_b = sum(r.judge_prompt_tokens + r.judge_generated_tokens for r in rb)
    assert got.cost_b.tokens_per_pair == pytest.approx(tokens_b / 30)
    accepted_b = sum(r.accepted for r in rb)
    assert got.cost_b.tokens_per_accepted == pytest.approx(tokens_b / accepted_b)
    # the gauges carry the same figures, each judge against the reference (the live judge)
    from prometheus_client import REGISTRY

    judging.publish_metrics(store, pipeline.settings)
    assert REGISTRY.get_sample_value(
        "sciqag_judge_common_pairs", {"judge": "judge-B", "reference": "live-a"}
    ) == pytest.approx(30)
    assert REGISTRY.get_sample_value("sciqag_judge_tokens_per_pair", {"judge": "judge-B"}) == pytest.approx(
        tokens_b / 30
    )


def test_judge_ids_are_stable_and_tell_judges_apart():
    one = judge_id("/home/x/.cache/sciqag/models/SmolLM2-135M-Instruct", policy="strict", temperature=0.3)
    assert one == judge_id("/other/host/SmolLM2-135M-Instruct/", policy="strict", temperature=0.3)
    assert one.startswith("smollm2-135m-instruct-")
    others = {
        judge_id("SmolLM2-135M-Instruct", policy="mean2.5", temperature=0.3),
        judge_id("SmolLM2-135M-Instruct", policy="strict", temperature=0.9),
        judge_id("SmolLM2-135M-Instruct", policy="strict", temperature=0.3, min_grounding=0.5),
        judge_id("SmolLM2-135M-Instruct", policy="strict", temperature=0.3, prompts="racar-9"),
    }
    assert one not in others and len(others) == 4


def test_the_shadow_share_is_deterministic_and_near_its_setting():
    ids = [f"qa-{i}" for i in range(5000)]
    picked = [q for q in ids if in_share(q, 0.3)]
    assert picked == [q for q in ids if in_share(q, 0.3)]
    assert 0.27 < len(picked) / len(ids) < 0.33
    assert not any(in_share(q, 0) for q in ids[:50]) and all(in_share(q, 1) for q in ids[:50])


def test_compare_of_judges_that_agree_on_one_value_has_no_kappa():
    rows = [{f"{d}_{s}": 3 for d in RACAR_DIMENSIONS for s in "ab"} for _ in range(4)]
    for r in rows:
        r.update(accepted_a=True, accepted_b=True, prompt_tokens_a=1, generated_tokens_a=1)
        r.update(prompt_tokens_b=2, generated_tokens_b=2)
    c = compare("a", "b", rows)
    assert all(d.exact == 1 and d.kappa is None for d in c.dimensions)
    assert c.cost_b.tokens_per_pair == 4
