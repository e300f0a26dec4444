"""Near-duplicate questions (issue 19): the brute-force rule on vectors made for each case, and the calibrated
threshold on the labelled pairs of tests/data/question_pairs.jsonl with the bundled all-MiniLM-L6-v2."""

from __future__ import annotations

import numpy as np
import pytest

from sciqag.near_duplicates import (
    DEFAULT_THRESHOLD,
    RUSSIAN_THRESHOLD,
    Duplicate,
    cross_paper_duplicates,
    question_specifics,
    question_text_for_embedding,
    threshold_for,
)


def unit(*angles_deg: float) -> np.ndarray:
    """Unit vectors in a plane at these angles: cos(angle difference) is their similarity."""
    a = np.radians(angles_deg)
    return np.stack([np.cos(a), np.sin(a), np.zeros_like(a)], axis=1).astype(np.float32)


def cos(deg: float) -> float:
    return float(np.cos(np.radians(deg)))


def test_a_paper_is_never_a_duplicate_of_itself():
    same = unit(0, 0, 0)
    assert cross_paper_duplicates(["p", "p", "p"], same, 0.9) == [None, None, None]
    # a replay of paper p after q: p's second copy finds q's items only if q came first and is canonical
    out = cross_paper_duplicates(["p", "q", "p"], unit(0, 0, 0), 0.9)
    assert out[0] is None and out[1] == Duplicate(0, pytest.approx(1.0)) and out[2] is None


def test_the_first_stored_occurrence_stays_canonical_and_order_decides():
    vectors = unit(0, 5)  # similarity cos 5° ~ 0.996
    assert cross_paper_duplicates(["a", "b"], vectors, 0.99) == [None, Duplicate(0, pytest.approx(cos(5)))]
    # the same two items stored the other way round: the other one is canonical
    assert cross_paper_duplicates(["b", "a"], vectors[::-1], 0.99) == [None, Duplicate(0, pytest.approx(cos(5)))]


def test_threshold_is_inclusive_and_below_it_nothing_is_a_duplicate():
    vectors = np.array([[1, 0, 0], [0.6, 0.8, 0]], dtype=np.float32)  # similarity exactly 0.6 in float32
    assert cross_paper_duplicates(["a", "b"], vectors, 0.6) == [None, Duplicate(0, pytest.approx(0.6))]
    assert cross_paper_duplicates(["a", "b"], vectors, 0.6001) == [None, None]


def test_chains_point_to_the_canonical_item():
    # a=0°, b=8°, c=16°, d=4°, threshold at 10°: b is a duplicate of a; c is close to b only, and b is not
    # canonical, so c is canonical (no chain c -> b -> a); d is close to a and b and points at a
    out = cross_paper_duplicates(["a", "b", "c", "d"], unit(0, 8, 16, 4), cos(10))
    assert out == [None, Duplicate(0, pytest.approx(cos(8))), None, Duplicate(0, pytest.approx(cos(4)))]
    # stored as a, c, b: c is canonical, and b (9° from a, 7° from c) points at the more similar c
    out = cross_paper_duplicates(["a", "c", "b"], unit(0, 16, 9), cos(10))
    assert out == [None, None, Duplicate(1, pytest.approx(cos(7)))]


def test_the_most_similar_canonical_item_of_another_paper_wins_and_ties_go_to_the_earliest():
    out = cross_paper_duplicates(["a", "b", "c", "d"], unit(0, 40, 2, 1), cos(5))
    assert out[:3] == [None, None, Duplicate(0, pytest.approx(cos(2)))]
    assert out[3] == Duplicate(0, pytest.approx(cos(1)))  # a at 1°; c (1° too) is a duplicate, not a candidate
    # two canonical items of paper a with the same vector (a paper never duplicates itself): the earliest wins
    tie = cross_paper_duplicates(["a", "a", "c"], unit(10, 10, 20), cos(11))
    assert tie == [None, None, Duplicate(0, pytest.approx(cos(10)))]


def test_items_of_its_own_paper_are_not_candidates_even_when_closer():
    # item 2 (paper b) is 2° from item 1 of its own paper and 28° from a: canonical
    assert cross_paper_duplicates(["a", "b", "b"], unit(0, 30, 28), cos(5)) == [None, None, None]
    # item 2 is 1° from its own paper's item 1 and 5° from a: a duplicate of a
    out = cross_paper_duplicates(["a", "b", "b"], unit(0, 6, 5), cos(5.5))
    assert out == [None, None, Duplicate(0, pytest.approx(cos(5)))]
    assert cross_paper_duplicates(["b", "b"], unit(30, 31), cos(5)) == [None, None]


def test_vectors_are_compared_as_cosine_and_shapes_are_checked():
    vectors = unit(0, 3) * np.array([[2.0], [0.5]], dtype=np.float32)
    assert cross_paper_duplicates(["a", "b"], vectors, 0.99)[1] == Duplicate(0, pytest.approx(cos(3), abs=1e-6))
    assert cross_paper_duplicates([], np.zeros((0, 3), dtype=np.float32), 0.9) == []
    with pytest.raises(ValueError):
        cross_paper_duplicates(["a"], unit(0, 1), 0.9)


