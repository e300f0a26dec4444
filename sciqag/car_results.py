"""Closed-book evaluation results: CAR means overall and per category, and two runs side by side."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

from .prompts import CAR_DIMENSIONS


def read_results(path: Path) -> list[dict]:
    """Per-item results written by `sciqag eval-open --out` (one JSON object per line)."""
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not JSON: {exc}") from exc
    return rows


def car_means(results: list[dict]) -> dict[str, dict]:
    """{"all" | category: {"items", "judged", completeness, accuracy, reasonableness, "mean"}}."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        groups["all"].append(r)
        groups[r.get("category") or "(unknown)"].append(r)
    out = {}
    for name in ["all", *sorted(g for g in groups if g != "all")]:
        judged = [r for r in groups[name] if r.get("scores")]
        means = {d: (sum(r["scores"][d] for r in judged) / len(judged) if judged else math.nan) for d in CAR_DIMENSIONS}
        means["mean"] = sum(means.values()) / len(CAR_DIMENSIONS) if judged else math.nan
        out[name] = {"items": len(groups[name]), "judged": len(judged), **means}
    return out


def _fmt(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def format_means(means: dict[str, dict], label: str = "") -> str:
    head = (
        f"{'group':<34} {'items':>5} {'judged':>6}  "
        + "  ".join(f"{d[:12]:>12}" for d in CAR_DIMENSIONS)
        + "      mean"
    )
    lines = [label, head] if label else [head]
    for name, m in means.items():
        lines.append(
            f"{name[:34]:<34} {m['items']:>5} {m['judged']:>6}  "
            + "  ".join(f"{_fmt(m[d]):>12}" for d in CAR_DIMENSIONS)
            + f"  {_fmt(m['mean']):>8}"
        )
    return "\n".join(lines)


def format_comparison(a: dict[str, dict], b: dict[str, dict], label_a: str, label_b: str) -> str:
    """Two runs' CAR means side by side (A / B, and B - A), over the groups either run has."""
    lines = [f"{'group':<30} {'dimension':<15} {label_a[:18]:>18} {label_b[:18]:>18} {'B - A':>8}"]
    for name in dict.fromkeys([*a, *b]):
        for d in (*CAR_DIMENSIONS, "mean"):
            va = a.get(name, {}).get(d, math.nan)
            vb = b.get(name, {}).get(d, math.nan)
            diff = vb - va
            lines.append(
                f"{name[:30]:<30} {d:<15} {_fmt(va):>18} {_fmt(vb):>18} "
                f"{'-' if math.isnan(diff) else f'{diff:+.2f}':>8}"
            )
    return "\n".join(lines)
