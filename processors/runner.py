"""Starting a worker (with whatever embedded services it needs) and the `run` job on top of it."""
from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

from prometheus_client import start_http_server

from schemas import PaperSubmitted, encode
from sciqag.export import racar_means

from . import metrics
from .embedded import start_orphan_reaper, tansu_broker
from .models import prepare_bundled_model
from .publish import input_files, record_for_file
from .settings import Settings
from .stages import Stages

log = logging.getLogger("sciqag")

Job = Callable[["faust.App", Stages], Awaitable[int]]  # noqa: F821


def configure_logging(level: str) -> None:
    # vLLM reads its level at import; keep its per-layer warnings out of a normal run
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "INFO" if level.upper() in ("INFO", "DEBUG") else "ERROR")
    os.environ.setdefault("TQDM_DISABLE", "1")
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    for noisy in ("vllm", "aiokafka", "faust", "mode", "transformers", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))


class RepeatFilter(logging.Filter):
    """Lets a message through once per `window_s` seconds per (logger, level, format string).

    aiokafka logs every failed reconnect to a broker that is down at ERROR level: ~75 lines a second
    (measured with the broker cut off for 20 s). The first one shows at once; the rest are counted, and
    the next one let through says how many were held back.
    """

    def __init__(self, window_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window_s, self.clock = window_s, clock
        self._last: dict[tuple, tuple[float, int]] = {}  # key -> (when last let through, held back since)

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last[0] < self.window_s:
            self._last[key] = (last[0], last[1] + 1)
            return False
        if last is not None and last[1]:
            record.msg = f"{record.msg} ({last[1]} more like this in the last {now - last[0]:.0f} s)"
        self._last[key] = (now, 0)
        return True


def quiet_repeated_kafka_logs(window_s: float = 30.0) -> None:
    """Attach one RepeatFilter to every aiokafka logger (a filter on a parent does not see its children's records)."""
    import aiokafka  # noqa: F401  (imports its modules, which create the loggers)

    repeat = RepeatFilter(window_s)
    for name in list(logging.Logger.manager.loggerDict):
        if name == "aiokafka" or name.startswith("aiokafka."):
            logger = logging.getLogger(name)
            if not any(isinstance(f, RepeatFilter) for f in logger.filters):
                logger.addFilter(repeat)


def run_worker(settings: Settings, job: Job | None = None) -> int:
    """Run the Faust worker until it is stopped (or `job` finishes); returns the exit code."""
    import faust

    from .app import build_app

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _fresh_event_loop()
    reaper = start_orphan_reaper()
    exit_code = {"code": 0}
    try:
        with contextlib.ExitStack() as stack:
            broker = settings.broker_url
            if not broker:
                broker = stack.enter_context(tansu_broker(log_file=settings.data_dir / "tansu.log"))
            model_dir = None
            if set(settings.agents) & {"generator", "judge"} and not settings.llm_url:
                model_dir = settings.model or str(prepare_bundled_model())
            app, stages = build_app(settings, broker, model_dir)
            quiet_repeated_kafka_logs()
            # the start-up heap (Faust, aiokafka, vLLM's modules: ~200k objects) would otherwise be walked by every
            # full collection while records stream through; the sink benchmark decoded 2-3x slower without this
            gc.collect()
            gc.freeze()
            stack.callback(stages.close)
            start_http_server(settings.metrics_port, addr="0.0.0.0")
            log.info("metrics on http://127.0.0.1:%d/metrics", settings.metrics_port)

            if job is not None:

                @app.task
                async def run_job() -> None:
                    try:
                        exit_code["code"] = await job(app, stages)
                    except Exception:
                        log.exception("the job failed")
                        exit_code["code"] = 1
                    finally:
                        os.kill(os.getpid(), signal.SIGTERM)  # a graceful stop of the whole worker

            worker = faust.Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
            worker.spinner = None  # its cursor escapes would land in the summary on stdout
            try:
                worker.execute_from_commandline()
            except SystemExit as exc:
                if exc.code not in (0, None) and exit_code["code"] == 0:
                    exit_code["code"] = int(exc.code) if isinstance(exc.code, int) else 1
            if app.crash_reason is not None and exit_code["code"] == 0:
                exit_code["code"] = 1
    finally:
        reaper.kill()
    return exit_code["code"]


def _fresh_event_loop() -> None:
    """Faust takes the current loop and closes it when the worker stops: a second worker in the same process
    (the benchmarks run several) needs a new one."""
    try:
        closed = asyncio.get_event_loop().is_closed()
    except RuntimeError:
        closed = True
    if closed:
        asyncio.set_event_loop(asyncio.new_event_loop())


# -- the `run` job ----------------------------------------------------------------------------


@dataclass
class RunReport:
    started: float = field(default_factory=time.monotonic)
    papers: dict[str, Path] = field(default_factory=dict)  # paper_id -> file
    status: dict[str, dict] = field(default_factory=dict)
    qa_rows: list[dict] = field(default_factory=list)


class Progress:
    """One line that redraws on a terminal, or a line every few seconds in a log."""

    def __init__(self, total: int, stream=sys.stderr) -> None:
        self.total, self.stream = total, stream
        self.tty = stream.isatty()
        self._last_line, self._last_time = "", 0.0

    def update(self, scored: int, failed: int, elapsed: float) -> None:
        done = scored + failed
        width = 30
        filled = int(width * done / self.total) if self.total else width
        line = (f"[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} papers "
                f"({scored} scored, {failed} failed) {int(elapsed // 60):02d}:{int(elapsed % 60):02d}")
        if self.tty:
            self.stream.write("\r" + line)
            self.stream.flush()
        elif line != self._last_line and (time.monotonic() - self._last_time > 10 or done == self.total):
            self.stream.write(line + "\n")
            self.stream.flush()
            self._last_time = time.monotonic()
        self._last_line = line

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def make_run_job(paths: list[str], report: RunReport, *, timeout_s: float, linger_s: float) -> Job:
    async def job(app, stages: Stages) -> int:
        loop = asyncio.get_running_loop()
        store = await loop.run_in_executor(None, stages.store)
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
            await stages.topics.papers.send(key=record.paper_id.encode(), value=encode(record))
        print(f"published {len(records)} papers; waiting for them to be scored or dead-lettered", file=sys.stderr)
        ids = list(report.papers)
        report.status, code = await wait_for_papers(stages, store, ids, submitted=submitted, started=report.started,
                                                    timeout_s=timeout_s)
        if code:
            return code
        rows = await loop.run_in_executor(None, store.qa_rows, ids)
        # this run's pairs: rows of an older prompt version (other qa_ids) stay in the table but are not counted
        report.qa_rows = [r for r in rows if r["scored_at"].timestamp() >= submitted - 1]
        if linger_s > 0:
            print(f"done; metrics stay up on :{stages.settings.metrics_port} for {linger_s:.0f} s", file=sys.stderr)
            await asyncio.sleep(linger_s)
        return 0

    return job


async def wait_for_papers(stages: Stages, store, ids: list[str], *, submitted: float, started: float,
                          timeout_s: float, poll_s: float = 1.0, progress: bool = True) -> tuple[dict[str, dict], int]:
    """Poll ClickHouse until every paper was decided (scored or failed) after `submitted`, with a progress line.

    Returns the papers' status rows and 0, or what was decided so far and an exit code (2: the LLM engine
    did not start, 3: timed out).
    """
    loop = asyncio.get_running_loop()
    bar = Progress(len(ids)) if progress else None
    deadline = time.monotonic() + timeout_s
    fresh: dict[str, dict] = {}
    try:
        while True:
            if stages.engine.error is not None and stages.engine.engine is None and \
                    set(stages.settings.agents) & {"generator", "judge"}:
                print(f"\nerror: the LLM engine did not start: {stages.engine.error}", file=sys.stderr)
                return fresh, 2
            status = await loop.run_in_executor(None, store.paper_status, ids)
            # a paper counts once it was decided in this run (a re-run sees the older rows too)
            fresh = {pid: s for pid, s in status.items() if s["updated_at"].timestamp() >= submitted - 1}
            scored = sum(1 for s in fresh.values() if s["status"] == "scored")
            if bar:
                bar.update(scored, len(fresh) - scored, time.monotonic() - started)
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
        *( [f"papers unfinished     {len(pending)}"] if pending else [] ),
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
        f"peak memory           worker {_peak_rss_mib('self'):.0f} MiB, largest child {_peak_rss_mib('children'):.0f} MiB",
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
        "papers": {pid: {"file": str(path), **{k: v for k, v in report.status.get(pid, {"status": "unfinished"}).items()
                                              if k != "updated_at"}}
                   for pid, path in report.papers.items()},
        "qa_pairs": len(report.qa_rows),
        "accepted": sum(1 for r in report.qa_rows if r["accepted"]),
        "racar_means": racar_means(report.qa_rows),
        "generated_tokens": _counter_sum(metrics.LLM_TOKENS, kind="generated"),
        "wall_seconds": time.monotonic() - report.started,
        "peak_rss_mib": {"worker": _peak_rss_mib("self"), "largest_child": _peak_rss_mib("children")},
    }
