"""Parse model output into keywords and pairs, or into RACAR (or closed-book CAR) scores.

Structured output (JSON schema) is the normal path; the plain-text format of
the SciQAG paper (`Keywords: a, b` then `Q1: … A1: …`) is accepted too, for
remote models without structured output (its pairs have no evidence quotes).
Anything else raises ModelOutputError.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from schemas import RACAR_DIMENSIONS, DimensionScore, Racar

from .errors import ModelOutputError

_QA_LINE = re.compile(r"^\s*(?:\*\*)?\s*([QA])\s*(\d+)\s*(?:\*\*)?\s*[:.)]\s*(.*)$", re.IGNORECASE)
_KEYWORDS_LINE = re.compile(r"^\s*(?:\*\*)?\s*(?:keywords|ключевые слова)\s*(?:\*\*)?\s*:\s*(.*)$", re.IGNORECASE)


MIN_REASON_CHARS = 3  # a RACAR score needs a reason (the judge schema asks for 3 characters; whitespace passes it)
MAX_QUOTES = 3  # the schemas ask for 1-3 evidence quotes per answer; more are cut


@dataclass(frozen=True)
class GeneratedPairs:
    keywords: list[str]
    pairs: list[tuple[str, str]]
    # evidence[i]: the verbatim quotes the model gave for pairs[i] (0-3; none from the plain-text format)
    evidence: list[list[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.evidence and self.pairs:  # built without evidence: no quote for any pair
            object.__setattr__(self, "evidence", [[] for _ in self.pairs])
        elif len(self.evidence) != len(self.pairs):
            raise ValueError(f"{len(self.evidence)} evidence lists for {len(self.pairs)} pairs")


def _json_object(text: str) -> dict | None:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        value = json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _clean(s: object) -> str:
    return " ".join(str(s).split()) if isinstance(s, (str, int, float)) else ""


def _quotes(item: dict) -> list[str]:
    """The evidence quotes of one pair or item: a list of strings (or one string), cleaned, deduplicated, at most 3."""
    raw = item.get("evidence", item.get("quotes"))
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        return []
    quotes: list[str] = []
    for q in raw:
        q = _clean(q) if isinstance(q, str) else ""
        if q and q not in quotes:
            quotes.append(q)
    return quotes[:MAX_QUOTES]


def _from_json(obj: dict) -> GeneratedPairs:
    keywords = [_clean(k) for k in obj.get("keywords") or [] if _clean(k)]
    raw_pairs = obj.get("qa_pairs", obj.get("pairs"))
    if not isinstance(raw_pairs, list):
        raise ModelOutputError("JSON output has no 'qa_pairs' list")
    pairs, evidence = [], []
    for item in raw_pairs:
        if not isinstance(item, dict):
            continue
        q = _clean(item.get("question", item.get("q", "")))
        a = _clean(item.get("answer", item.get("a", "")))
        if q and a:
            pairs.append((q, a))
            evidence.append(_quotes(item))
    return GeneratedPairs(keywords, pairs, evidence)


def _from_plain_text(text: str) -> GeneratedPairs:
    keywords: list[str] = []
    questions: dict[int, str] = {}
    answers: dict[int, str] = {}
    current: tuple[str, int] | None = None
    for line in text.splitlines():
        if m := _KEYWORDS_LINE.match(line):
            keywords = [k.strip(" .*") for k in re.split(r"[,;]", m.group(1)) if k.strip(" .*")]
            current = None
        elif m := _QA_LINE.match(line):
            kind, n = m.group(1).upper(), int(m.group(2))
            (questions if kind == "Q" else answers)[n] = m.group(3).strip()
            current = (kind, n)
        elif current and line.strip():
            target = questions if current[0] == "Q" else answers
            target[current[1]] = f"{target[current[1]]} {line.strip()}".strip()
    pairs = [(_clean(questions[n]), _clean(answers[n])) for n in sorted(questions) if n in answers]
    return GeneratedPairs(keywords, [(q, a) for q, a in pairs if q and a])


def parse_generation(text: str) -> GeneratedPairs:
    """Keywords, pairs and each pair's evidence quotes from the generator's output; raises ModelOutputError when there
    are no pairs. `result.evidence[i]` belongs to `result.pairs[i]` ([] for the plain-text format)."""
    obj = _json_object(text)
    result = _from_json(obj) if obj is not None else _from_plain_text(text)
    if not result.pairs:
        snippet = " ".join(text.split())[:160]
        raise ModelOutputError(f"no question-answer pairs found in the model output: {snippet!r}")
    return result


def _dimension_scores(
    text: str, names: tuple[str, ...], low: int, high: int, who: str, min_reason: int = 0
) -> dict[str, DimensionScore]:
    obj = _json_object(text)
    if obj is None:
        raise ModelOutputError(f"{who} output is not JSON: {' '.join(text.split())[:160]!r}")
    dims = {}
    for name in names:
        value = obj.get(name)
        # the shape the JSON schema asks for, {"score": int, "reason": str}, and nothing looser: a bare number or a
        # score in words is what an output that escaped structured decoding looks like
        if not isinstance(value, dict) or not isinstance(value.get("reason"), str):
            raise ModelOutputError(
                f"{who} output has no {{score, reason}} object for {name!r}", kind="judge_score_invalid"
            )
        score, reason = value.get("score"), _clean(value["reason"])
        if isinstance(score, bool) or not isinstance(score, int):
            raise ModelOutputError(f"{who} output has no integer score for {name!r}", kind="judge_score_invalid")
        if not low <= score <= high:
            raise ModelOutputError(
                f"{who} score {score} for {name!r} is outside {low}..{high}", kind="judge_score_out_of_range"
            )
        if len(reason) < min_reason:  # "1," or spaces: inside a string the grammar cannot tell
            raise ModelOutputError(
                f"{who} reason for {name!r} is empty or too short: {reason!r}", kind="judge_reason_missing"
            )
        dims[name] = DimensionScore(score=score, reason=reason)
    return dims


def parse_racar(text: str) -> Racar:
    """Five 1..3 scores with reasons; raises ModelOutputError on a missing dimension or a score out of range."""
    return Racar(**_dimension_scores(text, RACAR_DIMENSIONS, 1, 3, "judge", min_reason=MIN_REASON_CHARS))


def parse_car(text: str) -> dict[str, DimensionScore]:
    """SciQAG's closed-book CAR grades: completeness, accuracy, reasonableness, each 1..5 with a reason."""
    from .prompts import CAR_DIMENSIONS

    return _dimension_scores(text, CAR_DIMENSIONS, 1, 5, "CAR judge")


