"""Replay: publish stored papers to `sciqag.papers` again, chosen by id or by when they were last stored.

The paper keeps its paper_id, so its pairs come back under the same qa_ids and replace the stored ones
(ReplacingMergeTree); pairs the new run no longer has are deleted by the sink (Store.prune_pairs). A paper
is refetched from its source_uri: papers that were sent inline (`inline:<name>`) have no stored PDF and are
reported as skipped.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from schemas import PaperSubmitted
from schemas.ddl import PAPERS_TABLE

from ..errors import ConfigError
from ..settings import Settings
from ..store import Store, open_store
from .publish import produce

STATUSES = ("scored", "failed", "any")


@dataclass
class Selection:
    records: list[PaperSubmitted] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (paper_id, why)
    missing: list[str] = field(default_factory=list)  # requested ids the store does not have


def parse_time(text: str) -> datetime:
    """ISO 8601 (`2026-11-21`, `2026-11-21T08:00`, `...+03:00`); without a zone it is UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"not an ISO 8601 time: {text!r} (e.g. 2026-11-21 or 2026-11-21T08:00:00Z)") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def select(
    store: Store,
    *,
    paper_ids: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    status: str = "any",
) -> Selection:
    """The papers to replay: by id, and/or those whose latest outcome was stored in [since, until)."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}")
    where, params = [], {}
    if paper_ids is not None:
        where.append("paper_id IN {ids:Array(String)}")
        params["ids"] = list(paper_ids)
    if since is not None:
        where.append("updated_at >= {since:DateTime64(3, 'UTC')}")
        params["since"] = since.astimezone(UTC)
    if until is not None:
        where.append("updated_at < {until:DateTime64(3, 'UTC')}")
        params["until"] = until.astimezone(UTC)
    if status != "any":
        where.append("status = {status:String}")
        params["status"] = status
    rows = store.query(
        "SELECT paper_id, doi, title, journal, categories, source_uri, source_feed "
        f"FROM `{store.database}`.{PAPERS_TABLE} FINAL {'WHERE ' + ' AND '.join(where) if where else ''} "
        "ORDER BY updated_at, paper_id",
        params or None,
    )
    selection = Selection()
    for row in rows:
        uri = row["source_uri"]
        if not uri.startswith(("file://", "http://", "https://")):
            why = (
                "it was sent inline and its PDF is not stored"
                if uri.startswith("inline:")
                else f"no refetchable source ({uri!r})"
            )
            selection.skipped.append((row["paper_id"], why))
            continue
        selection.records.append(
            PaperSubmitted(
                paper_id=row["paper_id"],
                doi=row["doi"],
                title=row["title"],
                journal=row["journal"],
                categories=list(row["categories"]),
                source_feed=row["source_feed"],
                pdf_uri=uri,
            )
        )
    if paper_ids is not None:
        found = {row["paper_id"] for row in rows}
        selection.missing = [pid for pid in dict.fromkeys(paper_ids) if pid not in found]
    return selection


def replay(
    settings: Settings,
    *,
    paper_ids: list[str],
    since: str | None,
    until: str | None,
    status: str,
    every: bool,
    out: Path | None,
    dry_run: bool,
) -> int:
    """`sciqag replay`: select, then publish (or list, or write as JSONL). Returns the exit code: 1 when a requested
    paper id is not stored."""
    since_at = parse_time(since) if since else None
    until_at = parse_time(until) if until else None
    if not (paper_ids or since_at or until_at or every):
        raise ConfigError("choose the papers: --paper-id/--ids-file, --since/--until, or --all")
    if not (out or dry_run or settings.broker_url):
        raise ConfigError("replay publishes to a broker: set SCIQAG_BROKER_URL or --broker, or write --out FILE.jsonl")
    with open_store(settings) as store:
        selection = select(store, paper_ids=paper_ids or None, since=since_at, until=until_at, status=status)
    for paper_id, why in selection.skipped:
        print(f"skipped {paper_id}: {why}", file=sys.stderr)
    for paper_id in selection.missing:
        print(f"not found: {paper_id} is not in the papers table", file=sys.stderr)
    if dry_run:
        for record in selection.records:
            print(f"{record.paper_id}\t{record.pdf_uri}")
        print(f"would replay {len(selection.records)} papers", file=sys.stderr)
    elif out:
        with open(out, "wb") as f:
            for record in selection.records:
                f.write(msgspec.json.encode(record) + b"\n")
        print(f"wrote {len(selection.records)} papers to {out}; publish them with `sciqag publish {out}`")
    else:
        sent = asyncio.run(produce(settings, selection.records))
        print(f"replayed {sent} papers to sciqag.papers")
    return 1 if selection.missing else 0
