"""Tools around the pipeline: `sciqag extract` (extraction alone), `sciqag schemas` (the contracts) and
`sciqag prepare-model` (the bundled model, converted once)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import Command, settings_from


def _extract_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pdfs", nargs="+", type=Path, metavar="PDF")
    p.add_argument("--json", action="store_true", help="one JSON object per PDF with text, sections and statistics")
    p.add_argument(
        "--ocr",
        choices=["auto", "off", "force"],
        help="OCR pages without a usable text layer (SCIQAG_OCR, default auto; needs Tesseract)",
    )
    p.add_argument("--language", default="", help="the papers' language if known (en, ru): the OCR language")


def extract(args) -> int:
    from sciqag.errors import ExtractionError
    from sciqag.extraction import extract_pdf

    settings = settings_from(args)
    failures = 0
    for pdf in args.pdfs:
        try:
            result = extract_pdf(
                pdf.read_bytes(),
                max_pages=settings.max_pages,
                ocr=settings.ocr,
                language_hint=args.language,
                ocr_page_timeout_s=settings.ocr_page_timeout_s,
                ocr_budget_s=settings.ocr_budget_s,
                ocr_dpi=settings.ocr_dpi,
                tessdata=settings.tessdata,
            )
        except (ExtractionError, OSError) as exc:
            failures += 1
            kind = exc.kind if isinstance(exc, ExtractionError) else "unreadable"
            if args.json:
                print(json.dumps({"file": str(pdf), "error_kind": kind, "error": str(exc)}, ensure_ascii=False))
            else:
                print(f"{pdf}: {kind}: {exc}", file=sys.stderr)
            continue
        if args.json:
            print(
                json.dumps(
                    {
                        "file": str(pdf),
                        "title": result.title,
                        "pages": result.pages,
                        "language": result.language,
                        "chars": len(result.text),
                        "removed": result.removed,
                        "title_source": result.title_source,
                        "page_methods": result.page_methods,
                        "ocr_pages": result.ocr_pages,
                        "repaired_pages": result.repaired_pages,
                        "ocr_language": result.ocr_language,
                        "ocr_seconds": round(result.ocr_seconds, 2),
                        "sections": [{"title": t, "start": s, "end": e} for t, s, e in result.sections],
                        "text": result.text,
                    },
                    ensure_ascii=False,
                )
            )
        else:
            print(f"===== {pdf} ({result.pages} pages, {len(result.text)} chars, {result.language})")
            print(result.text)
    return 1 if failures else 0


def _schemas_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("schemas/json"), help="output folder (default schemas/json)")
    p.add_argument("--ddl", type=Path, help="also write the ClickHouse DDL as one SQL file (database 'sciqag')")


def schemas(args) -> int:
    from schemas.ddl import ddl_script
    from schemas.jsonschema import write_json_schemas

    for path in write_json_schemas(args.out):
        print(path)
    if args.ddl:
        args.ddl.write_text(ddl_script("sciqag"))
        print(args.ddl)
    return 0


def prepare_model(args) -> int:
    from ..local.model import prepare_bundled_model

    print(prepare_bundled_model())
    return 0


COMMANDS = {
    "extract": Command(_extract_arguments, extract),
    "schemas": Command(_schemas_arguments, schemas),
    "prepare-model": Command(lambda p: None, prepare_model),
}
