"""Reading the stored corpus: `sciqag export` (JSON lines, MERA) and `sciqag stats` (the corpus report)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import Command, common_options, judge_option, settings_from


def _export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=["jsonl", "mera"], default="jsonl")
    p.add_argument("--all", action="store_true", help="mera: include items the judge did not accept")
    p.add_argument("--out", type=Path, help="output file (default: standard output)")
    judge_option(p)
    p.add_argument(
        "--with-duplicates",
        action="store_true",
        help="also export the pairs marked as near-duplicates of another paper's pair (left out by default)",
    )
    common_options(p)


def export(args) -> int:
    from sciqag.export import export_records, mera_items
    from sciqag.mera import to_mera
    from sciqag.verdicts import apply_verdicts, rejected_by_reviewers

    from ..store import open_store

    settings = settings_from(args)
    with open_store(settings) as store:
        rows, verdicts = store.qa_rows(judge=settings.primary_judge), store.latest_verdicts()
    # reviewers' latest verdicts win over the judge's: rejected pairs out, accepted ones in, edits in place
    rejected = rejected_by_reviewers(rows, verdicts)
    rows = apply_verdicts(rows, verdicts)
    duplicates = sum(1 for r in rows if r["duplicate_of"])
    if not args.with_duplicates:
        rows = [r for r in rows if not r["duplicate_of"]]
    if args.format == "mera":
        records = to_mera(mera_items(rows, accepted_only=not args.all))
    else:
        records = list(export_records(rows))
    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout
    try:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    finally:
        if args.out:
            out.close()
    if args.out:
        print(f"wrote {len(records)} {'items' if args.format == 'mera' else 'pairs'} to {args.out}", file=sys.stderr)
    if duplicates:
        what = "included" if args.with_duplicates else "left out (--with-duplicates keeps them)"
        print(f"{duplicates} near-duplicates of other papers' pairs {what}", file=sys.stderr)
    if rejected:
        print(f"{rejected} pairs rejected by reviewers left out", file=sys.stderr)
    return 0


def _stats_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--html", type=Path, default=None, help="HTML report file (default: <data-dir>/stats.html)")
    judge_option(p)
    common_options(p)


def stats(args) -> int:
    from sciqag.stats import corpus_stats, format_table, html_report
    from sciqag.verdicts import format_agreement, judge_agreement

    from ..store import open_store

    settings = settings_from(args)
    with open_store(settings) as store:
        qa, papers = store.qa_rows(judge=settings.primary_judge), store.papers()
        verdicts = store.latest_verdicts()
    scored = [p for p in papers if p["status"] == "scored"]
    groups = corpus_stats(qa, scored)
    print(format_table(groups))
    failed = len(papers) - len(scored)
    print(
        f"\n{len(scored)} papers scored, {failed} failed; {len(qa)} pairs "
        f"({sum(1 for r in qa if r['kind'] == 'mcq')} multiple-choice)"
    )
    overall = groups[0]
    if overall.checked:
        print(
            f"near-duplicates of other papers' pairs: {overall.duplicates} of {overall.checked} checked pairs "
            f"({overall.duplicate_rate:.1%}; threshold {settings.duplicate_threshold}); `export` leaves them out"
        )
    print(format_agreement(judge_agreement(qa, verdicts), settings.primary_judge))
    target = args.html or settings.data_dir / "stats.html"
    target.write_text(html_report(groups, qa, scored), encoding="utf-8")
    print(f"HTML report: {target}")
    return 0


COMMANDS = {
    "export": Command(
        _export_arguments,
        export,
        "jsonl: every scored pair (open and multiple-choice) with ids, keywords and the five scores. "
        "mera: the accepted multiple-choice items in MERA's ruWorldTree format (answer letters "
        "balanced over A-D, 10 instruction templates spread evenly).",
    ),
    "stats": Command(
        _stats_arguments, stats, "Print the report by journal/category and write it as an HTML page with plots."
    ),
}
