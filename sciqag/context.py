"""Fit a paper into the model's window without silent truncation.

Strategy (recorded on the QAGenerated record as `context_strategy`):
1. the whole cleaned text when it fits;
2. otherwise whole sections by priority — the opening (title/abstract),
   introduction, conclusions, results/discussion, then the rest in reading
   order — until the budget is spent, kept in reading order;
3. a section that does not fit whole is cut at a sentence boundary.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

_PRIORITY = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"abstract|аннотация|реферат",
        r"introduction|введение",
        r"conclusion|summary|заключение|выводы",
        r"results|discussion|результаты|обсуждение",
    )
]
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _priority(index: int, title: str) -> int:
    if index == 0:
        return 0  # the opening: title, authors, abstract
    for rank, pattern in enumerate(_PRIORITY, start=1):
        if pattern.search(title):
            return rank
    return len(_PRIORITY) + 1


def _cut_to_sentences(text: str, budget: int, count_tokens: Callable[[str], int]) -> str:
    kept = ""
    for sentence in _SENTENCE_END.split(text):
        candidate = f"{kept} {sentence}" if kept else sentence
        if count_tokens(candidate) > budget:
            break
        kept = candidate
    return kept


PROMPT_OVERHEAD_TOKENS = 600  # instructions + chat template around the paper text


def context_budget(max_model_len: int, output_tokens: int, max_context_tokens: int = 0) -> int:
    """Paper tokens that fit in a window of `max_model_len` beside the prompt and an answer of `output_tokens`
    (or `max_context_tokens` when set)."""
    return max_context_tokens or (max_model_len - output_tokens - PROMPT_OVERHEAD_TOKENS)


def fit_text(
    text: str,
    sections: Sequence[tuple[str, int, int]],
    max_tokens: int,
    count_tokens: Callable[[str], int],
) -> tuple[str, str]:
    """Return (text that fits in `max_tokens`, a description of what was done)."""
    total = count_tokens(text)
    if total <= max_tokens:
        return text, "full"
    spans = list(sections) or [("", 0, len(text))]
    order = sorted(range(len(spans)), key=lambda i: (_priority(i, spans[i][0]), i))
    chosen: dict[int, str] = {}
    used = 0
    for i in order:
        body = text[spans[i][1] : spans[i][2]].strip()
        if not body:
            continue
        cost = count_tokens(body)
        if used + cost <= max_tokens:
            chosen[i] = body
            used += cost
        elif max_tokens - used > 50 or not chosen:  # a sliver is not worth a cut, unless it is all we have
            part = _cut_to_sentences(body, max_tokens - used, count_tokens)
            if part:
                chosen[i] = part
                used += count_tokens(part)
    fitted = "\n".join(chosen[i] for i in sorted(chosen))
    dropped = [spans[i][0] or "(opening)" for i in range(len(spans)) if i not in chosen]
    strategy = f"sections: kept {len(chosen)} of {len(spans)} sections, ~{used} of {total} tokens" + (
        f"; dropped: {', '.join(dropped[:8])}{'…' if len(dropped) > 8 else ''}" if dropped else ""
    )
    return fitted, strategy
