"""The result row every benchmark returns, and the table `make bench` prints."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
PDFS = SHARED / "pdfs"


@dataclass
class Row:
    benchmark: str
    measured: str  # what we measured, with its unit
    value: float
    baseline_name: str = ""
    baseline: float | None = None
    target: float | None = None  # the ratio to reach, when there is one
    note: str = ""
    at_most: bool = False  # the target is a ceiling (a cost): the ratio must stay at or below it

    @property
    def ratio(self) -> float | None:
        return self.value / self.baseline if self.baseline else None

    def status(self) -> str:
        if self.target is None or self.ratio is None:
            return ""
        if self.at_most:
            return "ok" if self.ratio <= self.target else "ABOVE TARGET"
        return "ok" if self.ratio >= self.target else "BELOW TARGET"


def format_table(rows: list[Row]) -> str:
    head = (
        f"{'benchmark':<22} {'measured':<38} {'value':>10}  {'baseline':<34} {'value':>10} {'ratio':>7} "
        f"{'target':>7}  status"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        base = f"{r.baseline:>10.2f}" if r.baseline is not None else f"{'':>10}"
        ratio = f"{r.ratio:>7.3f}" if r.ratio is not None else f"{'':>7}"
        bound = "<= " if r.at_most else ">= "
        target = f"{bound + format(r.target, 'g'):>7}" if r.target is not None else f"{'':>7}"
        lines.append(
            f"{r.benchmark:<22} {r.measured:<38} {r.value:>10.2f}  {r.baseline_name:<34} {base} {ratio} "
            f"{target}  {r.status()}"
        )
        if r.note:
            lines.append(f"{'':<22}   {r.note}")
    return "\n".join(lines)


def machine() -> str:
    return f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"


def save(rows: list[Row], path: Path) -> None:
    path.write_text(
        json.dumps(
            {
                "machine": machine(),
                "at": time.strftime("%Y-%m-%d %H:%M:%S"),
                "rows": [{**asdict(r), "ratio": r.ratio} for r in rows],
            },
            indent=1,
        )
    )
