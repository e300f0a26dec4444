"""The paper text of a pair's page cut into pieces: where each evidence span and each section begins and ends, so
the template can highlight the spans (escaped piece by piece, never as markup) and say which section each falls in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

EVIDENCE_FIELDS = ("quote", "start", "end", "ratio", "located")
SECTION_FIELDS = ("title", "start", "end")


def _as_dict(value: Any, names: Sequence[str]) -> dict[str, Any]:
    """A stored named tuple (a dict, or a plain tuple in column order) as a dict."""
    return dict(value) if isinstance(value, dict) else dict(zip(names, value))


@dataclass
class Evidence:
    number: int  # 1-based, in the pair's order
    quote: str
    start: int
    end: int
    ratio: float
    located: bool
    section: str = ""  # the title of the section its start falls in ('' if none or not located)
    shown: bool = False  # located inside the stored text, so highlighted


@dataclass
class Piece:
    text: str
    marks: list[int] = field(default_factory=list)  # the evidence numbers covering it
    section: str | None = None  # a section starts here: its title
    starts: list[int] = field(default_factory=list)  # the evidence numbers whose span starts here


def evidence_of(stored: Sequence[Any]) -> list[Evidence]:
    out = []
    for i, e in enumerate(stored or [], 1):
        d = _as_dict(e, EVIDENCE_FIELDS)
        out.append(Evidence(i, d["quote"], int(d["start"]), int(d["end"]), float(d["ratio"]), bool(d["located"])))
    return out


def sections_of(stored: Sequence[Any]) -> list[dict[str, Any]]:
    return [_as_dict(s, SECTION_FIELDS) for s in stored or []]


def section_at(sections: Sequence[dict[str, Any]], offset: int) -> str:
    """The title of the section [start, end) that holds this offset ('' if none)."""
    for s in sections:
        if int(s["start"]) <= offset < int(s["end"]):
            return s["title"] or "(untitled section)"
    return ""


def pieces(text: str, evidence: list[Evidence], sections: Sequence[dict[str, Any]]) -> list[Piece]:
    """Cut the text at every evidence span's and section's start and end; each piece knows the spans covering it and
    whether a section starts there. Spans outside the text or not located are not shown (their `shown` stays
    False); overlapping spans are fine."""
    n = len(text)
    spans = []
    for e in evidence:
        e.section = section_at(sections, e.start) if e.located else ""
        if e.located and 0 <= e.start < e.end <= n:
            e.shown = True
            spans.append(e)
    starts = {int(s["start"]): s["title"] or "(untitled section)" for s in sections if 0 <= int(s["start"]) < n}
    cuts = sorted({0, n, *starts, *(e.start for e in spans), *(e.end for e in spans)})
    out = []
    for a, b in zip(cuts, cuts[1:]):
        marks = [e.number for e in spans if e.start <= a and b <= e.end]
        out.append(Piece(text[a:b], marks, starts.get(a), [e.number for e in spans if e.start == a]))
    return out
