"""Progress of a long command on standard error: one line redrawn in place on a terminal, a line every few seconds
in a log. One printer for every command (run, dataset import-sciqag, eval-mcq, eval-open)."""

from __future__ import annotations

import sys
import time


class Progress:
    """`[#####.....] 12/40 papers (10 scored, 2 failed) 01:05`, redrawn on a terminal, else printed every
    `every_s` seconds and once at the end."""

    def __init__(
        self, total: int, unit: str = "papers", *, stream=None, started: float | None = None, every_s: float = 10.0
    ) -> None:
        self.total, self.unit, self.every_s = total, unit, every_s
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.monotonic() if started is None else started
        self.done = 0
        self._last_line, self._last_time = "", 0.0

    def update(self, done: int, detail: str = "") -> None:
        self.done = done
        elapsed = time.monotonic() - self.started
        width = 30
        filled = int(width * done / self.total) if self.total else width
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} {self.unit}"
            f"{f' ({detail})' if detail else ''} {int(elapsed // 60):02d}:{int(elapsed % 60):02d}"
        )
        if self.tty:
            self.stream.write("\r" + line)
            self.stream.flush()
        elif line != self._last_line and (time.monotonic() - self._last_time > self.every_s or done == self.total):
            self.stream.write(line + "\n")
            self.stream.flush()
            self._last_time = time.monotonic()
        self._last_line = line

    def tick(self, detail: str = "") -> None:
        self.update(self.done + 1, detail)

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
