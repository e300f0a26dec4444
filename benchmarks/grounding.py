"""Evidence grounding (issue 18): the locator's CPU time per paper on the real PDFs, beside their extraction time in
the same run, and the checks behind its threshold.

- Locator time: a `Locator` built per paper and 10 pairs x 3 quotes located, CPU time, best of `rounds`. Verbatim
  quotes (cut from the text: the exact path; target <= 50 ms median per paper) and the worst case, every quote
  needing the fuzzy path (a short word left out of each).
- Calibration: quotes cut from the paper with one short word left out (a model's slip: should be located) against
  quotes cut from the other papers and the other papers' answers (not in this paper: must not be located), on the
  real PDFs and the 40 SciQAG release records; the share of each located at the threshold, and the highest ratio an
  invented quote reached.
- External check: the 400 authors' answers of the SciQAG release records as the "quotes" (best passage per
  answer): the share the locator grounds at the threshold. The answers are written from the paper, not copied,
  so this is not a recall figure: it says how much of SciQAG's own answers is near-verbatim text of the paper.

    .venv/bin/python -m benchmarks --only grounding      # or: .venv/bin/python -m benchmarks.grounding
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import time

from sciqag.errors import ExtractionError
from sciqag.extraction import extract_pdf
from sciqag.grounding import DEFAULT_THRESHOLD, Locator, grounding_score, normalise

from .common import PDFS, SHARED, Row, format_table

RELEASE = SHARED / "sciqag" / "papers_dev.jsonl"
SCAN = "phd__GOST_R_7.05-2008.pdf"  # image-only: its text would be Tesseract's (minutes of OCR), left out
PAIRS, QUOTES = 10, 3
PAPER_COVERAGE = 0.786  # SciQAG's answer coverage rate (the paper), for comparison in the external check
TARGET_MS = 50.0


def _extract(blob: bytes):
    try:
        return extract_pdf(blob, ocr="off")
    except TypeError:  # an extractor without the OCR switch
        return extract_pdf(blob)


def pdf_texts() -> tuple[dict[str, str], dict[str, float]]:
    """Text of each real PDF (the scan left out) and its extraction wall time in ms (best of 3)."""
    texts, ms = {}, {}
    for path in sorted(PDFS.glob("*.pdf")):
        if path.name == SCAN:
            continue
        blob = path.read_bytes()
        best = float("inf")
        try:
            for _ in range(3):
                started = time.perf_counter()
                extracted = _extract(blob)
                best = min(best, time.perf_counter() - started)
        except ExtractionError:
            continue
        texts[path.name], ms[path.name] = extracted.text, best * 1000
    if not texts:
        raise FileNotFoundError(f"no PDFs with text in {PDFS}")
    return texts, ms


def release_records() -> list[dict]:
    return [json.loads(line) for line in RELEASE.read_text().splitlines() if line.strip()]


def cut_quotes(text: str, rng: random.Random, n: int, words: tuple[int, int] = (8, 25)) -> list[str]:
    """`n` pieces of prose at word boundaries, as a model quotes them."""
    tokens = text.split()
    quotes: list[str] = []
    for _ in range(n * 50):
        i, k = rng.randrange(max(1, len(tokens) - words[1])), rng.randint(*words)
        quote = " ".join(tokens[i : i + k]).strip(".,;:")
        if len(quote) >= 30 and sum(c.isalpha() for c in quote) >= 0.6 * len(quote):
            quotes.append(quote)
            if len(quotes) == n:
                break
    return quotes


def slip(quote: str) -> str:
    """The quote with one short word in its middle left out: not verbatim any more, so it takes the fuzzy path."""
    words = quote.split()
    middle = [i for i in range(2, len(words) - 2) if 2 <= len(words[i]) <= 7] or [len(words) // 2]
    del words[middle[len(middle) // 2]]
    return " ".join(words)


def _cpu_ms(text: str, quotes: list[str], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        locator = Locator(text)
        for i in range(0, len(quotes), QUOTES):
            locator.locate_all(quotes[i : i + QUOTES])
        best = min(best, time.process_time() - started)
    return best * 1000


def timing(texts: dict[str, str], rounds: int = 3, seed: int = 18) -> tuple[list[float], list[float], int]:
    """(verbatim ms per paper, all-fuzzy ms per paper, verbatim quotes not located) over the texts."""
    rng = random.Random(seed)
    verbatim, fuzzy, missed = [], [], 0
    for text in texts.values():
        quotes = cut_quotes(text, rng, PAIRS * QUOTES)
        locator = Locator(text)
        missed += sum(not s.exact for s in locator.locate_all(quotes))
        verbatim.append(_cpu_ms(text, quotes, rounds))
        fuzzy.append(_cpu_ms(text, [slip(q) for q in quotes], rounds))
    return verbatim, fuzzy, missed


def calibration(
    texts: dict[str, str], records: list[dict], threshold: float = DEFAULT_THRESHOLD, seed: int = 5
) -> dict:
    """Near-verbatim quotes of each paper vs quotes and answers from the other papers."""
    rng = random.Random(seed)
    names = sorted(texts)
    answers = [qa["a"] for r in records for qa in r["qa"]]
    own_doi = {qa["a"]: r["doi"] for r in records for qa in r["qa"]}
    slips, invented = [], []
    for name in names:
        text, locator = texts[name], Locator(texts[name])
        slips += [locator.locate(slip(q), threshold=0).ratio for q in cut_quotes(text, rng, 10, words=(12, 25))]
        for other in rng.sample([n for n in names if n != name], min(3, len(names) - 1)):
            invented += [locator.locate(q, threshold=0).ratio for q in cut_quotes(texts[other], rng, 10)]
        invented += [
            locator.locate(a, threshold=0).ratio for a in rng.sample([a for a in answers if own_doi[a] != name], 10)
        ]
    return {
        "threshold": threshold,
        "slips": len(slips),
        "slips_located": sum(r >= threshold for r in slips) / len(slips),
        "invented": len(invented),
        "invented_located": sum(r >= threshold for r in invented) / len(invented),
        "invented_max": max(invented),
        "slips_p5": sorted(slips)[len(slips) // 20],
    }


_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-ZА-ЯЁ0-9(])")


def release_check(records: list[dict], threshold: float = DEFAULT_THRESHOLD) -> dict:
    """The authors' answers as quotes, the best passage of the paper per answer: the share located at the threshold,
    the median best ratio, and (finer) the share of answer sentences located."""
    ratios, located, grounding, sentences, sentences_located = [], 0, [], 0, 0
    for record in records:
        locator = Locator(record["text"])
        for qa in record["qa"]:
            span = locator.locate(qa["a"], threshold=threshold)
            ratios.append(span.ratio)
            located += span.located
            grounding.append(grounding_score(qa["a"], record["text"], [span]))
            parts = [s for s in _SENTENCE.split(qa["a"]) if len(normalise(s)) >= 24]
            sentences += len(parts)
            sentences_located += sum(s.located for s in locator.locate_all(parts, threshold=threshold))
    n = len(ratios)
    return {
        "answers": n,
        "threshold": threshold,
        "located": located / n,
        "median_ratio": statistics.median(ratios),
        "at": {t: sum(r >= t for r in ratios) / n for t in (0.75, 0.8, 0.85, 0.9, 0.95)},
        "mean_grounding": statistics.fmean(grounding),
        "sentences": sentences,
        "sentences_located": sentences_located / sentences if sentences else 0.0,
    }


def run(rounds: int = 3) -> list[Row]:
    texts, extraction_ms = pdf_texts()
    verbatim, fuzzy, missed = timing(texts, rounds)
    median_extraction = statistics.median(extraction_ms.values())
    papers = f"{len(texts)} PDFs ({SCAN} left out), {PAIRS} pairs x {QUOTES} quotes a paper, CPU time, best of {rounds}"
    rows = [
        Row(
            "grounding",
            "locator ms/paper, verbatim (median)",
            statistics.median(verbatim),
            "extraction ms/paper (median)",
            median_extraction,
            note=f"{papers}; worst paper {max(verbatim):.1f} ms; target <= {TARGET_MS:g} ms median: "
            f"{'ok' if statistics.median(verbatim) <= TARGET_MS else 'ABOVE TARGET'}; "
            f"{missed} verbatim quotes not located exactly",
        ),
        Row(
            "grounding",
            "locator ms/paper, all fuzzy (median)",
            statistics.median(fuzzy),
            "extraction ms/paper (median)",
            median_extraction,
            note=f"every quote with a word left out (fuzzy path); worst paper {max(fuzzy):.1f} ms",
        ),
    ]
    if RELEASE.is_file():
        records = release_records()
        corpus = {**texts, **{r["doi"]: r["text"] for r in records}}
        cal = calibration(corpus, records)
        rows.append(
            Row(
                "grounding_threshold",
                "near-verbatim quotes located %",
                100 * cal["slips_located"],
                "invented quotes located %",
                100 * cal["invented_located"],
                note=f"threshold {cal['threshold']}: {cal['slips']} quotes with a word left out (5th "
                f"percentile ratio {cal['slips_p5']:.3f}) vs {cal['invented']} quotes and answers from "
                f"other papers (highest ratio {cal['invented_max']:.3f})",
            )
        )
        check = release_check(records)
        at = ", ".join(f"{t:g}: {100 * s:.1f}%" for t, s in check["at"].items())
        rows.append(
            Row(
                "grounding_release",
                "SciQAG answers grounded %",
                100 * check["located"],
                "SciQAG paper's coverage rate %",
                100 * PAPER_COVERAGE,
                note=f"{check['answers']} authors' answers as quotes at threshold {check['threshold']}; "
                f"median best ratio {check['median_ratio']:.3f}; at other thresholds {at}; answer "
                f"sentences located {100 * check['sentences_located']:.1f}% of {check['sentences']}; "
                f"mean grounding {check['mean_grounding']:.3f}",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(format_table(run(args.rounds)))


if __name__ == "__main__":
    main()
