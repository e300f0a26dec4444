"""Helpers for end-to-end tests: run the real `sciqag` CLI and read what it stored."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from processors.settings import Settings
from processors.store import Store

from .conftest import sciqag_exe

# small settings so a CPU run with the 135M model takes minutes, not hours
FAST = ["--pairs", "3", "--keywords", "5", "--mcq", "1", "--max-context-tokens", "1200", "--max-model-len", "4096"]
# output caps for FAST runs: twice what a well-formed answer needs. The bundled 135M model sometimes runs away inside
# a JSON string; with the default caps (2048 / 512) such an output costs minutes of CPU before it is rejected anyway
# OCR off unless a test asks for it: the real scan takes ~100 s of Tesseract (test_end_to_end OCRs it with a budget)
FAST_ENV = {"SCIQAG_GENERATION_MAX_TOKENS": "700", "SCIQAG_JUDGE_MAX_TOKENS": "320", "SCIQAG_OCR": "off"}


# what libraries print when they are not held quiet (processors/logs.py): their warnings, vLLM's and torch's start-up
# messages, the weight-loading and hub bars. None of it may reach a run's output below --log-level DEBUG
THIRD_PARTY_NOISE = re.compile(
    r"Warning:|FutureWarning|DeprecationWarning|UserWarning|Triton|NUMA|\[W\d{4} |Loading safetensors|it/s\]|"
    r"^(INFO|WARNING|DEBUG) \d\d-\d\d |\(EngineCore|huggingface|transformers|torch\.|vllm\.",
    re.MULTILINE,
)


def third_party_noise(output: str) -> list[str]:
    """The lines of `output` that libraries printed (THIRD_PARTY_NOISE)."""
    return [line for line in output.splitlines() if THIRD_PARTY_NOISE.search(line)]


@dataclass
class RunResult:
    returncode: int
    stdout: str
    stderr: str
    metrics: dict[tuple[str, tuple], float]
    summary: dict


def run_sciqag(
    paths: list[Path],
    data_dir: Path,
    port: int,
    *,
    extra: list[str] = (),
    timeout: float = 1200,
    scrape: bool = False,
    env: dict[str, str] | None = None,
) -> RunResult:
    """Run `sciqag run`; with scrape=True keep its metrics endpoint up after the job, read it, then stop it."""
    summary_file = data_dir / "summary.json"
    cmd = [
        sciqag_exe(),
        "run",
        *map(str, paths),
        "--data-dir",
        str(data_dir),
        "--metrics-port",
        str(port),
        "--summary-json",
        str(summary_file),
        *FAST,
        *extra,
    ]
    if scrape:
        cmd += ["--linger", "600"]
    env = {**os.environ, **FAST_ENV, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    stderr: list[str] = []

    def pump() -> None:
        for line in proc.stderr:
            stderr.append(line)
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    metrics: dict = {}
    deadline = time.monotonic() + timeout
    try:
        if scrape:
            while True:
                try:
                    line = lines.get(timeout=1.0)
                except queue.Empty:  # no news: the run may have died, or be taking too long
                    if proc.poll() is not None:
                        reader.join(timeout=10)
                        raise AssertionError("sciqag run exited early:\n" + "".join(stderr[-60:])) from None
                    if time.monotonic() > deadline:
                        raise AssertionError("sciqag run did not finish in time:\n" + "".join(stderr[-60:])) from None
                    continue
                if line.startswith("done; metrics stay up"):
                    break
            metrics = scrape_metrics(port)
            proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=max(60.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=10)
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    return RunResult(proc.returncode, stdout, "".join(stderr), metrics, summary)


def scrape_metrics(port: int) -> dict[tuple[str, tuple], float]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    samples = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def metric(samples: dict, name: str, **labels) -> float:
    want = tuple(sorted(labels.items()))
    return sum(v for (n, lab), v in samples.items() if n == name and all(item in lab for item in want))


def open_store(data_dir: Path) -> Store:
    store = Store(Settings(data_dir=data_dir))
    store.ensure_schema()
    return store


def run_under_a_terminal(argv: list[str], env: dict, timeout_s: float) -> tuple[int, str]:
    """Run a command with a pseudo-terminal as its stdin, stdout and stderr (a progress bar draws only on a TTY):
    (exit code, everything it wrote with colours removed and cursor control kept)."""
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # the child
        os.execve(argv[0], argv, env)
    chunks, deadline = [], time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    else:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), re.sub(r"\x1b\[[0-9;]*m", "", b"".join(chunks).decode(errors="replace"))


@dataclass
class StoredOutcome:
    """What a guarantee test reads back after a run: the papers' final rows, raw and final counts, the pairs of each
    paper, and the papers with a dead letter that failed them."""

    papers: list[dict]  # papers FINAL: paper_id, status, qa_pairs, updated_at
    papers_raw: int
    pairs: int  # qa_pairs FINAL
    pair_ids: int  # distinct qa_id
    pairs_raw: int
    pairs_per_paper: dict[str, int]
    failed_dead_letters: set[str]

    @property
    def scored(self) -> dict[str, int]:
        return {r["paper_id"]: r["qa_pairs"] for r in self.papers if r["status"] == "scored"}

    @property
    def failed(self) -> set[str]:
        return {r["paper_id"] for r in self.papers if r["status"] == "failed"}

    def summary(self) -> str:
        return (
            f"{len(self.scored)} scored, {len(self.failed)} failed; papers rows {self.papers_raw} raw / "
            f"{len(self.papers)} final; pairs {self.pairs_raw} raw / {self.pairs} final"
        )

    def assert_each_paper_once(self, expected: set[str]) -> None:
        """Every expected paper stored once, every pair once, each scored paper with exactly the pairs its record
        counted, no pairs for another paper, and a dead letter for each failed one."""
        ids = [r["paper_id"] for r in self.papers]
        assert sorted(ids) == sorted(expected), "a paper is missing or stored twice"
        assert self.pairs == self.pair_ids, "a pair is stored twice"
        assert self.failed <= self.failed_dead_letters, "a failed paper without its dead letter"
        scored = self.scored
        assert {pid: self.pairs_per_paper.get(pid, 0) for pid in scored} == scored, "a paper without its pairs"
        assert not set(self.pairs_per_paper) - set(scored), "pairs stored for a paper that is not scored"


def stored_outcome(store: Store) -> StoredOutcome:
    db = f"`{store.database}`"
    pairs = store.query(f"SELECT count() AS n, uniqExact(qa_id) AS ids FROM {db}.qa_pairs FINAL")[0]
    return StoredOutcome(
        papers=store.query(f"SELECT paper_id, status, qa_pairs, updated_at FROM {db}.papers FINAL"),
        papers_raw=store.query(f"SELECT count() AS n FROM {db}.papers")[0]["n"],
        pairs=pairs["n"],
        pair_ids=pairs["ids"],
        pairs_raw=store.query(f"SELECT count() AS n FROM {db}.qa_pairs")[0]["n"],
        pairs_per_paper={
            r["paper_id"]: r["n"]
            for r in store.query(f"SELECT paper_id, count() AS n FROM {db}.qa_pairs FINAL GROUP BY paper_id")
        },
        failed_dead_letters={
            r["paper_id"]
            for r in store.query(f"SELECT DISTINCT paper_id FROM {db}.dead_letters FINAL WHERE paper_failed")
        },
    )
