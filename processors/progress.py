"""Progress of a long command on standard error, the one printer for every command (run, rejudge, dataset
import-sciqag, eval-mcq, eval-open).

On a terminal: a live bar drawn by rich (redrawn in place; what the command logs or prints to stderr meanwhile lands
above the bar, not through it). Rich rather than tqdm: `TQDM_DISABLE=1` (processors/logs.py) silences the tqdm bars
of the libraries we load (weight loading, transformers, huggingface_hub) without touching ours, and rich's live
display takes over sys.stderr while it runs, so every write to it, print() or a logging handler, goes above the bar.
Not a terminal (a log file, CI, a pipe): a plain line when the counts changed (at most every `every_s` seconds),
once a minute while they do not, and once at the end.
"""

from __future__ import annotations

import logging
import sys
import time


class Progress:
    """`[#####.....] 12/40 papers (10 scored, 2 failed) 01:05` in a log when the numbers change; a live bar with the
    same numbers on a terminal."""

    def __init__(
        self, total: int, unit: str = "papers", *, stream=None, started: float | None = None, every_s: float = 10.0
    ) -> None:
        self.total, self.unit, self.every_s = total, unit, every_s
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.monotonic() if started is None else started
        self.done = 0
        self.heartbeat_s = max(60.0, every_s)
        self._last_counts: tuple | None = None
        self._last_time = 0.0
        self._bar = None
        if self.tty:
            self._start_bar()

    def _start_bar(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        console = Console(file=self.stream)
        self._bar = RichProgress(
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(f"{self.unit}" + " {task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            refresh_per_second=4,
            redirect_stdout=False,  # stdout carries the summary (and may be a file): left alone
            redirect_stderr=self.stream is sys.stderr,
        )
        self._task = self._bar.add_task("", total=self.total or None, detail="")
        self._bar.start()
        # the logging handlers hold the stderr they were made with; while the bar is up they write through rich's
        # proxy (what sys.stderr is now), so a warning is a line above the bar
        self._handlers = _stderr_handlers(self.stream)
        for handler in self._handlers:
            handler.setStream(sys.stderr)

    def update(self, done: int, detail: str = "") -> None:
        self.done = done
        if self._bar is not None:
            self._bar.update(self._task, completed=done, detail=f"({detail})" if detail else "")
            return
        elapsed = time.monotonic() - self.started
        width = 30
        filled = int(width * done / self.total) if self.total else width
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} {self.unit}"
            f"{f' ({detail})' if detail else ''} {int(elapsed // 60):02d}:{int(elapsed % 60):02d}"
        )
        counts = (done, detail)  # a new line when they change (at most every `every_s`), else once a minute
        since = time.monotonic() - self._last_time
        changed = counts != self._last_counts
        if (changed and (since > self.every_s or done == self.total)) or since > self.heartbeat_s:
            self.stream.write(line + "\n")
            self.stream.flush()
            self._last_time, self._last_counts = time.monotonic(), counts

    def tick(self, detail: str = "") -> None:
        self.update(self.done + 1, detail)

    def close(self) -> None:
        if self._bar is None:
            return
        bar, self._bar = self._bar, None
        bar.stop()  # the last state of the bar stays on screen; sys.stderr is the real one again
        for handler in self._handlers:
            handler.setStream(self.stream)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _stderr_handlers(stream) -> list[logging.StreamHandler]:
    """The stream handlers (of the root logger and every other one) that write to `stream`."""
    loggers = [
        logging.getLogger(),
        *(v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger)),
    ]
    found: list[logging.StreamHandler] = []
    for logger in loggers:
        for handler in logger.handlers:
            is_stream = isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)
            if is_stream and handler.stream is stream and handler not in found:
                found.append(handler)
    return found
