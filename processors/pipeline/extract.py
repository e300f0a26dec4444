"""The extractor: `sciqag.papers` -> `sciqag.extracted`. Reads each paper's PDF from where the record says it is,
and extracts its text in a process pool with a per-document timeout (PyMuPDF is CPU-bound and can hang)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import multiprocessing
import os

import msgspec

from schemas import PaperExtracted, PaperSubmitted, RecordError, Section, decode
from sciqag.errors import ExtractionError
from sciqag.extraction import EXTRACTOR_VERSION, ExtractedText, extract_pdf

from .. import metrics
from ..errors import RecordTooLarge, SourceError
from ..local.broker import die_with_parent
from ..settings import Settings
from ..sources import load_pdf
from .context import StageContext, record_key

log = logging.getLogger("sciqag.stages")

STAGE = "extractor"
MAX_CATEGORIES = 100


def check_paper_fields(paper: PaperSubmitted, settings: Settings) -> None:
    """Refuse a paper whose id or metadata is over its bound (README "Guarantees"): every record downstream carries
    them, and one over the producer's limit could not be sent at all."""
    if len(paper.paper_id.encode("utf-8", "replace")) > settings.max_key_bytes:
        raise RecordTooLarge(
            f"paper_id of {len(paper.paper_id)} characters, over the limit of {settings.max_key_bytes} bytes",
            kind="key_too_large",
        )
    if len(paper.title) > settings.max_title_chars:
        raise RecordTooLarge(
            f"title of {len(paper.title)} characters, over the limit of {settings.max_title_chars}",
            kind="field_too_large",
        )
    if len(paper.pdf_uri) > settings.max_uri_chars:
        raise RecordTooLarge(
            f"pdf_uri of {len(paper.pdf_uri)} characters, over the limit of {settings.max_uri_chars}",
            kind="field_too_large",
        )
    if len(paper.categories) > MAX_CATEGORIES:
        raise RecordTooLarge(
            f"{len(paper.categories)} categories, over the limit of {MAX_CATEGORIES}", kind="field_too_large"
        )
    fields = {"doi": paper.doi, "journal": paper.journal, "language": paper.language, "source_feed": paper.source_feed}
    fields.update({f"categories[{i}]": c for i, c in enumerate(paper.categories)})
    for name, value in fields.items():
        if len(value) > settings.max_field_chars:
            raise RecordTooLarge(
                f"{name} of {len(value)} characters, over the limit of {settings.max_field_chars}",
                kind="field_too_large",
            )


def bound_extracted(record: PaperExtracted, settings: Settings) -> PaperExtracted:
    """The record within the topic's bounds: a title read from the PDF cut at max_title_chars; a text over
    max_text_bytes (UTF-8) cut there, at a character boundary, its original length in characters in
    text_truncated_from, and the sections past the cut dropped (the generator fits a window of the text anyway)."""
    if len(record.paper.title) > settings.max_title_chars:
        record.paper = msgspec.structs.replace(record.paper, title=record.paper.title[: settings.max_title_chars])
    text = record.text
    if len(text) * 4 > settings.max_text_bytes:  # else it fits whatever its characters
        raw = text.encode("utf-8", "replace")
        if len(raw) > settings.max_text_bytes:
            cut = raw[: settings.max_text_bytes].decode("utf-8", "ignore")
            record.text, record.text_truncated_from = cut, len(text)
            record.sections = [
                Section(s.title, s.start, min(s.end, len(cut))) for s in record.sections if s.start < len(cut)
            ]
            log.info(
                "%s: text of %d characters (%d bytes) cut to %d characters for the topic",
                STAGE,
                len(text),
                len(raw),
                len(cut),
            )
    return record


class Extractor:
    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    async def handle(self, event) -> None:
        await self.ctx.guard(STAGE, event, lambda: self._extract_one(event))

    async def _extract_one(self, event) -> None:
        ctx = self.ctx
        try:
            paper = decode(event.value, PaperSubmitted)
            check_paper_fields(paper, self.settings)
        except (RecordError, RecordTooLarge) as exc:
            return await ctx.reject(STAGE, exc, paper_id=record_key(event), event=event)
        try:
            data = await load_pdf(paper, self.settings)
            extracted = await self._extract(data, paper.language)
        except (SourceError, ExtractionError) as exc:
            return await ctx.reject(STAGE, exc, paper_id=paper.paper_id, event=event, source_uri=paper.pdf_uri)
        ref = paper.ref()
        if not ref.title and extracted.title:
            ref = msgspec.structs.replace(ref, title=extracted.title)
        record = PaperExtracted(
            paper=ref,
            text=extracted.text,
            sections=[Section(*s) for s in extracted.sections],
            pages=extracted.pages,
            language=paper.language or extracted.language,
            extractor_version=EXTRACTOR_VERSION,
            removed=extracted.removed,
            page_methods=extracted.page_methods,
            ocr_pages=extracted.ocr_pages,
            repaired_pages=extracted.repaired_pages,
            ocr_language=extracted.ocr_language,
            detected_language=extracted.language,
            title_source=extracted.title_source if not paper.title else "feed",
        )
        for method in extracted.page_methods:
            if method.startswith(("ocr:", "repaired:")):
                metrics.PAGES_RECOVERED.labels(*method.split(":", 1)).inc()
        await ctx.send(ctx.topics.extracted, paper.paper_id, bound_extracted(record, self.settings))
        metrics.PAPERS.labels(STAGE, "ok").inc()

    def _extraction_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            # spawn: the worker process holds threads (broker client, engine), fork would copy their locks
            # each process dies with this one, however this one ends (a SIGKILLed worker leaves no extraction process)
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.settings.extract_workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=die_with_parent,
                initargs=(os.getpid(),),
            )
        return self._pool

    def _reset_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.kill()  # a worker stuck in PyMuPDF cannot be interrupted any other way
            pool.shutdown(wait=False, cancel_futures=True)

    async def _extract(self, data: bytes, language_hint: str = "") -> ExtractedText:
        loop = asyncio.get_running_loop()
        s = self.settings
        job = functools.partial(
            extract_pdf,
            data,
            max_pages=s.max_pages,
            ocr=s.ocr,
            language_hint=language_hint,
            ocr_page_timeout_s=s.ocr_page_timeout_s,
            ocr_budget_s=s.ocr_budget_s,
            ocr_dpi=s.ocr_dpi,
            tessdata=s.tessdata,
        )
        # OCR has its own budget (pages past it are left unread, and said so) on top of the text layer's time
        timeout_s = s.extract_timeout_s + (s.ocr_budget_s if s.ocr != "off" else 0)
        try:
            return await asyncio.wait_for(loop.run_in_executor(self._extraction_pool(), job), timeout=timeout_s)
        except TimeoutError:
            self._reset_pool()
            raise ExtractionError(f"extraction took longer than {timeout_s:.0f} s", kind="extract_timeout") from None
        except concurrent.futures.process.BrokenProcessPool:
            self._reset_pool()
            raise ExtractionError("the extraction process crashed on this PDF", kind="extractor_crashed") from None

    def close(self) -> None:
        self._reset_pool()
