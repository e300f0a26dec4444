"""Rule-based pre-filter before judging.

SciQAG dropped pairs that mention "this paper"/"this study"; we also drop pairs
that point at figures or tables, name the authors, have a trivial answer, or
repeat an earlier question. Every drop is counted by reason. Whether a pair is a
good question is left to the RACAR judge: a rule that dropped statements without
a question form emptied whole papers with small models.
"""

from __future__ import annotations

import re
from collections import Counter

_RULES: list[tuple[str, re.Pattern]] = [
    (
        "mentions_the_paper",
        re.compile(
            r"\b(this|the present|our|the current)\s+(paper|study|article|work|research|manuscript|report)\b|"
            r"\bin\s+this\s+(paper|study|article|work)\b|"
            r"(в\s+)?(данн|настоящ|эт)(ой|ом|ая|ую|ом)\s+(стать|работ|исследовани|диссертаци)",
            re.IGNORECASE,
        ),
    ),
    ("mentions_the_authors", re.compile(r"\b(the|these)\s+authors?\b|\bавтор(ы|ов|ами|ам)?\b", re.IGNORECASE)),
    (
        "refers_to_figure_or_table",
        re.compile(
            r"\b(fig\.?|figure|table|scheme|eq\.|equation)\s*\(?[0-9IVX]+|\b(рис\.?|рисун\w*|таблиц\w*|схем\w*)\s*\d+",
            re.IGNORECASE,
        ),
    ),
]


def drop_reason(question: str, answer: str, seen_questions: set[str]) -> str | None:
    text = f"{question} {answer}"
    for reason, pattern in _RULES:
        if pattern.search(text):
            return reason
    if answer.strip().lower().rstrip(".") in {"yes", "no", "да", "нет", "n/a", "none"}:
        return "trivial_answer"
    key = " ".join(question.lower().split())
    if key in seen_questions:
        return "duplicate_question"
    seen_questions.add(key)
    return None


def prefilter(pairs: list[tuple[str, str]]) -> tuple[list[int], Counter[str]]:
    """Indices of the pairs to keep, and how many were dropped for each reason."""
    kept: list[int] = []
    dropped: Counter[str] = Counter()
    seen: set[str] = set()
    for i, (q, a) in enumerate(pairs):
        reason = drop_reason(q, a, seen)
        if reason:
            dropped[reason] += 1
        else:
            kept.append(i)
    return kept, dropped
