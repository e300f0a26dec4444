"""The corpus report behind `sciqag stats`: RACAR means, acceptance, numeric support, diversity and
coverage, overall and by journal/category, as a terminal table and an HTML page with SVG plots."""

from __future__ import annotations

import html
import math
from collections import defaultdict
from dataclasses import dataclass, field

from schemas import RACAR_DIMENSIONS

from .splits import category_of


def _mean(values: list[float]) -> float:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(values) / len(values) if values else float("nan")


@dataclass
class GroupStats:
    name: str
    papers: int = 0
    pairs: int = 0
    accepted: int = 0
    racar: dict[str, float] = field(default_factory=dict)
    numeric_support: float = float("nan")
    share_below_0_3: float = float("nan")
    coverage: float = float("nan")
    grounding: float = float("nan")  # mean over the pairs that gave evidence quotes
    no_evidence: float = float("nan")  # share of pairs with no located quote (none given, or none found)
    duplicates: int = 0  # pairs marked as near-duplicates of an earlier pair of another paper
    checked: int = 0  # pairs the near-duplicate check looked at (duplicate_similarity set)

    @property
    def duplicate_rate(self) -> float:
        return self.duplicates / self.checked if self.checked else float("nan")

    @property
    def acceptance(self) -> float:
        return self.accepted / self.pairs if self.pairs else float("nan")


def group_stats(name: str, qa: list[dict], papers: list[dict]) -> GroupStats:
    return GroupStats(
        name=name,
        papers=len({p["paper_id"] for p in papers} | {r["paper_id"] for r in qa}),
        pairs=len(qa),
        accepted=sum(1 for r in qa if r["accepted"]),
        racar={d: _mean([r[d] for r in qa]) for d in RACAR_DIMENSIONS},
        numeric_support=_mean([r.get("numeric_support") for r in qa]),
        share_below_0_3=_mean([p.get("q_share_below_0_3") for p in papers]),
        coverage=_mean([p.get("coverage") for p in papers]),
        grounding=_mean([r.get("grounding") for r in qa]),
        no_evidence=(sum(1 for r in qa if not r.get("grounding")) / len(qa)) if qa else float("nan"),
        duplicates=sum(1 for r in qa if r.get("duplicate_of")),
        checked=sum(1 for r in qa if r.get("duplicate_similarity") is not None),
    )


def corpus_stats(qa: list[dict], papers: list[dict]) -> list[GroupStats]:
    """Overall first, then one group per journal (or first category when there is no journal)."""
    qa_by, papers_by = defaultdict(list), defaultdict(list)
    for r in qa:
        qa_by[category_of(r)].append(r)
    for p in papers:
        papers_by[category_of(p)].append(p)
    groups = [group_stats("all", qa, papers)]
    for name in sorted(set(qa_by) | set(papers_by)):
        groups.append(group_stats(name, qa_by[name], papers_by[name]))
    return groups


def _fmt(value: float, pct: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.1%}" if pct else f"{value:.2f}"


HEADERS = [
    "group",
    "papers",
    "pairs",
    "accepted",
    *[d[:5] for d in RACAR_DIMENSIONS],
    "num.sup",
    "div<0.3",
    "coverage",
    "ground.",
    "no-evid.",
    "dup.",
]


def table_rows(groups: list[GroupStats]) -> list[list[str]]:
    return [
        [
            g.name[:40],
            str(g.papers),
            str(g.pairs),
            _fmt(g.acceptance, True),
            *[_fmt(g.racar[d]) for d in RACAR_DIMENSIONS],
            _fmt(g.numeric_support, True),
            _fmt(g.share_below_0_3, True),
            _fmt(g.coverage, True),
            _fmt(g.grounding, True),
            _fmt(g.no_evidence, True),
            _fmt(g.duplicate_rate, True),
        ]
        for g in groups
    ]


def format_table(groups: list[GroupStats]) -> str:
    rows = [HEADERS, *table_rows(groups)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def _svg_bars(title: str, labels: list[str], counts: list[int], width: int = 320, height: int = 180) -> str:
    top = max(counts) if counts and max(counts) > 0 else 1
    bar_w = (width - 40) / max(1, len(counts))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
        f"<title>{html.escape(title)}</title>",
        f'<text x="{width / 2}" y="14" text-anchor="middle" font-size="12">{html.escape(title)}</text>',
    ]
    for i, (label, count) in enumerate(zip(labels, counts)):
        h = (height - 50) * count / top
        x = 30 + i * bar_w
        parts.append(
            f'<rect x="{x + 2:.1f}" y="{height - 25 - h:.1f}" width="{bar_w - 4:.1f}" height="{h:.1f}" fill="#4878a8"/>'
        )
        parts.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{height - 10}" text-anchor="middle" font-size="10">'
            f"{html.escape(label)}</text>"
        )
        parts.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{height - 28 - h:.1f}" text-anchor="middle" '
            f'font-size="10">{count}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _svg_decile_bars(title: str, shares: list[float]) -> str:
    """A histogram of shares (0..1) in ten 10% bins."""
    bins = [f"{i * 10}-{i * 10 + 10}%" for i in range(10)]
    counts = [sum(1 for c in shares if min(int(c * 10), 9) == i) for i in range(10)]
    return _svg_bars(title, bins, counts, width=520)


def html_report(
    groups: list[GroupStats], qa: list[dict], papers: list[dict], title: str = "sciqag-stream corpus"
) -> str:
    plots = []
    for d in RACAR_DIMENSIONS:
        counts = [sum(1 for r in qa if r[d] == s) for s in (1, 2, 3)]
        plots.append(_svg_bars(f"{d} scores", ["1", "2", "3"], counts))
    coverage = [p["coverage"] for p in papers if p.get("coverage") is not None]
    support = [r["numeric_support"] for r in qa if r.get("numeric_support") is not None]
    grounding = [r["grounding"] for r in qa if r.get("grounding") is not None]
    for name, shares in (
        ("coverage per paper", coverage),
        ("numeric support per answer", support),
        (f"grounding per answer ({len(qa) - len(grounding)} pairs without quotes)", grounding),
    ):
        plots.append(_svg_decile_bars(name, shares))
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADERS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table_rows(groups))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}} td:first-child{{text-align:left}}
.plots svg{{margin:8px;border:1px solid #eee}}</style>
</head><body>
<h1>{html.escape(title)}</h1>
<p>RACAR scores 1-3 per dimension; accepted = the acceptance policy in force; num.sup = share of numbers in answers
found in the paper; div&lt;0.3 = share of question pairs of a paper below 0.3 cosine similarity;
coverage = SciQAG coverage rate;
ground. = mean share of an answer's content words and numbers found in its located evidence quotes;
no-evid. = share of pairs with no located quote.</p>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
<div class="plots">{"".join(plots)}</div>
</body></html>
"""