@dataclass(frozen=True)
class MCQItem:
    question: str
    options: list[str]
    correct: int  # 0-based index of the correct option
    evidence: list[str] = field(default_factory=list)  # verbatim quotes supporting the correct option (0-3)


def parse_mcq(text: str) -> list[MCQItem]:
    """Multiple-choice items from the generator's JSON; items with other than four distinct options are skipped."""
    obj = _json_object(text)
    if obj is None or not isinstance(obj.get("items"), list):
        raise ModelOutputError(f"no multiple-choice items in the model output: {' '.join(text.split())[:160]!r}")
    items = []
    for raw in obj["items"]:
        if not isinstance(raw, dict):
            continue
        question = _clean(raw.get("question", ""))
        options = [_clean(o) for o in raw.get("options") or []]
        correct = raw.get("correct")
        if (
            question
            and len(options) == 4
            and all(options)
            and len({o.lower() for o in options}) == 4
            and isinstance(correct, int)
            and not isinstance(correct, bool)
            and 1 <= correct <= 4
        ):
            items.append(MCQItem(question, options, correct - 1, _quotes(raw)))
    if not items:
        raise ModelOutputError("no usable multiple-choice item (four distinct options and a correct number 1-4)")
    return items


def parse_correct_options(text: str) -> set[int]:
    """The option numbers (0-based) the judge found correct, from its JSON `correct_options`."""
    obj = _json_object(text) or {}
    values = obj.get("correct_options")
    if not isinstance(values, list):
        raise ModelOutputError("judge output has no 'correct_options' list", kind="judge_score_invalid")
    return {v - 1 for v in values if isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4}