def test_thresholds_per_item_and_blocks_give_the_brute_force_answer():
    rng = np.random.default_rng(19)
    base = rng.normal(size=(40, 16)).astype(np.float32)
    vectors = np.concatenate([base, base + rng.normal(scale=0.05, size=base.shape).astype(np.float32)])
    order = rng.permutation(len(vectors))
    vectors, papers = vectors[order], [f"p{i % 7}" for i in order]
    whole = cross_paper_duplicates(papers, vectors, 0.95, block=len(papers))
    assert cross_paper_duplicates(papers, vectors, 0.95, block=3) == whole
    assert sum(d is not None for d in whole) > 10
    for i, d in enumerate(whole):  # every duplicate points at an earlier canonical item of another paper
        if d is not None:
            assert d.of < i and whole[d.of] is None and papers[d.of] != papers[i] and d.similarity >= 0.95
    strict = cross_paper_duplicates(papers, vectors, [1.01] * len(papers))
    assert strict == [None] * len(papers)


def test_the_specifics_guard_keeps_apart_questions_on_other_materials_and_values():
    assert question_specifics("What is the band gap of GaN?") == {"GaN"}
    assert question_specifics("Specific capacitance of MnO2 at 1 A/g, pH 7,4 and 25 °C?") == {"MnO2", "1", "7.4", "25"}
    assert question_specifics("What is the main advantage of combining GC and MS?") == frozenset()
    assert question_specifics("Какова температура плавления припоя Sn-Ag-Cu?") == {"Sn-Ag-Cu"}
    keys = [question_specifics(q) for q in ("Quantum yield of CdSe dots?", "Quantum yield of CdS dots?")]
    vectors = unit(0, 1)
    assert cross_paper_duplicates(["a", "b"], vectors, 0.99)[1] is not None
    assert cross_paper_duplicates(["a", "b"], vectors, 0.99, specifics=keys) == [None, None]


def test_what_is_embedded():
    assert question_text_for_embedding("  What is\nthe band gap of GaN? ") == "What is the band gap of GaN?"
    # the options' order is the generator's shuffle: it does not change the text
    a = question_text_for_embedding("Which value?", ["3.4 eV", "1.1  eV", "5.5 eV", "1.4 eV"])
    b = question_text_for_embedding("Which value?", ["1.4 eV", "5.5 eV", "3.4 eV", "1.1 eV"])
    assert a == b == "Which value?\n1.1 eV\n1.4 eV\n3.4 eV\n5.5 eV"
    assert question_text_for_embedding("Q?", []) == "Q?"


def test_language_floor():
    assert threshold_for("en") == DEFAULT_THRESHOLD
    assert threshold_for("ru") == RUSSIAN_THRESHOLD > DEFAULT_THRESHOLD
    assert threshold_for("ru", 0.995) == 0.995 and threshold_for("en", 0.8) == 0.8


# --- the calibration, measured with the bundled model (figures of 2026-12-01 minus a margin)


@pytest.fixture(scope="module")
def scored():
    pytest.importorskip("sentence_transformers")
    from benchmarks.near_duplicate_threshold import load_pairs, score_pairs

    return score_pairs(load_pairs())


def test_the_labelled_set_has_every_group(scored):
    from benchmarks.near_duplicate_threshold import group

    for lang, least in (("en", 20), ("ru", 10), ("en-ru", 8)):
        items = group(scored, lang)
        assert sum(s.paraphrase for s in items) >= least and sum(not s.paraphrase for s in items) >= 4


def test_english_at_the_default_threshold(scored):
    """Measured at 0.92: precision 0.59, recall 0.64, 19 of 30 hard non-paraphrases below (0.70 / 0.64 / 23 of 30
    with the specifics guard). Precision 0.9 is out of reach on these pairs at any threshold: the hardest
    non-paraphrases (cause and effect reversed, 0.994) sit above most paraphrases. A threshold of 0.85 leaves 13 of
    30 below, one of 0.95 finds 8 of 25 paraphrases: both fail here."""
    from benchmarks.near_duplicate_threshold import confusion, group

    en = group(scored, "en")
    plain, guarded = confusion(en, DEFAULT_THRESHOLD), confusion(en, DEFAULT_THRESHOLD, guard=True)
    assert plain.precision >= 0.5 and guarded.precision >= 0.6
    assert plain.recall >= 0.5
    assert plain.negatives_below >= 0.55 and guarded.negatives_below >= 0.7
    paraphrases = [s.similarity for s in en if s.paraphrase]
    assert np.median(paraphrases) >= DEFAULT_THRESHOLD  # measured 0.938


def test_multiple_choice_items_need_their_options(scored):
    """Generic stems are identical across papers (1.000): with the options no item pair is a false duplicate
    (measured: 0 of 7, stem alone 6 of 7) and 4 of 5 paraphrased items are still found."""
    from benchmarks.near_duplicate_threshold import confusion

    mcq = [s for s in scored if s.kind == "mcq"]
    with_options, stem = confusion(mcq, DEFAULT_THRESHOLD), confusion(mcq, DEFAULT_THRESHOLD, stem_only=True)
    assert with_options.fp == 0 and stem.fp >= 4
    assert with_options.tp >= 3


def test_russian_and_across_languages(scored):
    """all-MiniLM-L6-v2 is English: Russian hard non-paraphrases score higher than Russian paraphrases (medians
    0.933 vs 0.884), so Russian questions are duplicates only near-verbatim (RUSSIAN_THRESHOLD); a question and its
    translation score at most 0.297, never a duplicate."""
    from benchmarks.near_duplicate_threshold import group

    ru = group(scored, "ru")
    assert not [s for s in ru if not s.paraphrase and s.similarity >= RUSSIAN_THRESHOLD]
    assert np.median([s.similarity for s in ru if not s.paraphrase]) > np.median(
        [s.similarity for s in ru if s.paraphrase]
    )
    assert max(s.similarity for s in group(scored, "en-ru")) < 0.5
