"""Putting papers on `sciqag.papers`: `sciqag publish` (files, JSONL feeds), `sciqag feed` (publisher feeds) and
`sciqag replay` (stored papers again)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from ..errors import ConfigError
from .common import Command, common_options, settings_from


def _publish_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="PDF files, directories, or .jsonl feed files")
    p.add_argument(
        "--inline", action="store_true", help="send the PDF bytes in the record instead of a file:// location"
    )
    common_options(p)


def publish(args) -> int:
    from ..ingest.publish import input_files, produce, record_for_file, records_from_jsonl

    settings = settings_from(args)
    if not settings.broker_url:
        raise ConfigError(
            "publish needs a broker: set SCIQAG_BROKER_URL or --broker (use `sciqag run` for the embedded one)"
        )
    records = []
    for path in input_files(args.paths):
        if path.suffix == ".jsonl":
            records.extend(records_from_jsonl(path))
        else:
            records.append(
                record_for_file(
                    path, source_feed="sciqag-publish", inline_limit=settings.max_inline_bytes if args.inline else 0
                )
            )
    sent = asyncio.run(produce(settings, records))
    print(f"published {sent} papers to sciqag.papers")
    return 0


def _feed_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=Path("feeds.toml"), help="the sources (TOML; default feeds.toml)")
    p.add_argument(
        "--once",
        action="store_true",
        help="poll every source once, print a table and exit (exit code 1 if a source failed)",
    )
    p.add_argument("--metrics-port", type=int, help="Prometheus /metrics port (default 6067; --once: none)")
    common_options(p)


def feed(args) -> int:
    from ..ingest.feeds import FeedState, KafkaPublisher, load_config, run_feeds
    from ..logs import configure_logging, quiet_repeated_kafka_logs

    settings = settings_from(args)
    configure_logging(settings.log_level_or("INFO"))  # a long-running service logs at INFO unless told otherwise
    quiet_repeated_kafka_logs()  # a feed runs for days: a broker outage must not flood its log either
    if not settings.broker_url:
        raise ConfigError("feed needs a broker: set SCIQAG_BROKER_URL or --broker")
    if not args.config.exists():
        raise FileNotFoundError(f"feed config {args.config} not found (see README: Publisher feeds)")
    config = load_config(args.config, settings.data_dir / "feeds")
    port = args.metrics_port or (0 if args.once else 6067)
    if port:
        from prometheus_client import start_http_server

        start_http_server(port)
    return asyncio.run(
        run_feeds(config, FeedState(config.state_dir / "feeds.sqlite"), KafkaPublisher(settings), once=args.once)
    )


def _replay_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--paper-id", dest="paper_ids", action="append", metavar="ID", help="a paper to replay (repeatable)")
    p.add_argument("--ids-file", type=Path, help="a file of paper ids, one per line")
    p.add_argument("--since", help="papers stored at or after this ISO 8601 time, e.g. 2026-11-21T08:00")
    p.add_argument("--until", help="papers stored before this ISO 8601 time")
    p.add_argument(
        "--status",
        choices=["scored", "failed", "any"],
        default="any",
        help="only papers whose latest outcome is this (default any)",
    )
    p.add_argument("--all", action="store_true", help="every stored paper (with --status, every such paper)")
    p.add_argument("--out", type=Path, help="write the records as JSONL (for `sciqag publish`) instead of publishing")
    p.add_argument("--dry-run", action="store_true", help="list what would be replayed and publish nothing")
    common_options(p)


def replay(args) -> int:
    from ..ingest.replay import replay as replay_papers

    paper_ids = list(args.paper_ids or [])
    if args.ids_file:
        paper_ids += [line.strip() for line in args.ids_file.read_text().splitlines() if line.strip()]
    return replay_papers(
        settings_from(args),
        paper_ids=paper_ids,
        since=args.since,
        until=args.until,
        status=args.status,
        every=args.all,
        out=args.out,
        dry_run=args.dry_run,
    )


COMMANDS = {
    "publish": Command(_publish_arguments, publish),
    "feed": Command(
        _feed_arguments,
        feed,
        "Poll every source of the config file on its own interval and publish each new paper once "
        "(deduplicated by DOI, else PDF link or bytes, across sources and restarts). Checkpoints, HTTP "
        "validators and submitted ids live in <state_dir>/feeds.sqlite (default <data-dir>/feeds). See "
        "the README for the config format.",
    ),
    "replay": Command(
        _replay_arguments,
        replay,
        "Reads the chosen papers from ClickHouse and publishes them to sciqag.papers under their own "
        "paper_id: their pairs come back under the same qa_ids and replace the stored ones, and pairs "
        "the new run no longer has are deleted, so a replay never duplicates results. Papers are "
        "refetched from their source_uri; inline uploads are skipped (their PDF is not stored). The "
        "time range is on when a paper's latest outcome was stored (papers.updated_at), UTC unless a "
        "zone is given. On the embedded broker, run `sciqag run` on the files again instead.",
    ),
}
