"""Extraction: our extractor's pages/s on the real PDFs vs raw PyMuPDF `page.get_text()` over the same pages in the
same process (the ceiling), and vs `pymupdf4llm.to_markdown` (what many RAG tools use). Target >= 0.5x raw."""
from __future__ import annotations

import argparse
import time

import pymupdf

from sciqag.errors import ExtractionError
from sciqag.extraction import extract_pdf

from .common import PDFS, Row, format_table


def _best_of(rounds: int, fn) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def run(rounds: int = 3, with_markdown: bool = True) -> list[Row]:
    files = sorted(PDFS.glob("*.pdf"))
    if not files:
        raise FileNotFoundError(f"no PDFs in {PDFS}")
    data, skipped = [], []
    for f in files:
        blob = f.read_bytes()
        try:
            extract_pdf(blob)  # warm-up, and drop what the extractor rejects by design (the scan)
            data.append(blob)
        except ExtractionError as exc:
            skipped.append(f"{f.name} ({exc.kind})")
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
    rows = [Row("extraction", "extractor pages/s", pages / ours_s, "raw PyMuPDF get_text pages/s", pages / raw_s,
                target=0.5, note=note)]
    if with_markdown:
        try:
            import pymupdf4llm
        except ImportError:
            rows.append(Row("extraction", "pymupdf4llm", 0.0, note="pymupdf4llm not installed (pip install -e .[bench])"))
        else:
            def markdown() -> None:
                for b in data:
                    with pymupdf.open(stream=b, filetype="pdf") as doc:
                        pymupdf4llm.to_markdown(doc, show_progress=False)

            md_s = _best_of(1, markdown)
            rows.append(Row("extraction", "extractor pages/s", pages / ours_s, "pymupdf4llm.to_markdown pages/s",
                            pages / md_s, note="to_markdown timed once (it is slow)"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-markdown", action="store_true", help="skip pymupdf4llm")
    args = parser.parse_args()
    print(format_table(run(args.rounds, not args.no_markdown)))


if __name__ == "__main__":
    main()
