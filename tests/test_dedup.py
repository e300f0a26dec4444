"""The corpus-wide near-duplicate decision (processors/dedup.py) on chDB with the real embeddings model: who stays
canonical, re-deliveries, kinds, replays whose question changed, and two sink members storing similar pairs at the
same time."""

from __future__ import annotations

import itertools
import re

import msgspec
import pytest

from processors.dedup import NearDuplicates, PairView, with_decision
from processors.settings import Settings
from processors.store import Store
from schemas import DimensionScore, PaperRef, QAScored, Racar
from schemas.ddl import EMBEDDINGS_HNSW, EMBEDDINGS_TABLE_SETTINGS, embeddings_table_ddl
from sciqag.ids import qa_id_for

pytest.importorskip("sentence_transformers")

QUESTIONS = [
    "What is the band gap of monolayer MoS2 measured by photoluminescence?",
    "How does annealing temperature affect the grain size of the copper films?",
    "Which catalyst gave the highest ammonia yield in the electrochemical tests?",
]
# the same three questions, reworded
REWORDED = [
    "What band gap does monolayer MoS2 have according to photoluminescence measurements?",
    "How does the annealing temperature influence the grain size in the copper films?",
    "Which catalyst produced the highest yield of ammonia in the electrochemical experiments?",
]
UNRELATED = [
    "What sampling rate was used to record the seismic signals?",
    "Why did the authors choose a Bayesian hierarchical model for the survey data?",
    "What is the half-life of the tritium source used in the detector?",
]


def _scored(paper_id: str, questions: list[str], kind: str = "open") -> list[QAScored]:
    score = DimensionScore(score=3, reason="fine")
    racar = Racar(relevance=score, agnosticism=score, completeness=score, accuracy=score, reasonableness=score)
    ids = [qa_id_for(paper_id, i, "v-test", kind) for i in range(len(questions))]
    return [
        QAScored(
            paper=PaperRef(paper_id=paper_id, source_uri=f"file:///{paper_id}.pdf"),
            qa_id=qa_id,
            pair_index=i,
            sequence=i,
            pair_count=len(questions),
            kind=kind,
            question=q,
            answer="An answer.",
            racar=racar,
            accepted=True,
            prompt_version="v-test",
            options=["a", "b", "c", "d"] if kind == "mcq" else [],
            correct_option=0 if kind == "mcq" else -1,
        )
        for i, (qa_id, q) in enumerate(zip(ids, questions, strict=True))
    ]


@pytest.fixture
def store(tmp_path):
    s = Store(Settings(data_dir=tmp_path))
    s.ensure_schema()
    yield s
    s.close()


def _dedup(store: Store) -> NearDuplicates:
    return NearDuplicates(store, Settings(duplicate_threshold=0.85))


def _store_batch(store: Store, records: list[QAScored], *, recheck: bool = True):
    """What the sink does with a batch's scored pairs: decide, insert (the JSON path), recheck."""
    dedup = _dedup(store)
    views = [PairView.of(r) for r in records]
    decisions = dedup.decide(views)
    store.insert_qa_json([with_decision(msgspec.json.encode(r), d) for r, d in zip(records, decisions, strict=True)])
    if recheck:
        dedup.recheck(views, decisions)
    return views, decisions


def _pairs(store: Store) -> dict[str, dict]:
    return {r["qa_id"]: r for r in store.qa_rows()}


def test_the_same_questions_in_a_second_paper_are_duplicates_of_the_first(store):
    first, second = _scored("pA", QUESTIONS), _scored("pB", QUESTIONS)
    _store_batch(store, first)
    _store_batch(store, second)
    rows = _pairs(store)
    for a, b in zip(first, second, strict=True):
        assert rows[a.qa_id]["duplicate_of"] == ""
        assert rows[b.qa_id]["duplicate_of"] == a.qa_id
        assert rows[b.qa_id]["duplicate_similarity"] > 0.99


def _embeddings_create_query(store: Store) -> str:
    return store.query(
        "SELECT create_table_query AS q FROM system.tables WHERE database = {db:String} AND name = 'qa_embeddings'",
        {"db": store.database},
    )[0]["q"]


def test_a_new_store_gets_small_granules_and_an_earlier_one_keeps_its_table_and_works(store, tmp_path):
    created = _embeddings_create_query(store)
    assert EMBEDDINGS_TABLE_SETTINGS in created and f"384, {EMBEDDINGS_HNSW})" in created
    store.close()
    # a store whose table was created before the SETTINGS clause and the HNSW parameters (MergeTree's and
    # ClickHouse's defaults): index_granularity cannot be altered, so ensure_schema leaves the table as it is, and the
    # near-duplicate lookup still works on it
    old = Store(Settings(data_dir=tmp_path / "old"))
    try:
        old.command(f"CREATE DATABASE IF NOT EXISTS `{old.database}`")
        first_ddl, removed = re.subn(r" SETTINGS .*$", "", embeddings_table_ddl(old.database))
        assert removed == 1 and f", {EMBEDDINGS_HNSW})" in first_ddl
        old.command(first_ddl.replace(f", {EMBEDDINGS_HNSW})", ")"))
        old.ensure_schema()
        assert " SETTINGS index_granularity = 8192" in _embeddings_create_query(old)
        first, second = _scored("pA", QUESTIONS), _scored("pB", REWORDED)
        _store_batch(old, first)
        _store_batch(old, second)
        rows = _pairs(old)
        for a, b in zip(first, second, strict=True):
            assert rows[b.qa_id]["duplicate_of"] == a.qa_id
    finally:
        old.close()


