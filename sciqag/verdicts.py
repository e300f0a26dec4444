"""Reviewers' verdicts on pairs (issue 23): what a verdict is, how it overrides the judge, and how often the judge
agreed with the reviewers.

A verdict is `accept`, `reject` (with a reason) or `edit` (accepted, with the reviewer's question and answer in place
of the generated ones). Verdicts are appended, never changed; the latest of a pair is the one that counts. Readers
(export, dataset build) honour it over the judge's acceptance: a rejected pair is left out, an accepted or edited one
is in even when the judge rejected it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

VERDICTS = ("accept", "reject", "edit")
# the short list a reviewer picks a rejection's reason from (free text is allowed too)
REJECT_REASONS: dict[str, str] = {
    "wrong": "the answer is wrong or not supported by the paper",
    "not-self-contained": "the question needs the paper (refers to it, its figures or tables)",
    "trivial": "trivial or too vague to be useful",
    "incomplete": "the answer is incomplete",
    "off-topic": "not about the paper's science",
    "garbled": "garbled text or bad extraction",
}
MAX_TEXT_CHARS = 20_000  # an edited question or answer, a free-text reason
MAX_REVIEWER_CHARS = 100


def human_accepts(verdict: str) -> bool:
    """Whether a verdict puts the pair in (accept, edit) or out (reject)."""
    if verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}; choose from {', '.join(VERDICTS)}")
    return verdict != "reject"


def check_verdict(verdict: str, reviewer: str, reason: str = "", question: str = "", answer: str = "") -> None:
    """Raise ValueError unless this is a verdict that can be stored: a named reviewer, a reason for a rejection,
    a question and an answer for an edit."""
    human_accepts(verdict)
    if not reviewer.strip():
        raise ValueError("a verdict needs the reviewer's name")
    if len(reviewer) > MAX_REVIEWER_CHARS:
        raise ValueError(f"the reviewer's name is longer than {MAX_REVIEWER_CHARS} characters")
    if verdict == "reject" and not reason.strip():
        raise ValueError("a rejection needs a reason (one of the list, or your own words)")
    if verdict == "edit" and not (question.strip() and answer.strip()):
        raise ValueError("an edit needs both the question and the answer")
    if max(len(reason), len(question), len(answer)) > MAX_TEXT_CHARS:
        raise ValueError(f"the text is longer than {MAX_TEXT_CHARS} characters")


def reason_text(reason: str) -> str:
    """A stored reason as a reviewer reads it: the list's wording for its codes, free text as it is."""
    return REJECT_REASONS.get(reason, reason)


def apply_verdicts(rows: Iterable[dict[str, Any]], verdicts: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The rows (qa_pairs rows, with one judge's `accepted`) as the reviewers left them: each reviewed pair's latest
    verdict (`verdicts`: qa_id -> {verdict, reviewer, reason, edited_question, edited_answer, decided_at}) wins over
    the judge. Rejected pairs are left out; accepted and edited ones are in with `accepted` True; an edit replaces the
    question and answer (the generated ones kept as `generated_question`/`generated_answer`). Every row gets
    `judge_accepted` (the judge's decision), `edited`, and `review` (None when the pair was not reviewed)."""
    out = []
    for row in rows:
        v = verdicts.get(row["qa_id"])
        merged = {**row, "judge_accepted": bool(row.get("accepted")), "edited": False, "review": None}
        if v is not None and v.get("verdict"):
            if not human_accepts(v["verdict"]):
                continue
            merged["accepted"] = True
            merged["review"] = {
                "verdict": v["verdict"],
                "reviewer": v["reviewer"],
                "reason": v.get("reason", ""),
                "decided_at": v.get("decided_at"),
            }
            if v["verdict"] == "edit":
                merged.update(
                    generated_question=row["question"],
                    generated_answer=row["answer"],
                    question=v["edited_question"],
                    answer=v["edited_answer"],
                    edited=True,
                )
        out.append(merged)
    return out


def rejected_by_reviewers(rows: Iterable[dict[str, Any]], verdicts: Mapping[str, Mapping[str, Any]]) -> int:
    """How many of these pairs a reviewer's latest verdict rejected."""
    return sum(1 for r in rows if (v := verdicts.get(r["qa_id"])) and v.get("verdict") == "reject")


@dataclass(frozen=True)
class Agreement:
    """The judge's acceptance against the reviewers' latest verdicts, on the pairs both decided."""

    pairs: int  # reviewed pairs the judge scored
    agreed: int
    judge_only: int  # the judge accepted, the reviewer rejected
    reviewer_only: int  # the reviewer accepted (or edited), the judge rejected
    kappa: float | None  # Cohen's kappa of the two accept/reject decisions; None when it is undefined

    @property
    def share(self) -> float:
        return self.agreed / self.pairs if self.pairs else float("nan")


def judge_agreement(rows: Iterable[dict[str, Any]], verdicts: Mapping[str, Mapping[str, Any]]) -> Agreement:
    """How often the judge's acceptance (`accepted` of the rows, one judge's) agreed with the reviewers'."""
    from .judges import _kappa

    judge, human = [], []
    for r in rows:
        v = verdicts.get(r["qa_id"])
        if v is None or not v.get("verdict"):
            continue
        judge.append(int(bool(r["accepted"])))
        human.append(int(human_accepts(v["verdict"])))
    agreed = sum(1 for a, b in zip(judge, human) if a == b)
    return Agreement(
        pairs=len(judge),
        agreed=agreed,
        judge_only=sum(1 for a, b in zip(judge, human) if a and not b),
        reviewer_only=sum(1 for a, b in zip(judge, human) if b and not a),
        kappa=_kappa(judge, human, None) if judge else None,
    )


def format_agreement(a: Agreement, judge: str) -> str:
    if not a.pairs:
        return "reviewers: no reviewed pairs yet (`sciqag review`)"
    kappa = "n/a" if a.kappa is None else f"{a.kappa:.3f}"
    return (
        f"reviewers vs judge {judge or 'live'}: {a.pairs} reviewed pairs, acceptance agreed on {a.agreed} "
        f"({a.share:.1%}), Cohen's kappa {kappa}; judge accepted / reviewer rejected {a.judge_only}, "
        f"reviewer accepted / judge rejected {a.reviewer_only}"
    )
