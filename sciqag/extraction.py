"""PDF -> cleaned full text with PyMuPDF.

Cleaning: running headers/footers (lines repeated at the top or bottom of many
pages, page numbers), the reference list, hyphenation at line ends. Image-only
PDFs (scans without a text layer) are rejected with a reason rather than
yielding an empty paper.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import pymupdf

from .errors import ExtractionError

EXTRACTOR_VERSION = "pymupdf-clean-1"

MIN_CHARS_PER_PAGE = 200  # below this on average, and with images on the pages, the PDF is a scan
EDGE_BLOCKS = 2  # blocks looked at on top and bottom of each page for running headers/footers

_REFERENCES = re.compile(
    r"^\s*(?:\d+\.?\s*)?(references|bibliography|literature cited|works cited|список литературы|литература|"
    r"список использованных источников|библиографический список)\s*:?\s*$",
    re.IGNORECASE,
)
_HEADING = re.compile(
    r"^\s*(?:(?:\d+(?:\.\d+)*\.?|[IVX]+\.)\s+[A-ZА-Я][^|]{0,70}|"
    r"(?:abstract|introduction|background|related work|methods?|materials and methods|experimental(?: section)?|"
    r"results(?: and discussion)?|discussion|conclusions?|summary|acknowledge?ments?|"
    r"аннотация|введение|заключение|выводы|обсуждение|результаты|методы|глава\s+\d+.*)\s*:?)\s*$",
    re.IGNORECASE,
)
_PAGE_NUMBER = re.compile(r"^\s*(?:page\s*)?\d{1,4}(?:\s*(?:/|of)\s*\d{1,4})?\s*$", re.IGNORECASE)
_DIGITS = re.compile(r"\d+")
_CYRILLIC = re.compile(r"[\u0400-\u04FF]")
_LATIN = re.compile(r"[A-Za-z]")


@dataclass
class ExtractedText:
    text: str
    sections: list[tuple[str, int, int]]
    pages: int
    language: str
    title: str = ""
    removed: dict[str, int] = field(default_factory=dict)


def detect_language(text: str) -> str:
    sample = text[:20000]
    cyr = len(_CYRILLIC.findall(sample))
    lat = len(_LATIN.findall(sample))
    return "ru" if cyr > 0.3 * (cyr + lat) and cyr > 0 else "en"


# ligatures expanded ("ﬁ" -> "fi"), so questions and numbers match the text users search
_TEXT_FLAGS = (pymupdf.TEXTFLAGS_BLOCKS & ~pymupdf.TEXT_PRESERVE_LIGATURES) | pymupdf.TEXT_MEDIABOX_CLIP


def _page_blocks(page: pymupdf.Page) -> list[list[str]]:
    """The page's text blocks, each a list of non-empty lines."""
    blocks: list[list[str]] = []
    for block in page.get_text("blocks", sort=False, flags=_TEXT_FLAGS):
        if block[6] != 0:  # image block
            continue
        lines = [ln.strip() for ln in block[4].splitlines() if ln.strip()]
        if lines:
            blocks.append(lines)
    return blocks


def _block_key(lines: list[str]) -> str:
    return _DIGITS.sub("#", " ".join(lines))


def _edge_blocks(blocks: list[list[str]]) -> list[list[str]]:
    """Short blocks at the top or bottom of a page: where running headers and footers live."""
    edges = blocks[:EDGE_BLOCKS] + blocks[-EDGE_BLOCKS:]
    return [b for b in edges if len(b) <= 4]


def _running_blocks(pages: list[list[list[str]]]) -> set[str]:
    """Edge blocks (digits normalised, so page numbers vary) that repeat on at least 30% of pages (min 2)."""
    if len(pages) < 3:
        return set()
    counts: Counter[str] = Counter()
    for blocks in pages:
        counts.update({_block_key(b) for b in _edge_blocks(blocks)})
    threshold = max(2, int(0.3 * len(pages)))
    return {key for key, n in counts.items() if n >= threshold and len(key) < 250}


def _join_lines(lines: list[str]) -> str:
    """Lines -> paragraphs; a line ending in a hyphen is joined to the next without the hyphen."""
    paragraphs: list[str] = []
    current = ""
    for line in lines:
        if not line:
            if current:
                paragraphs.append(current)
                current = ""
            continue
        if _is_heading(line):
            if current:
                paragraphs.append(current)
            paragraphs.append(line)
            current = ""
        elif current.endswith("-") and line[:1].islower():
            current = current[:-1] + line
        else:
            current = f"{current} {line}" if current else line
    if current:
        paragraphs.append(current)
    return "\n".join(paragraphs)


def _is_heading(line: str) -> bool:
    if len(line) >= 80 or not _HEADING.match(line):
        return False
    letters = sum(ch.isalpha() for ch in line)
    # "3.9 (3.9)", "23 January 2015" and table rows are not headings
    return letters >= 0.6 * len(line.replace(" ", "")) and not line.rstrip()[-1:].isdigit()


def _sections(text: str) -> list[tuple[str, int, int]]:
    starts: list[tuple[str, int]] = []
    offset = 0
    for para in text.split("\n"):
        if _is_heading(para):
            starts.append((para.strip(), offset))
        offset += len(para) + 1
    if not starts or starts[0][1] > 0:
        starts.insert(0, ("", 0))
    return [(title, start, starts[i + 1][1] if i + 1 < len(starts) else len(text)) for i, (title, start) in enumerate(starts)]


def _cut_references(text: str) -> tuple[str, int]:
    """Drop everything from the last reference-list heading on, if it sits in the second half."""
    cut = -1
    offset = 0
    for para in text.split("\n"):
        if _REFERENCES.match(para) and offset > len(text) * 0.5:
            cut = offset
        offset += len(para) + 1
    if cut < 0:
        return text, 0
    return text[:cut].rstrip(), len(text) - cut


def extract_pdf(data: bytes, *, max_pages: int = 500) -> ExtractedText:
    """Extract and clean the text of a PDF given as bytes. Raises ExtractionError with a kind."""
    if not data:
        raise ExtractionError("the file is empty (0 bytes)", kind="empty_file")
    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise ExtractionError(f"not a PDF: starts with {data[:16]!r}", kind="not_a_pdf")
    if b"%%EOF" not in data[-2048:]:
        # PyMuPDF would silently "repair" a cut-off file and return the pages that survived
        raise ExtractionError(
            f"truncated PDF: no %%EOF marker at the end of its {len(data)} bytes (an incomplete download or copy?)",
            kind="truncated_pdf",
        )
    try:
        doc = pymupdf.open(stream=data, filetype="pdf")
    except Exception as exc:  # PyMuPDF raises several types for broken files
        raise ExtractionError(f"PyMuPDF cannot open the PDF: {exc}", kind="corrupt_pdf") from exc
    with doc:
        if doc.needs_pass:
            raise ExtractionError("the PDF is encrypted and needs a password", kind="encrypted_pdf")
        if doc.page_count == 0:
            raise ExtractionError("the PDF has no pages", kind="corrupt_pdf")
        if doc.page_count > max_pages:
            raise ExtractionError(f"{doc.page_count} pages is over the limit of {max_pages}", kind="too_many_pages")
        try:
            pages = [_page_blocks(page) for page in doc]
            images = sum(len(page.get_images()) for page in doc)
        except Exception as exc:
            raise ExtractionError(f"PyMuPDF failed while reading pages: {exc}", kind="corrupt_pdf") from exc
        title = (doc.metadata or {}).get("title", "") or ""
        if title.strip().lower() in ("untitled", "title", "microsoft word"):
            title = ""
        page_count = doc.page_count

    raw_chars = sum(len(ln) for blocks in pages for block in blocks for ln in block)
    if raw_chars < MIN_CHARS_PER_PAGE * page_count:
        reason = "image-only (scanned) PDF" if images else "PDF with almost no text"
        raise ExtractionError(
            f"{reason}: {raw_chars} characters of text on {page_count} pages, {images} images; "
            "no text layer to read (OCR is not enabled)",
            kind="image_only_pdf" if images else "no_text",
        )

    removed: Counter[str] = Counter()
    running = _running_blocks(pages)
    kept: list[str] = []
    for blocks in pages:
        edges = {id(b) for b in _edge_blocks(blocks)}
        for block in blocks:
            # a repeated header/footer is removed wherever it sits (a first page often places it mid-page)
            is_running = len(block) <= 4 and _block_key(block) in running
            is_page_number = id(block) in edges and all(_PAGE_NUMBER.match(ln) for ln in block)
            if is_running or is_page_number:
                removed["running_header_chars"] += sum(len(ln) for ln in block)
                continue
            kept.extend(block)
            kept.append("")  # block boundary = paragraph boundary
    text = _join_lines(kept)
    text, ref_chars = _cut_references(text)
    if ref_chars:
        removed["reference_chars"] = ref_chars
    if not title:
        title = next((p for p in text.split("\n")[:5] if 15 < len(p) < 250), "")
    return ExtractedText(
        text=text,
        sections=_sections(text),
        pages=page_count,
        language=detect_language(text),
        title=title.strip(),
        removed=dict(removed),
    )
