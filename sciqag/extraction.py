"""PDF -> cleaned full text with PyMuPDF, OCR where the text layer is missing or unusable.

Each page's text layer is checked (`sciqag.text_quality`): a page that reads like language is taken as it is; a
page whose Cyrillic came out as Latin-1 mojibake is repaired; a page with no text under a page image (a scan), a
poor hidden OCR layer under a page image, words cut by stray spaces, or characters without a Unicode mapping is
OCR'd with Tesseract (`sciqag.ocr`, mode `auto`), when Tesseract is installed. `ExtractedText.page_methods` says
how each page was handled. Cleaning: running headers/footers (lines repeated at the top or bottom of many pages,
page numbers), the reference list, hyphenation at line ends. A PDF that still has (almost) no text is rejected
with a reason rather than yielding an empty paper.

The title is the PDF's metadata title when it looks like a title (never a file name such as `paper.dvi` or
`Microsoft Word - x.docx`, nor a bare number), else the first page's largest-font line(s). The language is the
body's, detected offline (`sciqag.language`).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field

import pymupdf

from . import ocr as _ocr
from .errors import ExtractionError
from .language import detect_language, tesseract_languages
from .text_quality import PageQuality, apply_repair, assess, repair_mojibake

EXTRACTOR_VERSION = "pymupdf-clean-2-ocr"
OCR_MODES = ("auto", "off", "force")
SCAN_IMAGE_COVER = 0.25  # share of the page covered by images above which a page with no/poor text is a scan

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
_TITLE_JUNK = re.compile(
    r"\.(?:dvi|pdf|docx?|rtf|tex|ps|eps|odt|indd|qxd|p65|txt|html?|xml|pages|wpd|pptx?)\s*$|^microsoft\s+\w+\s+-|"
    r"^(?:untitled|title|no title|document\d*|microsoft word|slide \d+)$|[\\/]|^\S+\.\S+$|www\.|https?:|\bdoi\b|©",
    re.IGNORECASE,
)


@dataclass
class ExtractedText:
    text: str
    sections: list[tuple[str, int, int]]
    pages: int
    language: str
    title: str = ""
    removed: dict[str, int] = field(default_factory=dict)
    # per page, in order: "text", "empty", "repaired:<how>", "ocr:<why>", or "text:<why OCR was wanted>:<why not>"
    # (why: no_text | garbage_layer | mojibake | broken_spacing | replacement_chars | forced;
    #  why not: ocr_off | ocr_unavailable | ocr_timeout | ocr_failed | ocr_budget | ocr_worse)
    page_methods: list[str] = field(default_factory=list)
    ocr_pages: list[int] = field(default_factory=list)  # 1-based
    repaired_pages: dict[int, str] = field(default_factory=dict)  # 1-based page -> how (cp1251-as-latin1, ftfy...)
    ocr_language: str = ""  # Tesseract's language(s) used, "rus", "eng", "rus+eng"; "" when nothing was OCR'd
    ocr_seconds: float = 0.0
    title_source: str = ""  # metadata | largest_font | first_paragraph | "" (none found)


def looks_like_title(value: str) -> bool:
    """A metadata title worth keeping: words, not a file name (`paper.dvi`, `Microsoft Word - x.docx`) nor a number."""
    value = " ".join(value.split())
    if not value or len(value) > 300 or _TITLE_JUNK.search(value):
        return False
    words = [w for w in value.split() if any(ch.isalpha() for ch in w)]
    letters = sum(ch.isalpha() for ch in value)
    return len(words) >= 2 and letters >= 8 and letters >= 0.5 * len(value.replace(" ", ""))


def _largest_font_title(lines: list[tuple[str, float, float]], page_height: float) -> str:
    """The first page's largest-font line(s) that look like a title (a journal logo or a drop cap is skipped)."""
    top = [ln for ln in lines if ln[2] < 0.6 * page_height and any(ch.isalpha() for ch in ln[0])]
    sizes = sorted({round(size * 2) / 2 for _, size, _ in top}, reverse=True)
    for size in sizes[:5]:
        for i, (text, line_size, y) in enumerate(top):
            if abs(line_size - size) > 0.6:
                continue
            parts, last_y = [text], y
            for more, more_size, more_y in top[i + 1 :]:
                if abs(more_size - size) > 0.6 or more_y - last_y > 2.5 * size or more_y < last_y:
                    break
                parts.append(more)
                last_y = more_y
            candidate = " ".join(" ".join(parts).split())
            if looks_like_title(candidate):
                return candidate
            break  # the first run of lines at this size is the candidate; else try the next size
    return ""


def _text_lines(page: pymupdf.Page) -> list[tuple[str, float, float]]:
    lines = []
    for block in page.get_text("dict", flags=_TEXT_FLAGS)["blocks"]:
        for line in block.get("lines", ()):
            text = "".join(span["text"] for span in line["spans"]).strip()
            if text:
                lines.append((text, max(span["size"] for span in line["spans"]), line["bbox"][1]))
    return lines


