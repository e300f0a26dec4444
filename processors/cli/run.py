"""`sciqag run` (the main job on files, everything embedded that is not configured) and `sciqag worker`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import Command, common_options, engine_options, settings_from


def _run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="PDF files or directories")
    p.add_argument("--timeout", type=float, default=3600, help="give up after this many seconds (default 3600)")
    p.add_argument("--linger", type=float, default=0, help="keep the metrics endpoint up this long after finishing")
    p.add_argument("--summary-json", type=Path, help="also write the summary as JSON to this file")
    common_options(p)
    engine_options(p)


def run(args) -> int:
    from ..ingest.publish import input_files
    from ..jobs.run import RunReport, format_summary, make_run_job, summary_dict
    from ..logs import configure_logging
    from ..pipeline.worker import run_worker

    settings = settings_from(args)
    configure_logging(settings.log_level_or("WARNING"))
    files = input_files(args.paths)  # fail fast on a missing path, before anything starts
    if not files:
        raise ValueError("no files found under the given paths")
    roots = {str(p.resolve().parent) for p in files}
    settings = settings.with_overrides(file_roots=sorted(set(settings.file_roots) | roots))
    report = RunReport()
    code = run_worker(settings, make_run_job(args.paths, report, timeout_s=args.timeout, linger_s=args.linger))
    print(format_summary(report))
    if args.summary_json:
        args.summary_json.write_text(json.dumps(summary_dict(report), indent=2) + "\n")
    return code


def _worker_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--agents", help="comma-separated subset of extractor,generator,judge,sink (default: all)")
    common_options(p)
    engine_options(p)


def worker(args) -> int:
    from ..logs import configure_logging
    from ..pipeline.worker import run_worker

    settings = settings_from(args)
    configure_logging(settings.log_level_or("INFO"))  # a long-running service logs at INFO unless told otherwise
    return run_worker(settings)


COMMANDS = {
    "run": Command(
        _run_arguments,
        run,
        "Start what is needed, publish every file under PATH, wait until each paper is scored or "
        "dead-lettered, print a summary, stop everything. Re-running on the same --data-dir replaces rows "
        "instead of duplicating them.",
    ),
    "worker": Command(_worker_arguments, worker, "Run the agents until stopped (SIGTERM/Ctrl-C)."),
}
