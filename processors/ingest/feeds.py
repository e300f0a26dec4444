"""`sciqag feed`: publisher feeds -> PaperSubmitted records on `sciqag.papers`, continuously.

One ingester polls every configured source on its own interval. Per source it
keeps, in a SQLite file under the state folder, a checkpoint (OAI-PMH `from` date
and resumptionToken, Crossref cursor and index date, arXiv newest date) and the
HTTP validators for conditional GET. A table of every paper id ever submitted
deduplicates across sources and restarts: a paper is marked only after the broker
acknowledged it (at-least-once: a crash between the two re-submits it once, and
the pipeline's deterministic ids make that harmless).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
import tomllib
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlparse, urlunparse

from prometheus_client import Counter

from schemas import DeadLetter, PaperSubmitted, encode
from schemas import topics as T
from sciqag.feed_formats import PARSERS, FeedEntry, FeedFormatError, FeedPage, language_hint
from sciqag.ids import normalize_doi, paper_id_for

from .. import metrics
from ..errors import FeedConfigError, SciqagError, SourceError
from ..kafka import bootstrap_servers, producer_options
from ..settings import Settings
from ..sources import checked_session, http_get

log = logging.getLogger("sciqag.feed")

KINDS = ("arxiv", "rss", "atom", "oai-pmh", "crossref", "inbox")  # "atom" is "rss": both read RSS and Atom
# what was read despite a problem (an ill-formed RSS document, records in an unknown metadata format, ...)
FEED_WARNINGS = Counter(
    "sciqag_feed_warnings_total",
    "Feed documents read despite a problem, by source and kind (recovered_malformed_feed...).",
    ["source", "kind"],
)
RETRYABLE = {"fetch_failed", "fetch_timeout", "http_5xx", "http_429"}


@dataclass
class SourceConfig:
    name: str
    kind: str
    url: str = ""  # arxiv, rss, oai-pmh, crossref: the listing URL (its own query parameters are kept)
    path: str = ""  # inbox: the folder PDFs are dropped into
    poll_interval_s: float = 900.0
    min_request_interval_s: float = 1.0  # rate limit: at least this long between two requests to the source
    timeout_s: float = 30.0
    retries: int = 3  # on connection errors, timeouts, 5xx and 429
    retry_backoff_s: float = 2.0  # first retry delay, doubled each time (capped at 60 s)
    page_size: int = 100
    max_pages: int = 20  # per poll
    metadata_prefix: str = "oai_dc"  # OAI-PMH
    set: str = ""  # OAI-PMH setSpec
    from_date: str = ""  # OAI-PMH / Crossref: where the first harvest starts (YYYY-MM-DD)
    pdf_template: str = ""  # for entries with a DOI and no PDF link, e.g. "https://example.org/doi/pdf/{doi}"
    journal: str = ""  # default journal for entries that do not name one
    categories: list[str] = field(default_factory=list)
    language: str = ""  # default language hint ("en", "ru")
    allow_hosts: list[str] = field(default_factory=list)  # hosts fetched even if private/loopback (SSRF rule)


@dataclass
class FeedConfig:
    sources: list[SourceConfig]
    state_dir: Path
    user_agent: str = "sciqag-stream feed ingester (+https://example.org/sciqag-stream)"
    allow_hosts: list[str] = field(default_factory=list)
    max_feed_bytes: int = 20 * 1024 * 1024
    max_pdf_bytes: int = 50 * 1024 * 1024  # inbox files over this are dead-lettered


def load_config(path: Path, default_state_dir: Path) -> FeedConfig:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise FeedConfigError(f"{path}: not valid TOML: {exc}") from exc
    top = {f.name for f in fields(FeedConfig)} - {"sources"}
    unknown = set(raw) - top - {"source"}
    if unknown:
        raise FeedConfigError(f"{path}: unknown settings {sorted(unknown)}; known: {sorted(top | {'source'})}")
    known = {f.name for f in fields(SourceConfig)}
    sources, names = [], set()
    for i, entry in enumerate(raw.get("source") or [], 1):
        bad = set(entry) - known
        if bad:
            raise FeedConfigError(f"{path}: [[source]] #{i}: unknown keys {sorted(bad)}; known: {sorted(known)}")
        if "name" not in entry or "kind" not in entry:
            raise FeedConfigError(f"{path}: [[source]] #{i} needs a name and a kind")
        src = SourceConfig(**entry)
        if src.kind not in KINDS:
            raise FeedConfigError(f"{path}: source {src.name!r}: kind must be one of {', '.join(KINDS)}")
        if src.kind == "inbox" and not src.path:
            raise FeedConfigError(f"{path}: source {src.name!r}: an inbox needs a path")
        if src.kind != "inbox" and urlparse(src.url).scheme not in ("http", "https"):
            raise FeedConfigError(f"{path}: source {src.name!r}: needs an http(s) url")
        if src.name in names:
            raise FeedConfigError(f"{path}: two sources are named {src.name!r}")
        names.add(src.name)
        sources.append(src)
    if not sources:
        raise FeedConfigError(f"{path}: no [[source]] configured")
    settings = {k: v for k, v in raw.items() if k != "source"}
    state_dir = Path(settings.pop("state_dir", default_state_dir))
    return FeedConfig(sources=sources, state_dir=state_dir, **settings)


class FeedState:
    """Checkpoints, HTTP validators and submitted paper ids, in one SQLite file (survives restarts)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.executescript("""
            CREATE TABLE IF NOT EXISTS checkpoint (source TEXT, key TEXT, value TEXT, PRIMARY KEY (source, key));
            CREATE TABLE IF NOT EXISTS http_cache (url TEXT PRIMARY KEY, etag TEXT, last_modified TEXT);
            CREATE TABLE IF NOT EXISTS submitted (paper_id TEXT PRIMARY KEY, source TEXT, entry_id TEXT,
                                                  outcome TEXT, at TEXT);
        """)

    def checkpoint(self, source: str, key: str) -> str:
        row = self._db.execute("SELECT value FROM checkpoint WHERE source = ? AND key = ?", (source, key)).fetchone()
        return row[0] if row else ""

    def set_checkpoint(self, source: str, key: str, value: str) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO checkpoint VALUES (?, ?, ?)", (source, key, value))

    def validators(self, url: str) -> tuple[str, str]:
        row = self._db.execute("SELECT etag, last_modified FROM http_cache WHERE url = ?", (url,)).fetchone()
        return (row[0], row[1]) if row else ("", "")

    def set_validators(self, url: str, etag: str, last_modified: str) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO http_cache VALUES (?, ?, ?)", (url, etag, last_modified))

    def seen(self, paper_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM submitted WHERE paper_id = ?", (paper_id,)).fetchone() is not None

    def mark(self, paper_id: str, source: str, entry_id: str, outcome: str) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO submitted VALUES (?, ?, ?, ?, ?)",
                (paper_id, source, entry_id, outcome, datetime.now(UTC).isoformat()),
            )

    def close(self) -> None:
        self._db.close()


