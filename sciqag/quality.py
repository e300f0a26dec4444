"""Quality measures of SciQAG: numeric support of answers."""
from __future__ import annotations

import re

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
