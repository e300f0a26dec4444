"""Calibration of the near-duplicate threshold (issue 19): all-MiniLM-L6-v2 question similarity on a labelled set
and on the SciQAG release records.

- Labelled set: tests/data/question_pairs.jsonl, pairs of science questions written for the tests (paraphrases;
  hard non-paraphrases: one material, quantity or condition swapped, cause and effect reversed), in English, in
  Russian and English-Russian (the same question in both languages), open questions and multiple-choice items.
  Per group: the similarity distributions of paraphrases and non-paraphrases, precision / recall / F1 at thresholds
  0.80..0.98, with and without the specifics guard (sciqag.near_duplicates.question_specifics); for the
  multiple-choice items, the stem alone against the stem with its options.
- SciQAG release: the 400 authors' questions of the 40 release records, in file order, through
  `cross_paper_duplicates` at the chosen threshold: how many are near-duplicates across papers, examples, and the
  distribution of each question's highest similarity to a question of another paper.

    .venv/bin/python -m benchmarks --only near_duplicates  # or: python -m benchmarks.near_duplicate_threshold
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sciqag.near_duplicates import (
    DEFAULT_THRESHOLD,
    RUSSIAN_THRESHOLD,
    cross_paper_duplicates,
    question_specifics,
    question_text_for_embedding,
)

from .common import ROOT, SHARED, Row, format_table

PAIRS = ROOT / "tests" / "data" / "question_pairs.jsonl"
RELEASE = SHARED / "sciqag" / "papers_dev.jsonl"
THRESHOLDS = tuple(round(0.80 + 0.01 * i, 2) for i in range(19))  # 0.80 .. 0.98
GROUPS = ("en", "ru", "en-ru")


@dataclass(frozen=True)
class Scored:
    lang: str
    kind: str
    paraphrase: bool
    a: str
    b: str
    similarity: float  # of the texts as embedded (MCQ: stem and options)
    stem_similarity: float  # of the questions alone
    same_specifics: bool


def load_pairs(path: Path = PAIRS) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def score_pairs(rows: list[dict], embed: Callable[[list[str]], np.ndarray] | None = None) -> list[Scored]:
    if embed is None:
        from sciqag.embeddings import embed
    texts_a = [question_text_for_embedding(r["a"], r.get("a_options")) for r in rows]
    texts_b = [question_text_for_embedding(r["b"], r.get("b_options")) for r in rows]
    va, vb = embed(texts_a), embed(texts_b)
    sa, sb = embed([r["a"] for r in rows]), embed([r["b"] for r in rows])
    return [
        Scored(
            r["lang"],
            r.get("kind", "open"),
            bool(r["paraphrase"]),
            r["a"],
            r["b"],
            float(va[i] @ vb[i]),
            float(sa[i] @ sb[i]),
            question_specifics(r["a"]) == question_specifics(r["b"]),
        )
        for i, r in enumerate(rows)
    ]


@dataclass(frozen=True)
class Confusion:
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p and r else None

    @property
    def negatives_below(self) -> float | None:
        return self.tn / (self.tn + self.fp) if self.tn + self.fp else None


def confusion(scored: list[Scored], threshold: float, *, guard: bool = False, stem_only: bool = False) -> Confusion:
    tp = fp = fn = tn = 0
    for s in scored:
        sim = s.stem_similarity if stem_only else s.similarity
        flagged = sim >= threshold and (s.same_specifics or not guard)
        tp += flagged and s.paraphrase
        fp += flagged and not s.paraphrase
        fn += not flagged and s.paraphrase
        tn += not flagged and not s.paraphrase
    return Confusion(tp, fp, fn, tn)


def group(scored: list[Scored], lang: str, kind: str = "open") -> list[Scored]:
    return [s for s in scored if s.lang == lang and s.kind == kind]


def _f(x: float | None) -> str:
    return f"{x:.2f}" if x is not None else " n/a"


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    q = np.percentile(values, [0, 25, 50, 75, 100])
    return "min {:.3f}  p25 {:.3f}  median {:.3f}  p75 {:.3f}  max {:.3f}".format(*q)


def labelled_report(scored: list[Scored], threshold: float, out: Callable[[str], None]) -> dict:
    summary = {}
    for lang in GROUPS:
        items = group(scored, lang)
        pos = [s.similarity for s in items if s.paraphrase]
        neg = [s.similarity for s in items if not s.paraphrase]
        out(f"\n== {lang}: {len(pos)} paraphrases, {len(neg)} non-paraphrases (open questions)")
        out(f"   paraphrases      {_spread(pos)}")
        out(f"   non-paraphrases  {_spread(neg)}")
        out("   threshold | P     R     F1    negatives below | with specifics guard: P     R     F1    neg. below")
        for t in THRESHOLDS:
            c, g = confusion(items, t), confusion(items, t, guard=True)
            out(
                f"   {t:.2f}      | {_f(c.precision)}  {_f(c.recall)}  {_f(c.f1)}  {_f(c.negatives_below)}"
                f"            |                       {_f(g.precision)}  {_f(g.recall)}  {_f(g.f1)}  "
                f"{_f(g.negatives_below)}"
            )
        at = confusion(items, threshold)
        guarded = confusion(items, threshold, guard=True)
        summary[lang] = (at, guarded)
        flagged = [s for s in items if not s.paraphrase and s.similarity >= threshold]
        if flagged:
            out(f"   false duplicates at {threshold} (x: the specifics guard keeps them apart):")
            for s in sorted(flagged, key=lambda s: -s.similarity):
                out(f"     {s.similarity:.3f} {'x' if not s.same_specifics else ' '} {s.a} | {s.b}")
    mcq = [s for s in scored if s.kind == "mcq"]
    with_options, stem = confusion(mcq, threshold), confusion(mcq, threshold, stem_only=True)
    summary["mcq"] = (with_options, stem)
    out(f"\n== multiple choice: {len(mcq)} item pairs at {threshold}, stem with options vs stem alone")
    for s in mcq:
        out(
            f"   {'P' if s.paraphrase else 'N'} with options {s.similarity:.3f}  stem alone {s.stem_similarity:.3f}  "
            f"{s.a} | {s.b}"
        )
    out(
        f"   with options: {with_options.tp} of {with_options.tp + with_options.fn} paraphrases found, "
        f"{with_options.fp} false duplicates; stem alone: {stem.tp} found, {stem.fp} false duplicates"
    )
    ru = group(scored, "ru")
    summary["ru_floor"] = confusion(ru, RUSSIAN_THRESHOLD)
    summary["ru_max_negative"] = max(s.similarity for s in ru if not s.paraphrase)
    cross = group(scored, "en-ru")
    summary["en_ru_max"] = max(s.similarity for s in cross)
    out(
        f"\n== Russian at RUSSIAN_THRESHOLD {RUSSIAN_THRESHOLD}: {summary['ru_floor']}; highest non-paraphrase "
        f"{summary['ru_max_negative']:.3f}"
    )
    out(f"== English-Russian: highest similarity of any pair {summary['en_ru_max']:.3f} (translations included)")
    return summary


def release_questions(path: Path = RELEASE) -> tuple[list[str], list[str]]:
    """(paper_id, question) of every authors' pair, records in file order (as `dataset import-sciqag` reads them)."""
    from processors.jobs.release_import import read_release

    papers, questions = [], []
    for paper in read_release(path):
        for question, _answer in paper.pairs:
            papers.append(paper.ref.paper_id)
            questions.append(question)
    return papers, questions


