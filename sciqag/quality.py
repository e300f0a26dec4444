"""Quality measures of SciQAG: numeric support of answers, question diversity, answer coverage."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Embed = Callable[[list[str]], np.ndarray]  # texts -> unit-length row vectors

# numbers like 12, 3.5, 3,5 (Russian decimal comma), 1e-3, 10^5, 25%; years too
_NUMBER = re.compile(r"(?<![\w.])[-+−]?\d+(?:[.,]\d+)?(?:\s?[eE][-+−]?\d+)?")


def _norm(number: str) -> str:
    return number.replace("−", "-").replace(",", ".").lstrip("+")


def numbers_in(text: str) -> list[str]:
    return [_norm(m.group(0)) for m in _NUMBER.finditer(text)]


def numeric_support(answer: str, paper_text: str) -> float | None:
    """Share of the numeric values in `answer` that also occur in `paper_text`.

    None when the answer has no numbers (nothing to support). SciQAG reports
    99.15% of numbers in answers appearing in the source.
    """
    found = numbers_in(answer)
    if not found:
        return None
    source = set(numbers_in(paper_text))
    # "-3" in the answer may be written "3" in a range like "2-3" in the paper
    hits = sum(1 for n in found if n in source or n.lstrip("-") in source)
    return hits / len(found)


SIMILAR_PAIR_THRESHOLD = 0.7  # SciQAG flagged question pairs above 0.7 similarity
DISSIMILAR_THRESHOLD = 0.3  # SciQAG: 87% of question pairs below 0.3
COVERAGE_CHUNKS = 10
COVERAGE_TOP_SHARE = 0.15

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-ZА-ЯЁ0-9(\[])")


@dataclass(frozen=True)
class Diversity:
    mean_similarity: float  # mean pairwise cosine similarity of a paper's questions
    share_below_0_3: float  # share of question pairs below 0.3
    pairs_over_0_7: int  # question pairs above 0.7 (near duplicates)


def question_diversity(questions: list[str], embed: Embed) -> Diversity | None:
    if len(questions) < 2:
        return None
    vectors = embed(questions)
    sims = vectors @ vectors.T
    upper = sims[np.triu_indices(len(questions), k=1)]
    return Diversity(
        mean_similarity=float(upper.mean()),
        share_below_0_3=float((upper < DISSIMILAR_THRESHOLD).mean()),
        pairs_over_0_7=int((upper > SIMILAR_PAIR_THRESHOLD).sum()),
    )


def sentences(text: str) -> list[str]:
    parts = []
    for para in text.split("\n"):
        parts.extend(s.strip() for s in _SENTENCE.split(para) if len(s.strip()) > 20)
    return parts


def answer_coverage(answers: list[str], paper_text: str, embed: Embed, *, per_answer: bool = False) -> float | None:
    """SciQAG's coverage rate: split the paper into 10 equal chunks (by sentence position), take the top 15%
    of paper sentences most similar to the answers, coverage = share of chunks holding one of them.

    Default (joint): a sentence's score is its best similarity to any answer, and the top 15% of sentences
    by that score are taken. On the 40 SciQAG release records this gives 78.3% against the paper's 78.6%.
    `per_answer=True` takes the top 15% for each answer separately; with 10 answers that hits nearly every
    chunk of every paper (99.3% on the same records), so it cannot be what the paper measured.
    """
    sents = sentences(paper_text)
    if not answers or len(sents) < COVERAGE_CHUNKS:
        return None
    similarity = embed(answers) @ embed(sents).T  # answers x sentences
    top = max(1, math.ceil(COVERAGE_TOP_SHARE * len(sents)))
    rows = similarity if per_answer else similarity.max(axis=0, keepdims=True)
    hit_chunks = {int(i) * COVERAGE_CHUNKS // len(sents) for row in rows for i in np.argsort(-row)[:top]}
    return len(hit_chunks) / COVERAGE_CHUNKS