def test_reworded_questions_are_duplicates_and_unrelated_ones_are_not(store):
    _store_batch(store, _scored("pA", QUESTIONS))
    reworded, unrelated = _scored("pB", REWORDED), _scored("pC", UNRELATED)
    _store_batch(store, reworded + unrelated)
    rows = _pairs(store)
    assert all(rows[r.qa_id]["duplicate_of"] for r in reworded)
    for r in unrelated:
        assert rows[r.qa_id]["duplicate_of"] == ""
        assert rows[r.qa_id]["duplicate_similarity"] is not None  # checked, and below the threshold


def test_a_redelivered_or_replayed_paper_stays_canonical_and_keeps_its_embeddings(store):
    first = _scored("pA", QUESTIONS)
    _store_batch(store, first)
    _store_batch(store, _scored("pB", QUESTIONS))
    before = _pairs(store)
    _, decisions = _store_batch(store, first)  # the first paper delivered again, after its duplicate
    assert all(d.reused for d in decisions)
    after = _pairs(store)
    for r in first:
        assert after[r.qa_id]["duplicate_of"] == ""
        assert after[r.qa_id]["first_stored_at"] == before[r.qa_id]["first_stored_at"]
    count = store.query("SELECT count() AS n, uniqExact(qa_id) AS u FROM sciqag.qa_embeddings")[0]
    assert count["n"] == count["u"] == 2 * len(QUESTIONS)


def test_a_replayed_pair_whose_question_changed_is_embedded_again(store):
    _store_batch(store, _scored("pA", QUESTIONS))
    changed = _scored("pA", UNRELATED)  # same qa_ids (same paper, indexes, prompt version), new questions
    _, decisions = _store_batch(store, changed)
    assert not any(d.reused for d in decisions)
    stored = store.query("SELECT qa_id, question FROM sciqag.qa_embeddings ORDER BY qa_id")
    assert sorted(r["question"] for r in stored) == sorted(UNRELATED)


def test_open_pairs_and_multiple_choice_items_are_compared_only_within_their_kind(store):
    _store_batch(store, _scored("pA", QUESTIONS, kind="open"))
    mcq = _scored("pB", QUESTIONS, kind="mcq")
    _store_batch(store, mcq)
    assert all(_pairs(store)[r.qa_id]["duplicate_of"] == "" for r in mcq)


@pytest.mark.parametrize("order", ["AB", "BA"])
def test_two_papers_in_one_batch_leave_one_canonical_pair_whatever_the_order(store, order):
    a, b = _scored("pA", QUESTIONS), _scored("pB", REWORDED)
    batch = list(itertools.chain.from_iterable(zip(a, b))) if order == "AB" else list(itertools.chain(*zip(b, a)))
    _store_batch(store, batch)
    rows = _pairs(store)
    for x, y in zip(a, b, strict=True):
        first, later = (x, y) if order == "AB" else (y, x)
        assert rows[first.qa_id]["duplicate_of"] == ""
        assert rows[later.qa_id]["duplicate_of"] == first.qa_id


@pytest.mark.parametrize("recheck_order", ["first-then-second", "second-then-first"])
def test_two_sink_members_deciding_at_the_same_time_leave_one_canonical_pair(store, recheck_order):
    """Both members decide before either has stored its batch (neither sees the other's pair), then both insert,
    then each rechecks, in either order: exactly one pair of each similar couple stays canonical."""
    a, b = _scored("pA", QUESTIONS), _scored("pB", REWORDED)
    member_a, member_b = _dedup(store), _dedup(store)
    views_a, views_b = [PairView.of(r) for r in a], [PairView.of(r) for r in b]
    decisions_a = member_a.decide(views_a)
    decisions_b = member_b.decide(views_b)
    assert not any(d.duplicate_of for d in decisions_a + decisions_b)  # each alone: both canonical
    for records, decisions in ((a, decisions_a), (b, decisions_b)):
        store.insert_qa_json(
            [with_decision(msgspec.json.encode(r), d) for r, d in zip(records, decisions, strict=True)]
        )
    rechecks = [(member_a, views_a, decisions_a), (member_b, views_b, decisions_b)]
    if recheck_order == "second-then-first":
        rechecks.reverse()
    for member, views, decisions in rechecks:
        member.recheck(views, decisions)
    rows = _pairs(store)
    for x, y in zip(a, b, strict=True):  # a's pairs were decided (stamped) first: they are the canonical ones
        assert rows[x.qa_id]["duplicate_of"] == ""
        assert rows[y.qa_id]["duplicate_of"] == x.qa_id
    counts = store.query("SELECT count() AS n, uniqExact(qa_id) AS u FROM sciqag.qa_pairs FINAL")[0]
    assert counts["n"] == counts["u"] == 2 * len(QUESTIONS)
