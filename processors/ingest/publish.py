"""Turning files into PaperSubmitted records, and producing them to `sciqag.papers`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import msgspec

from schemas import PaperSubmitted, RecordError, decode, encode
from schemas import topics as T
from sciqag.ids import normalize_doi, paper_id_for

from ..kafka import bootstrap_servers, producer_options
from ..settings import Settings


def input_files(paths: Iterable[str | Path]) -> list[Path]:
    """Every regular, non-hidden file named or found under the directories, sorted.

    Non-PDFs are kept on purpose: the extractor rejects them with a reason, so the
    run reports them instead of skipping them silently.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(p for p in sorted(path.rglob("*")) if p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"no such file or directory: {path}")
    return found


def record_for_file(path: Path, *, source_feed: str = "cli", inline_limit: int = 0) -> PaperSubmitted:
    data = path.read_bytes()
    resolved = path.resolve()
    return PaperSubmitted(
        paper_id=paper_id_for(content=data, uri=resolved.as_uri()),
        title="",
        source_feed=source_feed,
        pdf_uri=resolved.as_uri(),
        pdf_bytes=data if 0 < len(data) <= inline_limit else None,
    )


def records_from_jsonl(path: Path) -> Iterator[PaperSubmitted]:
    """A feed file: one PaperSubmitted per line; paper_id may be left out when a DOI or pdf_uri is given."""
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = msgspec.json.decode(line)
            if isinstance(raw, dict) and not raw.get("paper_id"):
                raw["paper_id"] = paper_id_for(doi=raw.get("doi", ""), uri=raw.get("pdf_uri", ""))
            if isinstance(raw, dict) and raw.get("doi"):
                raw["doi"] = normalize_doi(raw["doi"]) or raw["doi"]
            yield decode(msgspec.json.encode(raw), PaperSubmitted)
        except (msgspec.DecodeError, RecordError, ValueError) as exc:
            raise ValueError(f"{path}:{lineno}: {exc}") from exc


async def produce(settings: Settings, records: Iterable[PaperSubmitted]) -> int:
    """Send the records to `sciqag.papers` on the configured broker; returns how many were sent."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(settings.broker_url), **producer_options(settings))
    sent = 0
    try:
        await producer.start()  # inside the try: a broker that cannot be reached still gets the client closed
        for record in records:
            await producer.send(T.PAPERS, key=record.paper_id.encode(), value=encode(record))
            sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent
