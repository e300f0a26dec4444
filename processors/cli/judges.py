"""Judges (issue 20): `sciqag rejudge` (the stored pairs judged again by another judge) and `sciqag judges list |
compare A B` (who judged what, and how two judges agree)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import Command, common_options, engine_options, settings_from


def _rejudge_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--paper-id", dest="paper_ids", action="append", metavar="ID", help="a paper to re-judge (repeatable)"
    )
    p.add_argument("--ids-file", type=Path, help="a file of paper ids, one per line")
    p.add_argument("--since", help="papers stored at or after this ISO 8601 time, e.g. 2026-11-21T08:00")
    p.add_argument("--until", help="papers stored before this ISO 8601 time")
    p.add_argument("--all", action="store_true", help="every scored paper")
    p.add_argument(
        "--sample",
        type=float,
        default=1.0,
        metavar="FRACTION",
        help="only this share of the chosen papers, picked by a hash of their id (the same on a re-run)",
    )
    p.add_argument("--dry-run", action="store_true", help="list what would be re-judged and judge nothing")
    p.add_argument("--temperature", type=float, help="the judge's sampling temperature (SCIQAG_TEMPERATURE, 0.3)")
    p.add_argument(
        "--policy",
        dest="acceptance_policy",
        choices=["strict", "mean2.5"],
        help="acceptance policy (SCIQAG_ACCEPTANCE_POLICY, default strict)",
    )
    p.add_argument("--timeout", type=float, default=7200, help="give up after this many seconds (default 7200)")
    p.add_argument("--summary-json", type=Path, help="also write the outcome as JSON (judge id, counts, LLM requests)")
    common_options(p)
    engine_options(p)


def rejudge(args) -> int:
    from ..ingest.replay import parse_time
    from ..jobs.rejudge import rejudge as run_rejudge

    paper_ids = list(args.paper_ids or [])
    if args.ids_file:
        paper_ids += [line.strip() for line in args.ids_file.read_text().splitlines() if line.strip()]
    return run_rejudge(
        settings_from(args),
        paper_ids=paper_ids,
        since=parse_time(args.since) if args.since else None,
        until=parse_time(args.until) if args.until else None,
        every=args.all,
        sample=args.sample,
        dry_run=args.dry_run,
        timeout_s=args.timeout,
        summary_json=args.summary_json,
    )


def _judges_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="judges_command", required=True, metavar="SUBCOMMAND")
    listing = sub.add_parser("list", help="every judge in the judgments table: model, prompt, policy, pairs, tokens")
    common_options(listing)
    c = sub.add_parser(
        "compare",
        help="how two judges agree on the pairs both scored",
        description="Per RACAR dimension: exact agreement, mean of each judge and their difference, Cohen's kappa "
        "with quadratic weights (scikit-learn); acceptance agreement; tokens per judged and per accepted pair. "
        "A judge is a judge_id of `sciqag judges list`, or `live`: the live judge's scores as stored in qa_pairs.",
    )
    c.add_argument("judge_a", metavar="A")
    c.add_argument("judge_b", metavar="B")
    c.add_argument("--json", action="store_true", help="print the figures as JSON")
    common_options(c)


def judges(args) -> int:
    from dataclasses import asdict

    from sciqag.judges import format_comparison

    from ..judging import comparison, reference_judge
    from ..store import open_store

    settings = settings_from(args)
    with open_store(settings) as store:
        if args.judges_command == "list":
            rows = store.judges()
            primary = reference_judge(store, settings, rows)
            print(
                f"{'judge_id':<30}{'roles':<16}{'model':<26}{'policy':<9}{'temp':>6}{'pairs':>7}{'accepted':>9}"
                f"{'tokens/pair':>13}"
            )
            for j in rows:
                tokens = j["prompt_tokens"] + j["generated_tokens"]
                temp = "" if j["judge_temperature"] is None else f"{j['judge_temperature']:.2f}"
                mark = " *" if j["judge_id"] == primary else ""
                print(
                    f"{j['judge_id'] + mark:<30}{j['roles']:<16}{j['judge_model'][:25]:<26}{j['acceptance_policy']:<9}"
                    f"{temp:>6}{j['pairs']:>7}{j['accepted']:>9}{tokens / j['pairs'] if j['pairs'] else 0:>13.1f}"
                )
            print(f"\n* the primary judge (what export, stats and dataset build read): {primary}")
            return 0
        result = comparison(store, args.judge_a, args.judge_b)
    if args.json:
        print(json.dumps(asdict(result), indent=2))
    else:
        print(format_comparison(result))
    return 0 if result.pairs else 1


COMMANDS = {
    "rejudge": Command(
        _rejudge_arguments,
        rejudge,
        "Rebuilds each chosen paper's generated record from the store (the same pairs, the context the generator "
        "saw, the evidence) and judges it again in a worker of its own, on the engine the usual settings choose "
        "(--model, --llm-url, --temperature, --policy); nothing is extracted or generated. The new scores are stored "
        "as judgments under the judge's id (`sciqag judges list`); qa_pairs and what export, stats and dataset build "
        "read stay the live judge's until SCIQAG_PRIMARY_JUDGE (or --judge) names the new one. A re-run skips the "
        "pairs this judge already scored. Prints the old and new means per dimension and the acceptance changes.",
    ),
    "judges": Command(_judges_arguments, judges),
}
