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
    requested: dict[str, int] = field(default_factory=dict)  # kind -> pairs this run asks of each paper


def make_run_job(paths: list[str], report: RunReport, *, timeout_s: float, linger_s: float) -> Job:
    async def job(worker: Running) -> int:
        loop = asyncio.get_running_loop()
        store = await worker.store()
        s = worker.settings
        report.requested = {"open": s.pairs_per_paper, **({"mcq": s.mcq_per_paper} if s.mcq_per_paper > 0 else {})}
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


KINDS = ("open", "mcq")


def _empty_step() -> dict:
    return {
        "requested": 0,
        "unparseable": 0,
        "failed_paper": 0,
        "generated": 0,
        "prefilter_dropped": {},
        "not_judged": 0,
        "judged": 0,
        "accepted": 0,
        "rejected": 0,
        "near_duplicates": 0,
        "unaccounted": 0,
    }


def paper_funnel(requested_default: dict[str, int], status: dict | None, rows: list[dict]) -> dict[str, dict]:
    """Where one paper's pairs went, by kind. `requested` is what was asked of the model for the paper: the
    generator's record of it (papers.pairs_requested), else this run's SCIQAG_PAIRS_PER_PAPER and
    SCIQAG_MCQ_PER_PAPER. It adds up:
    requested = generated + unparseable (the model's output had fewer usable pairs, or the multiple-choice request
    failed) + failed_paper (the paper failed at some stage: none of its pairs reach the table);
    generated = sum(prefilter_dropped) + not_judged (dead-lettered pair by pair) + judged + unaccounted (0 unless a
    record is missing); judged = accepted + rejected; near_duplicates is a part of judged (qa_pairs.duplicate_of)."""
    status = status or {}
    requested = dict(status.get("pairs_requested") or {}) or dict(requested_default)
    funnel = {kind: _empty_step() for kind in requested}
    if status.get("status") != "scored":  # failed at a stage (or unfinished): every pair asked for is lost with it
        for kind, n in requested.items():
            funnel[kind].update(requested=n, failed_paper=n)
        return funnel
    parsed = status.get("pairs_parsed") or {}
    not_judged = status.get("pairs_not_judged") or {}
    for reason, n in (status.get("prefilter_dropped") or {}).items():
        kind = "mcq" if reason.startswith("mcq_") else "open"
        step = funnel.setdefault(kind, _empty_step())
        step["prefilter_dropped"][reason.removeprefix("mcq_")] = n
    for row in rows:
        step = funnel.setdefault(row["kind"], _empty_step())
        step["judged"] += 1
        step["accepted" if row["accepted"] else "rejected"] += 1
        step["near_duplicates"] += bool(row.get("duplicate_of"))
    for kind, step in funnel.items():
        step["requested"] = requested.get(kind, 0)
        dropped = sum(step["prefilter_dropped"].values())
        step["not_judged"] = not_judged.get(kind, 0)
        # a papers row from before the funnel was recorded has no parsed count: what reached the judge and dropped
        step["generated"] = parsed.get(kind, dropped + step["not_judged"] + step["judged"])
        step["unparseable"] = step["requested"] - step["generated"]
        step["unaccounted"] = step["generated"] - dropped - step["not_judged"] - step["judged"]
    return funnel


def run_funnel(report: RunReport) -> dict:
    """Per paper and in total, by kind and for both kinds together (see paper_funnel)."""
    rows_by_paper: dict[str, list[dict]] = {}
    for row in report.qa_rows:
        rows_by_paper.setdefault(row["paper_id"], []).append(row)
    papers = {
        pid: paper_funnel(report.requested, report.status.get(pid), rows_by_paper.get(pid, [])) for pid in report.papers
    }
    total = {kind: _empty_step() for kind in KINDS if kind in report.requested}
    for funnel in papers.values():
        for kind, step in funnel.items():
            _add(total.setdefault(kind, _empty_step()), step)
    both = _empty_step()
    for step in total.values():
        _add(both, step)
    return {"papers": papers, "total": {**total, "all": both}}


def _add(into: dict, step: dict) -> None:
    for key, value in step.items():
        if isinstance(value, dict):
            for reason, n in value.items():
                into[key][reason] = into[key].get(reason, 0) + n
        else:
            into[key] += value


FUNNEL_LINES = (
    ("requested", "requested", 0),
    ("generated", "generated (parsed)", 1),
    ("unparseable", "unparseable", 1),
    ("failed_paper", "lost with failed papers", 1),
    ("prefilter_dropped", "dropped by the pre-filter", 2),
    ("not_judged", "not judged", 2),
    ("unaccounted", "unaccounted for", 2),
    ("judged", "judged", 2),
    ("accepted", "accepted", 3),
    ("rejected", "rejected", 3),
    ("near_duplicates", "near-duplicates", 3),
)


def format_funnel(report: RunReport, funnel: dict) -> list[str]:
    total = funnel["total"]
    kinds = [k for k in KINDS if k in total]
    lines = ["", f"where the pairs went {'':<14}" + "".join(f"{k:>7}" for k in [*kinds, "all"])]
    for key, label, depth in FUNNEL_LINES:
        if key == "unaccounted" and not total["all"]["unaccounted"]:
            continue
        if key == "prefilter_dropped":
            values = [sum(total[k][key].values()) for k in [*kinds, "all"]]
        else:
            values = [total[k][key] for k in [*kinds, "all"]]
        lines.append(f"{'  ' * depth + label:<34}" + "".join(f"{v:>7}" for v in values))
        if key == "prefilter_dropped":
            for reason in sorted(total["all"][key]):
                row = [total[k][key].get(reason, 0) for k in [*kinds, "all"]]
                lines.append(f"{'  ' * (depth + 1) + reason:<34}" + "".join(f"{v:>7}" for v in row))
    columns = ("requested", "generated", "unparseable", "prefilter_dropped", "not_judged", "judged", "accepted")
    heads = ("asked", "parsed", "unparsed", "filtered", "unjudged", "judged", "accepted", "dups")
    lines += ["", f"{'per paper (open + mcq)':<40}" + "".join(f"{h:>9}" for h in heads)]
    for pid, path in report.papers.items():
        f = _empty_step()
        for step in funnel["papers"][pid].values():
            _add(f, step)
        values = [sum(f[c].values()) if isinstance(f[c], dict) else f[c] for c in columns] + [f["near_duplicates"]]
        status = report.status.get(pid, {}).get("status", "unfinished")
        lines.append(
            f"  {path.name[:38]:<38}"
            + "".join(f"{v:>9}" for v in values)
            + ("" if status == "scored" else f"  ({status}: all {f['requested']} lost)")
        )
    return lines


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
    lines += format_funnel(report, run_funnel(report))
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
        "funnel": run_funnel(report),
        "generated_tokens": _counter_sum(metrics.LLM_TOKENS, kind="generated"),
        "wall_seconds": time.monotonic() - report.started,
        "peak_rss_mib": {"worker": _peak_rss_mib("self"), "largest_child": _peak_rss_mib("children")},
    }
