"""The extractor: `sciqag.papers` -> `sciqag.extracted`. Reads each paper's PDF from where the record says it is,
and extracts its text in a process pool with a per-document timeout (PyMuPDF is CPU-bound and can hang)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import multiprocessing

import msgspec

from schemas import PaperExtracted, PaperSubmitted, RecordError, Section, decode
from sciqag.errors import ExtractionError
from sciqag.extraction import EXTRACTOR_VERSION, ExtractedText, extract_pdf

from .. import metrics
from ..errors import SourceError
from ..sources import load_pdf
from .context import StageContext, record_key

STAGE = "extractor"


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
        except RecordError as exc:
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
        await ctx.send(ctx.topics.extracted, paper.paper_id, record)
        metrics.PAPERS.labels(STAGE, "ok").inc()

    def _extraction_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            # spawn: the worker process holds threads (broker client, engine), fork would copy their locks
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.settings.extract_workers, mp_context=multiprocessing.get_context("spawn")
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
            extract_pdf, data, max_pages=s.max_pages, ocr=s.ocr, language_hint=language_hint,
            ocr_page_timeout_s=s.ocr_page_timeout_s, ocr_budget_s=s.ocr_budget_s, ocr_dpi=s.ocr_dpi,
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