def _image_cover(page: pymupdf.Page) -> float:
    """Share of the page's area under images (overlaps counted once per image)."""
    area = abs(page.rect) or 1.0
    covered = 0.0
    for info in page.get_image_info():
        covered += abs(pymupdf.Rect(info["bbox"]) & page.rect)
    return min(1.0, covered / area)


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
    return [
        (title, start, starts[i + 1][1] if i + 1 < len(starts) else len(text))
        for i, (title, start) in enumerate(starts)
    ]


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


def _validate(data: bytes) -> None:
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


@dataclass
class _Page:
    blocks: list[list[str]]
    quality: PageQuality
    method: str = "text"
    want_ocr: str = ""  # why the page should be OCR'd ("" = it need not be)
    lines: list[tuple[str, float, float]] | None = None  # the OCR'd page's lines with sizes (title rule)


def _judge(page: pymupdf.Page, blocks: list[list[str]], force: bool) -> _Page:
    """The quality check of one page's text layer, and the repair of mojibake."""
    quality = assess("\n".join(ln for block in blocks for ln in block))
    judged = _Page(blocks, quality)
    verdict = quality.verdict
    if verdict == "mojibake":
        repaired = repair_mojibake("\n".join(ln for block in blocks for ln in block))
        if repaired is not None:
            how = repaired[1]
            judged.blocks = [[apply_repair(ln, how) for ln in block] for block in blocks]
            judged.quality = assess("\n".join(ln for block in judged.blocks for ln in block))
            judged.method = f"repaired:{how}"
        else:
            judged.want_ocr = "mojibake"
    elif verdict in ("broken_spacing", "replacement_chars"):
        judged.want_ocr = verdict
    elif verdict in ("empty", "garbage"):
        # only a page under an image can be read better by OCR: a page of equations or numbers stays as it is
        if _image_cover(page) >= SCAN_IMAGE_COVER:
            judged.want_ocr = "no_text" if verdict == "empty" else "garbage_layer"
        elif verdict == "empty":
            judged.method = "empty"
    if force:
        judged.want_ocr = judged.want_ocr or "forced"
    return judged


def _ocr_language(language_hint: str, pages: list[_Page], available: frozenset[str]) -> str:
    """Tesseract's language for the pages to OCR: the paper's hint, else what the readable pages are in, else ""
    (the first OCR'd page is read as Russian + English and the rest in the language detected on it)."""
    if language_hint:
        return tesseract_languages(language_hint, set(available))
    readable = "\n".join(
        ln for p in pages if not p.want_ocr and p.quality.verdict == "ok" for block in p.blocks for ln in block
    )
    if len(readable) >= 300:
        return tesseract_languages(detect_language(readable), set(available))
    return ""