class Publisher(Protocol):
    async def submit(self, record: PaperSubmitted) -> None: ...

    async def dead_letter(self, record: DeadLetter) -> None: ...


class KafkaPublisher:
    """Each record is acknowledged by the broker (acks=all) before the ingester marks it submitted."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer = None

    async def __aenter__(self) -> KafkaPublisher:
        from aiokafka import AIOKafkaProducer

        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers(self.settings.broker_url), **producer_options(self.settings)
        )
        try:
            await self._producer.start()
        except BaseException:
            await self._producer.stop()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        await self._producer.stop()

    async def submit(self, record: PaperSubmitted) -> None:
        await self._producer.send_and_wait(T.PAPERS, key=record.paper_id.encode(), value=encode(record))

    async def dead_letter(self, record: DeadLetter) -> None:
        await self._producer.send_and_wait(T.DLQ, key=record.paper_id.encode(), value=encode(record))


@dataclass
class PollStats:
    pages: int = 0
    entries: int = 0
    new: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # "kind: message", once per document that had one
    not_modified: bool = False

    def read(self, page: FeedPage) -> FeedPage:
        self.pages += 1
        self.warnings += page.warnings
        return page


class FetchFailed(SourceError):
    """A feed request that failed for good (after its retries), or a protocol error the source answered."""


def with_params(url: str, **params: str) -> str:
    """The URL with these query parameters set (others kept); Crossref `filter` values are appended, not replaced."""
    parts = urlparse(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    for key, value in params.items():
        if key == "filter" and query.get("filter"):
            query["filter"] = f"{query['filter']},{value}"
        else:
            query[key] = value
    return urlunparse(parts._replace(query=urlencode(query, safe=":,*")))


class FeedIngester:
    def __init__(self, config: FeedConfig, state: FeedState, publisher: Publisher, session=None) -> None:
        self.config, self.state, self.publisher = config, state, publisher
        self._session = session
        self._last_request: dict[str, float] = {}
        self._validators: dict[str, tuple[str, str]] = {}
        self._content_types: dict[str, str] = {}

    def _keep_validators(self, url: str) -> None:
        if url in self._validators:
            self.state.set_validators(url, *self._validators.pop(url))

    # -- HTTP -------------------------------------------------------------------------------------
    async def _fetch(self, source: SourceConfig, url: str, *, conditional: bool = False) -> bytes | None:
        """The body, or None when a conditional GET answered 304. Retries transient failures with backoff.

        A conditional GET's new validators wait in `_validators` until the caller read the body completely
        (`_keep_validators`): a document that could not be read whole is fetched in full again next time."""
        headers = {"User-Agent": self.config.user_agent}
        if conditional:
            etag, modified = self.state.validators(url)
            if etag:
                headers["If-None-Match"] = etag
            if modified:
                headers["If-Modified-Since"] = modified
        allowed = frozenset(self.config.allow_hosts) | frozenset(source.allow_hosts)
        delay = source.retry_backoff_s
        for attempt in range(source.retries + 1):
            wait = source.min_request_interval_s - (time.monotonic() - self._last_request.get(source.name, -1e9))
            if wait > 0:
                await asyncio.sleep(wait)
            self._last_request[source.name] = time.monotonic()
            retry_after = 0.0
            try:
                resp = await http_get(
                    url,
                    allowed_hosts=allowed,
                    timeout_s=source.timeout_s,
                    max_bytes=self.config.max_feed_bytes,
                    headers=headers,
                    session=self._session,
                )
                if resp.status == 304:
                    return None
                if resp.status == 200:
                    if conditional:  # (RSS/Atom: its charset, for feedparser)
                        self._validators[url] = (resp.headers.get("etag", ""), resp.headers.get("last-modified", ""))
                        self._content_types[url] = resp.headers.get("content-type", "")
                    return resp.body
                kind = "http_5xx" if resp.status >= 500 else "http_429" if resp.status == 429 else "http_error"
                error = FetchFailed(kind=kind, message=f"GET {url} answered {resp.status}")
                if resp.status == 429 and resp.headers.get("retry-after", "").isdigit():
                    retry_after = float(resp.headers["retry-after"])
            except SourceError as exc:
                error = FetchFailed(kind=exc.kind, message=str(exc))
            if error.kind not in RETRYABLE or attempt == source.retries:
                raise error
            log.info("feed %s: %s; retry %d in %.1f s", source.name, error, attempt + 1, max(delay, retry_after))
            await asyncio.sleep(min(max(delay, retry_after), 60.0))
            delay *= 2
        raise AssertionError("unreachable")

    # -- entries ----------------------------------------------------------------------------------
    async def _take(
        self,
        source: SourceConfig,
        entry: FeedEntry,
        base_url: str,
        stats: PollStats,
        seen_before: set[str] | None = None,
        *,
        paper_id: str = "",
        local_file: bool = False,
    ) -> None:
        """Submit one entry unless its paper was submitted before (from any source).

        The paper id is the DOI's when there is one, else the PDF link's; inbox files pass theirs (DOI or bytes).
        """
        stats.entries += 1
        doi = normalize_doi(entry.doi)
        pdf = urljoin(base_url, entry.pdf_url) if entry.pdf_url else ""
        if not pdf and doi and source.pdf_template:
            pdf = source.pdf_template.format(doi=doi, doi_quoted=quote(doi, safe=""))
        pid = paper_id or paper_id_for(doi=doi, uri=pdf or entry.entry_id)
        if self.state.seen(pid):
            stats.duplicates += 1
            metrics.FEED_PAPERS.labels(source.name, "duplicate").inc()
            if seen_before is not None:
                seen_before.add(pid)
            return
        problem = None
        if not pdf:
            problem = (
                "no_pdf_link",
                f"feed entry {entry.entry_id} ({entry.title[:80]!r}) has no PDF link"
                + ("" if doi else " and no DOI for a pdf_template"),
            )
        elif urlparse(pdf).scheme not in ("http", "https") and not local_file:
            problem = (
                "unsafe_pdf_link",
                f"feed entry {entry.entry_id} links its PDF as {pdf[:200]!r}; only http(s) links are taken from feeds",
            )
        if problem:
            await self._dead_letter(source, pid, problem[0], problem[1], entry.entry_id, stats)
            return
        await self.publisher.submit(
            PaperSubmitted(
                paper_id=pid,
                doi=doi,
                title=entry.title,
                journal=entry.journal or source.journal,
                categories=entry.categories or list(source.categories),
                language=entry.language or language_hint(source.language),
                source_feed=source.name,
                pdf_uri=pdf,
            )
        )
        self.state.mark(pid, source.name, entry.entry_id, "submitted")
        stats.new += 1
        metrics.FEED_PAPERS.labels(source.name, "new").inc()

    async def _dead_letter(
        self, source: SourceConfig, pid: str, kind: str, message: str, where: str, stats: PollStats
    ) -> None:
        log.warning("feed %s: paper %s -> DLQ (%s): %s", source.name, pid, kind, message)
        await self.publisher.dead_letter(
            DeadLetter(
                stage="feed",
                paper_id=pid,
                error_kind=kind,
                message=message,
                source_topic=f"feed:{source.name}",
                source_uri=where,
            )
        )
        self.state.mark(pid, source.name, where, kind)
        stats.dead_lettered += 1
        metrics.FEED_PAPERS.labels(source.name, "dead_lettered").inc()
        metrics.DLQ.labels("feed", kind).inc()

    # -- one poll per kind ------------------------------------------------------------------------
    async def poll(self, source: SourceConfig) -> PollStats:
        """Poll one source once (every page it has for us). Never raises: errors are counted and logged."""
        stats = PollStats()
        try:
            await getattr(self, "_poll_" + source.kind.replace("-", "_"))(source, stats)
        except (FetchFailed, FeedFormatError) as exc:
            stats.errors.append(f"{exc.kind}: {exc}")
        except SciqagError as exc:  # any other error of the tree is still a reason, not a bug
            stats.errors.append(f"{exc.kind}: {exc}")
        except Exception as exc:  # an unexpected bug in one source must not stop the others
            log.exception("feed %s: poll failed", source.name)
            stats.errors.append(f"internal_error: {exc}")
        for error in stats.errors:
            kind = error.split(":", 1)[0]
            metrics.FEED_ERRORS.labels(source.name, kind).inc()
            log.warning("feed %s: %s", source.name, error)
        for warning in stats.warnings:
            FEED_WARNINGS.labels(source.name, warning.split(":", 1)[0]).inc()
            log.warning("feed %s: warning %s", source.name, warning)
        outcome = "error" if stats.errors else "not_modified" if stats.not_modified else "ok"
        metrics.FEED_POLLS.labels(source.name, outcome).inc()
        if not stats.errors:
            metrics.FEED_LAST_SUCCESS.labels(source.name).set(time.time())
        return stats

    async def _poll_rss(self, source: SourceConfig, stats: PollStats) -> None:
        """One document: RSS 0.9x/1.0/2.0 or Atom. Its HTTP validators (the checkpoint) are kept only when every
        entry was read: an ill-formed document that feedparser recovered, or one with entries it could not read,
        is fetched whole again next poll (the entries it did read are deduplicated then)."""
        body = await self._fetch(source, source.url, conditional=True)
        if body is None:
            stats.not_modified = True
            return
        page = stats.read(
            PARSERS["rss"](body, content_type=self._content_types.pop(source.url, ""), base_url=source.url)
        )
        for entry in page.entries:
            await self._take(source, entry, source.url, stats)
        if page.complete:
            self._keep_validators(source.url)

    _poll_atom = _poll_rss

    async def _poll_arxiv(self, source: SourceConfig, stats: PollStats) -> None:
        start, newest = 0, self.state.checkpoint(source.name, "newest_published")
        for _ in range(source.max_pages):
            url = with_params(source.url, start=str(start), max_results=str(source.page_size))
            page = stats.read(PARSERS["arxiv"](await self._fetch(source, url)))
            already: set[str] = set()
            for entry in page.entries:
                await self._take(source, entry, url, stats, already)
                newest = max(newest, entry.published)
            start += len(page.entries)
            # caught up: a page with nothing new (the listing is newest first), the end, or an empty page
            if (
                not page.entries
                or len(already) == len(page.entries)
                or (page.total is not None and start >= page.total)
            ):
                break
        if newest:
            self.state.set_checkpoint(source.name, "newest_published", newest)

    async def _poll_oai_pmh(self, source: SourceConfig, stats: PollStats) -> None:
        token = self.state.checkpoint(source.name, "resumption_token")
        since = self.state.checkpoint(source.name, "from") or source.from_date
        for _ in range(source.max_pages):
            if token:
                url = with_params(source.url, verb="ListRecords", resumptionToken=token)
            else:
                params = {"verb": "ListRecords", "metadataPrefix": source.metadata_prefix}
                if since:
                    params["from"] = since
                if source.set:
                    params["set"] = source.set
                url = with_params(source.url, **params)
            page = stats.read(PARSERS["oai-pmh"](await self._fetch(source, url)))
            if page.error_code == "badResumptionToken" and token:
                # tokens expire; the next poll starts the list again from the last complete harvest
                self.state.set_checkpoint(source.name, "resumption_token", "")
                raise FetchFailed(
                    kind="bad_resumption_token", message=f"the repository refused the saved token: {page.error_message}"
                )
            if page.error_code and page.error_code != "noRecordsMatch":
                raise FetchFailed(kind="oai_error", message=f"OAI-PMH error {page.error_code}: {page.error_message}")
            for entry in page.entries:
                await self._take(source, entry, url, stats)
            token = page.next_token
            self.state.set_checkpoint(source.name, "resumption_token", token)  # a restart resumes mid-list
            if not token:
                if page.response_date:  # the list is complete: the next harvest starts from this one's date
                    self.state.set_checkpoint(source.name, "from", page.response_date[:10])
                return

    async def _poll_crossref(self, source: SourceConfig, stats: PollStats) -> None:
        cursor = self.state.checkpoint(source.name, "cursor") or "*"
        since = self.state.checkpoint(source.name, "from_index_date") or source.from_date
        started = datetime.now(UTC).strftime("%Y-%m-%d")
        for _ in range(source.max_pages):
            params = {"rows": str(source.page_size), "cursor": cursor}
            if since:
                params["filter"] = f"from-index-date:{since}"
            url = with_params(source.url, **params)
            try:
                body = await self._fetch(source, url)
            except FetchFailed:
                if cursor != "*":  # Crossref cursors expire after a few minutes: start the listing again next time
                    self.state.set_checkpoint(source.name, "cursor", "")
                raise
            page = stats.read(PARSERS["crossref"](body))
            for entry in page.entries:
                await self._take(source, entry, url, stats)
            if not page.entries or not page.next_token:
                self.state.set_checkpoint(source.name, "cursor", "")
                self.state.set_checkpoint(source.name, "from_index_date", started)
                return
            cursor = page.next_token
            self.state.set_checkpoint(source.name, "cursor", cursor)

    async def _poll_inbox(self, source: SourceConfig, stats: PollStats) -> None:
        folder = Path(source.path)
        if not folder.is_dir():
            raise FetchFailed(kind="inbox_missing", message=f"inbox folder {folder} does not exist")
        for pdf in sorted(p for p in folder.iterdir() if p.suffix.lower() == ".pdf" and not p.name.startswith(".")):
            meta: dict = {}
            sidecar = pdf.with_suffix(".json")
            uri = pdf.resolve().as_uri()
            problem = None
            if sidecar.exists():
                try:
                    meta = json.loads(sidecar.read_text(encoding="utf-8"))
                    if not isinstance(meta, dict):
                        raise ValueError("not a JSON object")
                except (ValueError, UnicodeDecodeError) as exc:
                    problem = ("malformed_sidecar", f"{sidecar}: {exc}")
            size = pdf.stat().st_size
            if problem is None and size > self.config.max_pdf_bytes:
                problem = ("too_large", f"{pdf} is {size} bytes")
            if problem:  # identified by location: the DOI or the bytes cannot be trusted or read
                pid = paper_id_for(uri=uri)
                if not self.state.seen(pid):
                    stats.entries += 1
                    await self._dead_letter(source, pid, *problem, uri, stats)
                continue
            doi = normalize_doi(str(meta.get("doi", "")))
            pid = paper_id_for(doi=doi, content=pdf.read_bytes())
            entry = FeedEntry(
                entry_id=doi or pid,
                title=str(meta.get("title", "")),
                doi=doi,
                pdf_url=uri,
                journal=str(meta.get("journal", "")),
                categories=[str(c) for c in meta.get("categories") or []],
                language=language_hint(str(meta.get("language", ""))),
            )
            await self._take(source, entry, "", stats, paper_id=pid, local_file=True)
        self.state.set_checkpoint(source.name, "last_scan", datetime.now(UTC).isoformat())
        stats.pages += 1

    # -- the long-running loop --------------------------------------------------------------------
    async def run(self, stop: asyncio.Event, report=None) -> None:
        async def loop(source: SourceConfig) -> None:
            while not stop.is_set():
                stats = await self.poll(source)
                if report:
                    report(source, stats)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=source.poll_interval_s)
                except TimeoutError:
                    pass

        await asyncio.gather(*(loop(s) for s in self.config.sources))


def format_stats(source: SourceConfig, stats: PollStats) -> str:
    status = (
        ("error: " + "; ".join(stats.errors)[:300])
        if stats.errors
        else ("not modified" if stats.not_modified else "ok")
    )
    if stats.warnings:
        status += f"; {len(stats.warnings)} warning(s): " + "; ".join(stats.warnings)[:300]
    return (
        f"{source.name:<20} {source.kind:<9} {stats.pages:>5} {stats.entries:>7} {stats.new:>5} "
        f"{stats.duplicates:>10} {stats.dead_lettered:>13}  {status}"
    )


STATS_HEADER = (
    f"{'source':<20} {'kind':<9} {'pages':>5} {'entries':>7} {'new':>5} {'duplicates':>10} "
    f"{'dead-lettered':>13}  status"
)


async def run_feeds(config: FeedConfig, state: FeedState, publisher: KafkaPublisher, *, once: bool) -> int:
    """`sciqag feed`: every source once (a table, exit code 1 if one failed), or until SIGTERM/SIGINT."""
    import signal
    import sys

    try:
        # every connection resolved once and checked (the SSRF rule of processors/sources.py), no second lookup
        async with checked_session() as session, publisher:
            ingester = FeedIngester(config, state, publisher, session)
            if once:
                print(STATS_HEADER)
                failed = 0
                for source in config.sources:
                    stats = await ingester.poll(source)
                    failed += bool(stats.errors)
                    print(format_stats(source, stats), flush=True)
                return 1 if failed else 0
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            print(f"polling {len(config.sources)} sources; state in {config.state_dir}", file=sys.stderr, flush=True)
            await ingester.run(stop, report=lambda s, st: log.info("%s", format_stats(s, st)))
            return 0
    finally:
        state.close()
