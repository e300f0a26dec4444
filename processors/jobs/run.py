"""`sciqag run`: publish every file under the paths into a worker of its own, wait until each paper is scored or
dead-lettered, and summarise."""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from schemas import PaperSubmitted
from schemas import topics as T
from sciqag.export import racar_means

from .. import metrics
from ..ingest.publish import input_files, record_for_file
from ..pipeline.worker import Job, Running
from ..progress import Progress

log = logging.getLogger("sciqag")


@dataclass
class RunReport:
    started: float = field(default_factory=time.monotonic)
    papers: dict[str, Path] = field(default_factory=dict)  # paper_id -> file
    status: dict[str, dict] = field(default_factory=dict)
    qa_rows: list[dict] = field(default_factory=list)


def make_run_job(paths: list[str], report: RunReport, *, timeout_s: float, linger_s: float) -> Job:
    async def job(worker: Running) -> int:
        loop = asyncio.get_running_loop()
        store = await worker.store()
        files = input_files(paths)
        records: list[PaperSubmitted] = []
        for path in files:
            record = record_for_file(path, source_feed="sciqag-run")
            if record.paper_id in report.papers:
                log.warning("%s has the same content as %s; it is processed once", path, report.papers[record.paper_id])
                continue
            report.papers[record.paper_id] = path
            records.append(record)
        submitted = time.time()
        for record in records:
            await worker.send(T.PAPERS, record.paper_id, record)
        print(f"published {len(records)} papers; waiting for them to be scored or dead-lettered", file=sys.stderr)
        ids = list(report.papers)
        report.status, code = await wait_for_papers(
            worker, store, ids, submitted=submitted, started=report.started, timeout_s=timeout_s
        )
        if code:
            return code
        rows = await loop.run_in_executor(None, store.qa_rows, ids)
        # this run's pairs: rows of an older prompt version (other qa_ids) stay in the table but are not counted
        report.qa_rows = [r for r in rows if r["scored_at"].timestamp() >= submitted - 1]
        if linger_s > 0:
            print(f"done; metrics stay up on :{worker.settings.metrics_port} for {linger_s:.0f} s", file=sys.stderr)
            await asyncio.sleep(linger_s)
        return 0

    return job


async def wait_for_papers(
    worker: Running,
    store,
    ids: list[str],
    *,
    submitted: float,
    started: float,
    timeout_s: float,
    poll_s: float = 1.0,
    progress: bool = True,
) -> tuple[dict[str, dict], int]:
    """Poll ClickHouse until every paper was decided (scored or failed) after `submitted`, with a progress line.

    Returns the papers' status rows and 0, or what was decided so far and an exit code (2: the LLM engine
    did not start, 3: timed out).
    """
    loop = asyncio.get_running_loop()
    bar = Progress(len(ids), started=started) if progress else None
    deadline = time.monotonic() + timeout_s
    fresh: dict[str, dict] = {}
    try:
        while True:
            if (failure := worker.llm_failure()) is not None:
                print(f"\nerror: the LLM engine did not start: {failure}", file=sys.stderr)
                return fresh, 2
            status = await loop.run_in_executor(None, store.paper_status, ids)
            # a paper counts once it was decided in this run (a re-run sees the older rows too)
            fresh = {pid: s for pid, s in status.items() if s["updated_at"].timestamp() >= submitted - 1}
            scored = sum(1 for s in fresh.values() if s["status"] == "scored")
            if bar:
                bar.update(len(fresh), f"{scored} scored, {len(fresh) - scored} failed")
            if len(fresh) == len(ids):
                return fresh, 0
            if time.monotonic() > deadline:
                print(f"\nerror: {len(ids) - len(fresh)} papers not finished after {timeout_s:.0f} s", file=sys.stderr)
                return fresh, 3
            await asyncio.sleep(poll_s)
    finally:
        if bar:
            bar.close()


def format_summary(report: RunReport) -> str:
    elapsed = time.monotonic() - report.started
    scored = [pid for pid, s in report.status.items() if s["status"] == "scored"]
    failed = [pid for pid, s in report.status.items() if s["status"] == "failed"]
    pending = [pid for pid in report.papers if pid not in report.status]
    accepted = sum(1 for r in report.qa_rows if r["accepted"])
    generated = _counter_sum(metrics.LLM_TOKENS, kind="generated")
    means = racar_means(report.qa_rows)
    lines = [
        "",
        "sciqag run summary",
        "------------------",
        f"papers submitted      {len(report.papers)}",
        f"papers scored         {len(scored)}",
        f"papers failed         {len(failed)}",
        *([f"papers unfinished     {len(pending)}"] if pending else []),
        f"QA pairs stored       {len(report.qa_rows)}",
        f"QA pairs accepted     {accepted}",
    ]
    for dim, value in means.items():
        lines.append(f"mean {dim:<16} {'-' if math.isnan(value) else f'{value:.2f}'}")
    lines += [
        f"wall time             {elapsed:.1f} s",
        f"papers/min            {len(report.status) / (elapsed / 60):.2f}" if elapsed > 0 else "",
        f"generated tokens      {int(generated)}",
        f"generated tokens/s    {generated / elapsed:.1f}" if elapsed > 0 else "",
        f"peak memory           worker {_peak_rss_mib('self'):.0f} MiB, "
        f"largest child {_peak_rss_mib('children'):.0f} MiB",
    ]
    if failed:
        lines += ["", "failed papers:"]
        for pid in failed:
            s = report.status[pid]
            lines.append(f"  {report.papers[pid]}: {s['stage']} {s['error_kind']}: {s['error_message'][:200]}")
    return "\n".join(line for line in lines if line is not None)


def _peak_rss_mib(who: str) -> float:
    """Peak resident memory of this process, or of its largest finished child (vLLM's EngineCore)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF if who == "self" else resource.RUSAGE_CHILDREN)
    return usage.ru_maxrss / 1024  # KiB on Linux


def _counter_sum(counter, **labels) -> float:
    total = 0.0
    for metric in counter.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def summary_dict(report: RunReport) -> dict:
    return {
        "papers": {
            pid: {
                "file": str(path),
                **{k: v for k, v in report.status.get(pid, {"status": "unfinished"}).items() if k != "updated_at"},
            }
            for pid, path in report.papers.items()
        },
        "qa_pairs": len(report.qa_rows),
        "accepted": sum(1 for r in report.qa_rows if r["accepted"]),
        "racar_means": racar_means(report.qa_rows),
        "generated_tokens": _counter_sum(metrics.LLM_TOKENS, kind="generated"),
        "wall_seconds": time.monotonic() - report.started,
        "peak_rss_mib": {"worker": _peak_rss_mib("self"), "largest_child": _peak_rss_mib("children")},
    }
