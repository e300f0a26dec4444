"""Extraction: our extractor's pages/s on the real PDFs vs raw PyMuPDF `page.get_text()` over the same pages in the
same process (the ceiling), and vs `pymupdf4llm.to_markdown` (what many RAG tools use). Target >= 0.5x raw.

Also: the share of the extractor's time that the per-page text-layer quality check takes (target <= 10%: the
extractor timed with the check replaced by a stub that calls every page fine), and OCR pages/s on this machine
(Tesseract through PyMuPDF, the first pages of the real image-only scan)."""

from __future__ import annotations

import argparse
import time

import pymupdf

from sciqag import extraction as _extraction
from sciqag import ocr as _ocr
from sciqag.errors import ExtractionError
from sciqag.extraction import extract_pdf
from sciqag.text_quality import PageQuality

from .common import PDFS, Row, format_table


def _best_of(rounds: int, fn) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def run(
    rounds: int = 3,
    with_markdown: bool = True,
    with_check_cost: bool | None = None,
    with_ocr: bool | None = None,
    ocr_pages: int = 3,
) -> list[Row]:
    """with_check_cost / with_ocr: None = as with_markdown (all rows for `make bench`, one for a quick check)."""
    with_check_cost = with_markdown if with_check_cost is None else with_check_cost
    with_ocr = with_markdown if with_ocr is None else with_ocr
    files = sorted(PDFS.glob("*.pdf"))
    if not files:
        raise FileNotFoundError(f"no PDFs in {PDFS}")
    data, skipped, scans = [], [], []
    for f in files:
        blob = f.read_bytes()
        try:
            extract_pdf(blob, ocr="off")  # warm-up, and drop what the extractor rejects without OCR (the scan)
            data.append(blob)
        except ExtractionError as exc:
            skipped.append(f"{f.name} ({exc.kind})")
            if exc.kind == "image_only_pdf":
                scans.append((f.name, blob))
    pages = sum(pymupdf.open(stream=b, filetype="pdf").page_count for b in data)

    def raw() -> None:
        for b in data:
            with pymupdf.open(stream=b, filetype="pdf") as doc:
                for page in doc:
                    page.get_text()

    def ours() -> None:
        for b in data:
            extract_pdf(b)

    raw_s, ours_s = _best_of(rounds, raw), _best_of(rounds, ours)
    note = f"{len(data)} PDFs, {pages} pages, best of {rounds}" + (f"; skipped {', '.join(skipped)}" if skipped else "")
    rows = [
        Row(
            "extraction",
            "extractor pages/s",
            pages / ours_s,
            "raw PyMuPDF get_text pages/s",
            pages / raw_s,
            target=0.5,
            note=note,
        )
    ]
    if with_check_cost:
        rows.append(_check_cost_row(rounds, ours, pages, ours_s, raw_s))
    if with_ocr:
        rows.append(_ocr_row(scans, ocr_pages))
    if with_markdown:
        try:
            import pymupdf4llm
        except ImportError:
            rows.append(
                Row("extraction", "pymupdf4llm", 0.0, note="pymupdf4llm not installed (pip install -e .[bench])")
            )
        else:

            def markdown() -> None:
                for b in data:
                    with pymupdf.open(stream=b, filetype="pdf") as doc:
                        pymupdf4llm.to_markdown(doc, show_progress=False)

            md_s = _best_of(1, markdown)
            rows.append(
                Row(
                    "extraction",
                    "extractor pages/s",
                    pages / ours_s,
                    "pymupdf4llm.to_markdown pages/s",
                    pages / md_s,
                    note="to_markdown timed once (it is slow)",
                )
            )
    return rows


def _check_cost_row(rounds: int, ours, pages: int, ours_s: float, raw_s: float) -> Row:
    fine = PageQuality(1, 1, 1.0, 0.0, 0.0, 0.0, "ok")
    judge = _extraction._judge
    checked_s, unchecked_s = ours_s, float("inf")
    try:
        for _ in range(max(rounds, 5)):  # interleaved, best of each: the difference is small against the noise
            _extraction._judge = lambda page, blocks, force: _extraction._Page(blocks, fine)
            unchecked_s = min(unchecked_s, _best_of(1, ours))
            _extraction._judge = judge
            checked_s = min(checked_s, _best_of(1, ours))
    finally:
        _extraction._judge = judge
    ours_s = checked_s
    share = max(0.0, ours_s - unchecked_s) / ours_s
    return Row(
        "extraction",
        "quality check % of extractor time",
        100 * share,
        note=f"target <= 10%; without the check {pages / unchecked_s:.0f} pages/s = "
        f"{raw_s / unchecked_s:.2f}x raw, with it {pages / ours_s:.0f} pages/s = {raw_s / ours_s:.2f}x raw",
    )


def _ocr_row(scans: list[tuple[str, bytes]], n_pages: int) -> Row:
    tessdata = _ocr.find_tessdata()
    if not tessdata:
        return Row("extraction", "OCR pages/s", 0.0, note=f"Tesseract not installed: {_ocr.HOW_TO_ENABLE}")
    if not scans:
        return Row("extraction", "OCR pages/s", 0.0, note="no image-only PDF among the benchmark PDFs")
    name, blob = scans[0]
    doc = pymupdf.open(stream=blob, filetype="pdf")
    doc.select(list(range(min(n_pages, doc.page_count))))
    sample = doc.tobytes()
    started = time.perf_counter()
    result = extract_pdf(sample, language_hint="ru")
    total_s = time.perf_counter() - started
    done = len(result.ocr_pages)
    return Row(
        "extraction",
        "OCR pages/s",
        done / result.ocr_seconds if result.ocr_seconds else 0.0,
        note=f"{done} pages of {name}, Tesseract {result.ocr_language} at 300 dpi, one process; "
        f"whole extraction {done / total_s:.2f} pages/s",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-markdown", action="store_true", help="skip pymupdf4llm")
    parser.add_argument("--ocr-pages", type=int, default=3, help="pages of the scan to OCR for the OCR row")
    args = parser.parse_args()
    print(
        format_table(
            run(args.rounds, not args.no_markdown, with_check_cost=True, with_ocr=True, ocr_pages=args.ocr_pages)
        )
    )


if __name__ == "__main__":
    main()