def release_report(threshold: float, out: Callable[[str], None], embed=None) -> dict:
    if embed is None:
        from sciqag.embeddings import embed
    papers, questions = release_questions()
    vectors = embed([question_text_for_embedding(q) for q in questions])
    sims = vectors @ vectors.T
    pid = np.asarray(papers, dtype=object)
    other = pid[:, None] != pid[None, :]
    cross = np.where(other, sims, -np.inf)
    best = cross.max(axis=1)
    dups = cross_paper_duplicates(papers, vectors, threshold)
    guarded = cross_paper_duplicates(papers, vectors, threshold, specifics=[question_specifics(q) for q in questions])
    found = [(i, d) for i, d in enumerate(dups) if d is not None]
    out(f"\n== SciQAG release: {len(questions)} questions of {len(set(papers))} papers, file order, at {threshold}")
    out(
        f"   near-duplicates across papers: {len(found)} (with the specifics guard: "
        f"{sum(d is not None for d in guarded)})"
    )
    for i, d in found:
        out(f"     {d.similarity:.3f}  {questions[i]}  ->  {questions[d.of]}")
    at = {t: int((best >= t).sum()) for t in (0.7, 0.8, 0.85, 0.9, 0.92, 0.95)}
    out("   questions whose highest cross-paper similarity reaches " + ", ".join(f"{t}: {n}" for t, n in at.items()))
    out(f"   highest cross-paper similarity per question: {_spread(best.tolist())}; p90 {np.percentile(best, 90):.3f}")
    edges = [0.0, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.01]
    hist = np.histogram(best, bins=edges)[0]
    out("   histogram: " + ", ".join(f"[{a:.1f}, {min(b, 1.0):.1f}): {n}" for a, b, n in zip(edges, edges[1:], hist)))
    iu = np.triu_indices(len(questions), 1)
    pair_sims = cross[iu]
    top = np.argsort(-pair_sims)[:5]
    examples = []
    out("   the 5 most similar cross-paper pairs:")
    for k in top:
        i, j = int(iu[0][k]), int(iu[1][k])
        decision = "kept apart" if dups[j] is None else "duplicate" if dups[j].of == i else "duplicate of another"
        examples.append((float(pair_sims[k]), questions[i], questions[j], decision))
        out(f"     {pair_sims[k]:.3f}  [{decision}]  {questions[i]}  |  {questions[j]}")
    return {
        "questions": len(questions),
        "papers": len(set(papers)),
        "duplicates": len(found),
        "duplicates_guarded": sum(d is not None for d in guarded),
        "at": at,
        "median_best": float(statistics.median(best.tolist())),
        "examples": examples,
    }