def extract_pdf(
    data: bytes,
    *,
    max_pages: int = 500,
    ocr: str = "auto",
    language_hint: str = "",
    ocr_page_timeout_s: float = 60.0,
    ocr_budget_s: float = 0.0,
    ocr_dpi: int = 300,
    tessdata: str = "",
) -> ExtractedText:
    """Extract and clean the text of a PDF given as bytes. Raises ExtractionError with a kind.

    ocr: "auto" OCRs the pages the quality check says need it (when Tesseract's data is found), "off" never,
    "force" every page (ExtractionError kind ocr_unavailable without Tesseract). language_hint: the paper's
    language from its feed ("en", "ru"), else detected. ocr_page_timeout_s: a page's OCR is killed past it (0: no
    limit). ocr_budget_s: pages are no longer OCR'd once this much time went into OCR (0: no budget). tessdata:
    Tesseract's data folder ("" = $TESSDATA_PREFIX or the system's). A pure function of its arguments (and of the
    Tesseract data installed): it runs in the extraction process pool.
    """
    if ocr not in OCR_MODES:
        raise ValueError(f"ocr must be one of {OCR_MODES}, not {ocr!r}")
    _validate(data)
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
        tess = _ocr.find_tessdata(tessdata) if ocr != "off" else ""
        if ocr == "force" and not tess:
            raise ExtractionError(
                f"SCIQAG_OCR=force but no Tesseract data is installed: {_ocr.HOW_TO_ENABLE}", kind="ocr_unavailable"
            )
        try:
            pages = [_judge(page, _page_blocks(page), ocr == "force") for page in doc]
            images = sum(len(page.get_images()) for page in doc)
        except Exception as exc:
            raise ExtractionError(f"PyMuPDF failed while reading pages: {exc}", kind="corrupt_pdf") from exc
        ocr_language, ocr_seconds = _run_ocr(
            doc, pages, ocr, tess, language_hint, ocr_page_timeout_s, ocr_budget_s, ocr_dpi
        )
        metadata_title = " ".join(((doc.metadata or {}).get("title", "") or "").split())
        first_lines = pages[0].lines if pages[0].lines is not None else None
        if not looks_like_title(metadata_title):
            if first_lines is None:
                try:
                    first_lines = _text_lines(doc[0])
                except Exception:  # the title is a nicety: a page PyMuPDF cannot read again has no title
                    first_lines = []
        page_height = doc[0].rect.height
        page_count = doc.page_count

    raw_chars = sum(len(ln) for p in pages for block in p.blocks for ln in block)
    if raw_chars < MIN_CHARS_PER_PAGE * page_count:
        reason = "image-only (scanned) PDF" if images else "PDF with almost no text"
        ocred = sum(p.method.startswith("ocr:") for p in pages)
        if ocred:
            why = f"OCR of {ocred} pages read too little"
        elif ocr == "off":
            why = "OCR is off (SCIQAG_OCR=off)"
        elif not tess:
            why = f"OCR is not available: {_ocr.HOW_TO_ENABLE}"
        else:
            why = "OCR did not read them: " + ", ".join(sorted({p.method for p in pages if p.want_ocr}))
        raise ExtractionError(
            f"{reason}: {raw_chars} characters of text on {page_count} pages, {images} images; "
            f"no text layer to read ({why})",
            kind="image_only_pdf" if images else "no_text",
        )

    removed: Counter[str] = Counter()
    block_pages = [p.blocks for p in pages]
    running = _running_blocks(block_pages)
    kept: list[str] = []
    for blocks in block_pages:
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
    title, title_source = metadata_title, "metadata"
    if not looks_like_title(title):
        title, title_source = _largest_font_title(first_lines or [], page_height), "largest_font"
    if not title:
        title = next((p for p in text.split("\n")[:5] if 15 < len(p) < 250 and looks_like_title(p)), "")
        title_source = "first_paragraph" if title else ""
    return ExtractedText(
        text=text,
        sections=_sections(text),
        pages=page_count,
        language=detect_language(text),
        title=title.strip(),
        removed=dict(removed),
        page_methods=[p.method for p in pages],
        ocr_pages=[i + 1 for i, p in enumerate(pages) if p.method.startswith("ocr:")],
        repaired_pages={
            i + 1: p.method.split(":", 1)[1] for i, p in enumerate(pages) if p.method.startswith("repaired:")
        },
        ocr_language=ocr_language,
        ocr_seconds=round(ocr_seconds, 3),
        title_source=title_source,
    )


def _run_ocr(
    doc, pages: list[_Page], mode: str, tess: str, language_hint: str, timeout_s: float, budget_s: float, dpi: int
) -> tuple[str, float]:
    """OCR the pages that want it; each page's `method` says what happened. Returns (languages used, seconds)."""
    wanted = [i for i, p in enumerate(pages) if p.want_ocr]
    if not wanted:
        return "", 0.0
    if mode == "off" or not tess:
        for i in wanted:
            pages[i].method = f"text:{pages[i].want_ocr}:{'ocr_off' if mode == 'off' else 'ocr_unavailable'}"
        return "", 0.0
    available = _ocr.available_languages(tess)
    language = _ocr_language(language_hint, pages, available)
    used: list[str] = []
    spent = 0.0
    for i in wanted:
        page = pages[i]
        if budget_s and spent >= budget_s:
            page.method = f"text:{page.want_ocr}:ocr_budget"
            continue
        probe = language or "+".join(code for code in ("rus", "eng") if code in available) or sorted(available)[0]
        started = time.monotonic()
        try:
            result = _ocr.ocr_page(
                doc[i], language=probe, tessdata=tess, dpi=dpi, timeout_s=timeout_s, flags=_TEXT_FLAGS
            )
        except _ocr.OcrError as exc:
            page.method = f"text:{page.want_ocr}:ocr_{exc.reason}"
            continue
        finally:
            spent += time.monotonic() - started
        if probe not in used:
            used.append(probe)
        text = "\n".join(ln for block in result.blocks for ln in block)
        quality = assess(text)
        # a page with no text layer takes only OCR that reads like language (not a figure's labels)
        better = quality.verdict == "ok" or (page.quality.verdict != "empty" and quality.score > page.quality.score)
        if quality.letters < 1 or (not better and page.want_ocr != "forced"):
            page.method = f"text:{page.want_ocr}:ocr_worse"
            continue
        if not language and quality.letters >= 200:  # the rest of the paper in the language read here
            language = tesseract_languages(detect_language(text), set(available))
        page.blocks, page.quality, page.lines = result.blocks, quality, result.lines
        page.method = f"ocr:{page.want_ocr}"
    return "+".join(dict.fromkeys(code for lang in used for code in lang.split("+"))), spent
