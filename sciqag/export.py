"""Export rows: one JSON object per scored pair, with the paper's identifiers and the five scores."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from schemas import RACAR_DIMENSIONS


def qa_export_record(row: dict[str, Any]) -> dict[str, Any]:
    """A `qa_pairs` row (as read from ClickHouse) -> the public export shape."""
    ns = row.get("numeric_support")
    return {
        "qa_id": row["qa_id"],
        "paper_id": row["paper_id"],
        "doi": row.get("doi", ""),
        "title": row.get("title", ""),
        "journal": row.get("journal", ""),
        "source": row.get("source_uri", ""),
        "kind": row.get("kind", "open"),
        "language": row.get("language", ""),
        "keywords": list(row.get("keywords") or []),
        "question": row["question"],
        "answer": row["answer"],
        "scores": {d: int(row[d]) for d in RACAR_DIMENSIONS},
        "reasons": dict(row.get("reasons") or {}),
        "numeric_support": None if ns is None else round(float(ns), 4),
        "evidence": [_evidence(e) for e in row.get("evidence") or []],
        "grounding": None if row.get("grounding") is None else round(float(row["grounding"]), 4),
        "accepted": bool(row.get("accepted")),
        # a reviewer's latest verdict, when the rows went through sciqag/verdicts.py apply_verdicts: it wins over the
        # judge's acceptance (judge_accepted); an edit replaced the generated question and answer
        **_review_fields(row),
        # the canonical pair of another paper this one near-duplicates ('' if none), and the question similarity
        "duplicate_of": row.get("duplicate_of", ""),
        "duplicate_similarity": None
        if row.get("duplicate_similarity") is None
        else round(float(row["duplicate_similarity"]), 4),
        **(
            {
                "options": list(row.get("options") or []),
                "correct_option": int(row.get("correct_option", -1)),
                "single_correct": row.get("single_correct"),
            }
            if row.get("kind") == "mcq"
            else {}
        ),
        "generator_model": row.get("generator_model", ""),
        "judge_model": row.get("judge_model", ""),
        "prompt_version": row.get("prompt_version", ""),
        "scored_at": row["scored_at"].isoformat()
        if isinstance(row.get("scored_at"), datetime)
        else row.get("scored_at"),
    }


def _review_fields(row: dict[str, Any]) -> dict[str, Any]:
    review = row.get("review")
    if "judge_accepted" not in row:  # rows not merged with the verdicts
        return {}
    out = {
        "judge_accepted": bool(row["judge_accepted"]),
        "edited": bool(row.get("edited")),
        "reviewed_by": review["reviewer"] if review else "",
        "review_verdict": review["verdict"] if review else "",
    }
    if row.get("edited"):
        out.update(generated_question=row["generated_question"], generated_answer=row["generated_answer"])
    return out


def _evidence(e) -> dict[str, Any]:
    """A stored evidence entry (a named tuple: a dict, or a plain tuple in column order) -> its export shape; offsets
    into the paper text (`paper_texts.text`, `PaperExtracted.text`), -1 when the quote was not found."""
    if not isinstance(e, dict):
        e = dict(zip(("quote", "start", "end", "ratio", "located"), e))
    return {
        "quote": e["quote"],
        "start": int(e["start"]),
        "end": int(e["end"]),
        "ratio": round(float(e["ratio"]), 4),
        "located": bool(e["located"]),
    }


def export_records(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    return (qa_export_record(r) for r in rows)


def mera_items(rows: Iterable[dict[str, Any]], *, accepted_only: bool = True) -> list:
    """Stored multiple-choice rows -> items for the MERA writer."""
    from .mera import MCQ

    return [
        MCQ(
            qa_id=r["qa_id"],
            question=r["question"],
            options=list(r["options"]),
            correct=int(r["correct_option"]),
            journal=r.get("journal", ""),
        )
        for r in rows
        if r.get("kind") == "mcq" and len(r.get("options") or []) == 4 and (r["accepted"] or not accepted_only)
    ]


def racar_means(rows: list[dict[str, Any]]) -> dict[str, float]:
    if not rows:
        return {d: float("nan") for d in RACAR_DIMENSIONS}
    return {d: sum(int(r[d]) for r in rows) / len(rows) for d in RACAR_DIMENSIONS}
