"""The demo's own sample papers: short texts written for this project (*.md beside this file), rendered to PDF.

They are synthetic: written to exercise the pipeline (English and Russian,
sections, numbers with units), not real publications.
"""

from __future__ import annotations

import html
from pathlib import Path

import pymupdf

SAMPLES_DIR = Path(__file__).parent
_PAGE = pymupdf.Rect(0, 0, 595, 842)  # A4 in points
_MARGIN = 60
_GAP = 6


def _blocks(markdown: str) -> list[str]:
    """Markdown headings and paragraphs -> one HTML snippet each."""
    blocks = []
    paragraphs: list[str] = []
    for line in markdown.strip().splitlines():
        if line.startswith("#") or not line.strip():
            paragraphs.append(line)
        elif paragraphs and paragraphs[-1].strip() and not paragraphs[-1].startswith("#"):
            paragraphs[-1] += " " + line
        else:
            paragraphs.append(line)
    for block in paragraphs:
        block = " ".join(block.split())
        if not block:
            continue
        if block.startswith("## "):
            blocks.append(f"<h2>{html.escape(block[3:])}</h2>")
        elif block.startswith("# "):
            blocks.append(f"<h1>{html.escape(block[2:])}</h1>")
        else:
            blocks.append(f"<p style='font-size: 10px; text-align: justify'>{html.escape(block)}</p>")
    return blocks


def render_pdf(markdown: str, out: Path) -> None:
    """Lay out each heading and paragraph as its own text block, on as many pages as needed.

    insert_htmlbox (unlike insert_textbox with a base-14 font) renders Cyrillic.
    """
    doc = pymupdf.open()
    page, y = None, _PAGE.height
    for snippet in _blocks(markdown):
        for _attempt in range(2):
            if page is None or y > _PAGE.height - _MARGIN - 20:
                page, y = doc.new_page(width=_PAGE.width, height=_PAGE.height), _MARGIN
            box = pymupdf.Rect(_MARGIN, y, _PAGE.width - _MARGIN, _PAGE.height - _MARGIN)
            spare, _scale = page.insert_htmlbox(box, snippet, scale_low=1)
            if spare >= 0:
                y += box.height - spare + _GAP
                break
            page = None  # did not fit in what is left of this page: next page
        else:
            raise ValueError(f"a paragraph is longer than a page: {snippet[:60]}…")
    # fixed dates and no random file id: the same text gives the same bytes, hence the same paper_id,
    # so a second `make demo` replaces its rows instead of adding papers
    doc.set_metadata(
        {
            "title": markdown.splitlines()[0].lstrip("# ").strip(),
            "subject": "sciqag-stream demo sample",
            "creationDate": "D:20260101000000Z",
            "modDate": "D:20260101000000Z",
            "producer": "sciqag-stream",
        }
    )
    doc.save(out, no_new_id=True)


def write_sample_pdfs(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sorted(SAMPLES_DIR.glob("*.md")):
        target = out_dir / f"{source.stem}.pdf"
        render_pdf(source.read_text(encoding="utf-8"), target)
        written.append(target)
    return written