def run(threshold: float = DEFAULT_THRESHOLD, out: Callable[[str], None] = print) -> list[Row]:
    scored = score_pairs(load_pairs())
    summary = labelled_report(scored, threshold, out)
    rows = []
    for lang in GROUPS:
        at, guarded = summary[lang]
        rows.append(
            Row(
                "near_dup_threshold",
                f"{lang}: paraphrases found % (recall)",
                100 * (at.recall or 0.0),
                "hard non-paraphrases flagged %",
                100 * at.fp / (at.fp + at.tn) if at.fp + at.tn else 0.0,
                note=f"at {threshold}: precision {_f(at.precision)}, F1 {_f(at.f1)} ({at}); with the specifics "
                f"guard precision {_f(guarded.precision)}, recall {_f(guarded.recall)}"
                + (f"; at RUSSIAN_THRESHOLD {RUSSIAN_THRESHOLD}: {summary['ru_floor']}" if lang == "ru" else ""),
            )
        )
    with_options, stem = summary["mcq"]
    rows.append(
        Row(
            "near_dup_mcq",
            "false duplicates, stem + options",
            with_options.fp,
            "false duplicates, stem alone",
            stem.fp,
            note=f"{with_options.fp + with_options.tn} non-paraphrase item pairs; paraphrases found "
            f"{with_options.tp} vs {stem.tp} of {with_options.tp + with_options.fn}",
        )
    )
    if RELEASE.is_file():
        release = release_report(threshold, out)
        rows.append(
            Row(
                "near_dup_release",
                "SciQAG cross-paper near-duplicates",
                release["duplicates"],
                f"questions ({release['papers']} papers)",
                release["questions"],
                note=f"at {threshold}, file order; with the specifics guard {release['duplicates_guarded']}; median "
                f"highest cross-paper similarity {release['median_best']:.3f}; reaching 0.8: {release['at'][0.8]}, "
                f"0.9: {release['at'][0.9]}",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    args = parser.parse_args()
    rows = run(args.threshold)
    print()
    print(format_table(rows))


if __name__ == "__main__":
    main()
