"""Near-duplicate questions across papers (issue 19): what is embedded, the threshold, and the decision rule.

The rule, for items in storage order: an item is a duplicate iff some EARLIER item of ANOTHER paper that is itself
canonical has cosine similarity >= the threshold; `duplicate_of` is the most similar such item (the earliest of
equals). So the first stored occurrence stays canonical, a paper never duplicates itself (a replay or re-delivery
stays canonical), and a chain a -> b -> c cannot form: c can only point at a canonical item. Open pairs and
multiple-choice items are compared only within their own kind (the caller keeps them apart).

`cross_paper_duplicates` is that rule by exact brute force: the reference the stream's vector-index path is
tested against, and what the SciQAG release check uses. The calibration:
`python -m benchmarks.near_duplicate_threshold` (tests/data/question_pairs.jsonl, the SciQAG release records) and
BENCHMARKS.md, 2026-12-01 (2).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

# Cosine similarity of all-MiniLM-L6-v2 question embeddings (sciqag.embeddings.embed, unit vectors). Chosen for
# precision (a false duplicate removes a good question from a dataset), measured 2026-12-01 on the 111 labelled
# pairs of tests/data/question_pairs.jsonl and the 400 questions of the 40 SciQAG release records:
# - English, 25 paraphrases vs 30 hard non-paraphrases (one material, quantity or condition swapped; cause and
#   effect reversed): at 0.92 precision 0.59, recall 0.64 (0.70 / 0.64 with the specifics guard below). Raising the
#   threshold buys no precision: the hardest non-paraphrases sit ABOVE most paraphrases ("How does A affect B?" vs
#   "How does B affect A?" 0.994, "advantages" vs "disadvantages" 0.973, CdSe vs CdS 0.972), so 0.95 keeps 9 of
#   the 11 false duplicates of 0.92 (6 of 7 with the guard) and halves the recall (0.32); 0.92 leaves out what
#   0.90-0.91 add (a platinum vs a carbon counter electrode, 0.908). Below 0.90 the false duplicates grow faster
#   than the recall (0.85: 17 of 30 flagged, recall 0.76).
# - SciQAG release, 400 questions of 40 distinct analytical-chemistry papers: at 0.92 one question is a
#   cross-paper duplicate ("What were the key findings of the study?" after "... of this study?", 0.925); the next
#   pairs (0.87 LLE drawbacks; 0.84 "advantage of SPE" vs "what is SPE and how is it used") are partial or not
#   duplicates, which is where a threshold of 0.85 would start removing good questions.
# - Russian: the model is English (a Russian question becomes sub-word pieces): paraphrases 0.76-0.96, hard
#   non-paraphrases 0.77-0.98 (higher on average), so no threshold separates them; see RUSSIAN_THRESHOLD.
# - English vs Russian: the same question in the two languages scores -0.09..0.30: never a duplicate.
DEFAULT_THRESHOLD = 0.92

# Russian questions: only near-verbatim repeats are duplicates. The labelled Russian hard non-paraphrases reach
# 0.979 (at 0.92, 9 of 15 are false duplicates against 3 of 13 paraphrases found); a copy of a question scores
# ~1.0 (the tokenizer drops case and accents, so ё/е and capitals do not count; 0.975 without its question mark).
# A multilingual model (the embeddings-model setting) would need its own calibration with the same benchmark.
RUSSIAN_THRESHOLD = 0.99
LANGUAGE_THRESHOLDS = {"ru": RUSSIAN_THRESHOLD}


class Duplicate(NamedTuple):
    of: int  # index of the canonical earlier item of another paper
    similarity: float


def threshold_for(language: str, threshold: float = DEFAULT_THRESHOLD) -> float:
    """The threshold for a question in `language`: the configured one, raised to the language's floor where the
    model does not separate paraphrases from hard non-paraphrases (Russian)."""
    return max(threshold, LANGUAGE_THRESHOLDS.get(language, threshold))


def question_text_for_embedding(question: str, options: list[str] | None = None) -> str:
    """What is embedded for a question. A multiple-choice item is its stem plus its options, sorted (their order is
    the generator's shuffle): generic stems ("Which of the following statements is correct?") are identical across
    papers, 1.000 stem to stem, and only the options say what is asked (0.39-0.70 with them in the labelled set),
    while the same item with its options reworded or reshuffled stays at 0.92-0.98."""
    text = " ".join(question.split())
    if options:
        text += "\n" + "\n".join(sorted(" ".join(o.split()) for o in options))
    return text


_NUMBER = re.compile(r"(?<![\w.,])[-+−]?\d+(?:[.,]\d+)?")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]*")


def question_specifics(question: str) -> frozenset[str]:
    """The numbers and chemical formulas of a question (MnO2, GaAs, CdSe, Sn-Pb, 7.4, 10): what a sentence embedding
    blurs (CdSe vs CdS 0.972, "at pH 7.4" vs "at pH 5.0" 0.957) and what makes two questions different questions.
    Formulas: Latin tokens with a letter and a digit, or mixed case with two capitals; all-capital acronyms (PMMA,
    GC) are left out, so "GC" vs "gas chromatography" is not told apart. For a multiple-choice item, the stem only
    (the options' values are its distractors)."""
    found = {n.replace(",", ".").replace("−", "-").lstrip("+") for n in _NUMBER.findall(question)}
    for token in _TOKEN.findall(question):
        token = token.strip("-")
        has_digit, has_alpha = any(c.isdigit() for c in token), any(c.isalpha() for c in token)
        capitals = sum(c.isupper() for c in token)
        if (has_digit and has_alpha) or (capitals >= 2 and any(c.islower() for c in token)):
            found.add(token)
    return frozenset(found)


def cross_paper_duplicates(
    paper_ids: Sequence[str],
    vectors: np.ndarray,
    threshold: float | Sequence[float] = DEFAULT_THRESHOLD,
    *,
    specifics: Sequence[frozenset[str]] | None = None,
    block: int = 256,
) -> list[Duplicate | None]:
    """For each item (in storage order): Duplicate(index of its canonical earlier item of another paper,
    similarity), or None when it is canonical. `vectors`: one row per item (normalised here, so cosine);
    `threshold`: one for all, or one per item (e.g. `threshold_for` its language). With `specifics` (one set per
    item, `question_specifics`), an earlier item is a candidate only if its specifics are the same. Exact:
    O(n^2) dot products, computed `block` rows at a time."""
    n = len(paper_ids)
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim != 2 or v.shape[0] != n:
        raise ValueError(f"vectors must have one row per item: {v.shape} for {n} items")
    if specifics is not None and len(specifics) != n:
        raise ValueError(f"specifics must have one set per item: {len(specifics)} for {n} items")
    limits = np.broadcast_to(np.asarray(threshold, dtype=np.float32), (n,))
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    v = v / np.where(norms == 0, 1, norms)
    paper = np.unique(np.asarray(paper_ids, dtype=object), return_inverse=True)[1] if n else np.zeros(0, int)
    canonical = np.zeros(n, dtype=bool)
    out: list[Duplicate | None] = []
    for start in range(0, n, block):
        stop = min(n, start + block)
        sims = v[start:stop] @ v[:stop].T
        for i in range(start, stop):
            s = sims[i - start, :i]
            ok = canonical[:i] & (paper[:i] != paper[i]) & (s >= limits[i])
            if specifics is not None and ok.any():
                for j in np.flatnonzero(ok):
                    ok[j] = specifics[j] == specifics[i]
            if ok.any():
                j = int(np.argmax(np.where(ok, s, -np.inf)))
                out.append(Duplicate(j, float(s[j])))
            else:
                canonical[i] = True
                out.append(None)
    return out
