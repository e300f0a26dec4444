"""OCR of one PDF page with Tesseract through PyMuPDF (`Page.get_textpage_ocr`), under a time limit.

PyMuPDF's wheels carry MuPDF's built-in Tesseract; what they need is the language data (`*.traineddata`), which
Debian's `tesseract-ocr`, `tesseract-ocr-eng` and `tesseract-ocr-rus` install in /usr/share/tesseract-ocr/5/tessdata
(`make tools`). The data is looked up in: the `tessdata` argument, $TESSDATA_PREFIX, then the usual system places.

The time limit: a page is OCR'd in a forked child of the calling process (the extraction pool's worker: a
process of its own, single-threaded), which is killed when the page takes longer than `timeout_s`. MuPDF's C code
cannot be interrupted in-process. Where fork is not available, or with `timeout_s=0`, the page is OCR'd in-process
without a limit.
"""

from __future__ import annotations

import functools
import os
import pickle
import select
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pymupdf

SYSTEM_TESSDATA = (
    "/usr/share/tesseract-ocr/5/tessdata",
    "/usr/share/tesseract-ocr/4.00/tessdata",
    "/usr/share/tessdata",
    "/usr/local/share/tessdata",
    "/opt/homebrew/share/tessdata",
)
HOW_TO_ENABLE = (
    "install Tesseract with its English and Russian data (`make tools`, or `apt-get install tesseract-ocr "
    "tesseract-ocr-eng tesseract-ocr-rus`) and run with SCIQAG_OCR=auto"
)


class OcrError(Exception):
    """A page could not be OCR'd (`reason`: timeout | failed)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class OcrPage:
    blocks: list[list[str]]  # text blocks, each a list of lines (as extraction reads a text layer)
    lines: list[tuple[str, float, float]]  # (line, font size, top) for the title rule
    seconds: float


def find_tessdata(explicit: str = "") -> str:
    """The first Tesseract data folder that holds a language, or "" when there is none."""
    env = os.environ.get("TESSDATA_PREFIX", "")
    return _find_tessdata((explicit, env) + SYSTEM_TESSDATA)


@functools.lru_cache(maxsize=8)
def _find_tessdata(candidates: tuple[str, ...]) -> str:
    for folder in candidates:
        if folder and available_languages(folder):
            return folder
    return ""


@functools.lru_cache(maxsize=8)
def available_languages(tessdata: str) -> frozenset[str]:
    try:
        return frozenset(p.name[: -len(".traineddata")] for p in Path(tessdata).glob("*.traineddata")) - {"osd"}
    except OSError:
        return frozenset()


def _read_page(page: pymupdf.Page, textpage, flags: int) -> tuple[list[list[str]], list[tuple[str, float, float]]]:
    blocks: list[list[str]] = []
    lines: list[tuple[str, float, float]] = []
    for block in page.get_text("dict", textpage=textpage, flags=flags)["blocks"]:
        if block.get("type", 0) != 0:
            continue
        texts = []
        for line in block["lines"]:
            text = "".join(span["text"] for span in line["spans"]).strip()
            if text:
                texts.append(text)
                lines.append((text, max(span["size"] for span in line["spans"]), line["bbox"][1]))
        if texts:
            blocks.append(texts)
    return blocks, lines


def _ocr_in_process(page: pymupdf.Page, language: str, tessdata: str, dpi: int, flags: int):
    textpage = page.get_textpage_ocr(flags=flags, language=language, dpi=dpi, full=True, tessdata=tessdata)
    return _read_page(page, textpage, flags)


def ocr_page(
    page: pymupdf.Page,
    *,
    language: str,
    tessdata: str,
    dpi: int = 300,
    timeout_s: float = 60.0,
    flags: int = pymupdf.TEXTFLAGS_DICT,
) -> OcrPage:
    """OCR the whole page (text layer ignored) with Tesseract's `language` ("rus", "eng", "rus+eng")."""
    started = time.monotonic()
    if timeout_s <= 0 or not hasattr(os, "fork"):
        try:
            blocks, lines = _ocr_in_process(page, language, tessdata, dpi, flags)
        except Exception as exc:
            raise OcrError(f"OCR failed: {exc}", "failed") from exc
        return OcrPage(blocks, lines, time.monotonic() - started)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: OCR, write the pickled result, and leave without running any cleanup of the parent's
        code = 0
        try:
            os.close(read_fd)
            try:
                payload = pickle.dumps(("ok", _ocr_in_process(page, language, tessdata, dpi, flags)))
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                payload = pickle.dumps(("error", f"{type(exc).__name__}: {exc}"))
            view = memoryview(payload)
            while view:
                view = view[os.write(write_fd, view) :]
        except BaseException:  # noqa: BLE001
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    chunks: list[bytes] = []
    deadline = started + timeout_s
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                raise OcrError(f"OCR of the page took over {timeout_s:g} s (killed)", "timeout")
            ready, _, _ = select.select([read_fd], [], [], left)
            if ready:
                chunk = os.read(read_fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
    finally:
        os.close(read_fd)
        os.waitpid(pid, 0)
    try:
        status, result = pickle.loads(b"".join(chunks))
    except Exception as exc:
        raise OcrError("the OCR process ended without a result", "failed") from exc
    if status != "ok":
        raise OcrError(f"OCR failed: {result}", "failed")
    blocks, lines = result
    return OcrPage(blocks, lines, time.monotonic() - started)
