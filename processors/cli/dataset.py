"""`sciqag dataset build` (train/test splits from the stored pairs) and `sciqag dataset import-sciqag` (the SciQAG
release through the real judge and sink)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import Command, common_options, engine_options, judge_option, settings_from


def _arguments(p: argparse.ArgumentParser) -> None:
    dsub = p.add_subparsers(dest="dataset_command", required=True, metavar="SUBCOMMAND")
    d = dsub.add_parser(
        "build",
        help="write the test and train splits (JSONL + Parquet, three shapes) and a card",
        description="Test split: per category (journal, else first subject), --per-category papers "
        "drawn with --seed from those with a pair passing the acceptance policy (strict: "
        "every RACAR dimension 3), with only those pairs. Train split: every other "
        "paper's pairs that pass the rule-based filter. Split by paper. Re-running after "
        "an interruption keeps the files already written for the same data and options.",
    )
    d.add_argument("--per-category", type=int, default=50, help="test papers per category (default 50, as SciQAG-24D)")
    d.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    d.add_argument(
        "--policy",
        choices=["strict", "mean2.5"],
        default="strict",
        help="acceptance policy for the test split (default strict)",
    )
    d.add_argument("--out", type=Path, default=Path("sciqag-24d"), help="output folder (default ./sciqag-24d)")
    d.add_argument(
        "--min-grounding",
        type=float,
        default=0.0,
        help="keep only pairs whose located evidence quotes cover at least this share of the answer's "
        "content words and numbers (0-1; default 0: no filter)",
    )
    judge_option(d)
    d.add_argument(
        "--with-duplicates",
        action="store_true",
        help="keep the pairs marked as near-duplicates of another paper's pair (left out by default); test "
        "questions that near-duplicate a train question are removed either way",
    )
    common_options(d)
    d = dsub.add_parser(
        "import-sciqag",
        help="load SciQAG release records (text + Q/A pairs) as if streamed",
        description="Each record's pairs go to the judge topic as one paper; the judge and sink "
        "agents score and store them like streamed pairs (prompt_version "
        "'sciqag-release'). Papers already stored are skipped (--force redoes them).",
    )
    d.add_argument("file", type=Path, metavar="FILE", help="JSONL: {doi, journal, keywords, text, qa: [{q, a}]}")
    d.add_argument("--limit", type=int, default=0, help="only the first N papers")
    d.add_argument(
        "--assume-score",
        type=int,
        choices=[1, 2, 3],
        help="skip the judge and record every RACAR dimension as this score (for releases judged "
        "elsewhere); judge_model says 'assumed:N'",
    )
    d.add_argument("--force", action="store_true", help="import papers that are already stored again")
    d.add_argument("--timeout", type=float, default=7200, help="give up after this many seconds (default 7200)")
    common_options(d)
    engine_options(d)


def run(args) -> int:
    from ..logs import configure_logging

    settings = settings_from(args)
    configure_logging(settings.log_level_or("WARNING"))
    if args.dataset_command == "build":
        from ..jobs.dataset_build import build_from_store

        return build_from_store(
            settings,
            args.out,
            per_category=args.per_category,
            seed=args.seed,
            policy=args.policy,
            min_grounding=args.min_grounding,
            with_duplicates=args.with_duplicates,
        )

    from ..jobs.release_import import import_release

    if not args.file.exists():
        raise FileNotFoundError(f"{args.file} not found (SciQAG records live in ../shared/data/sciqag)")
    return import_release(
        settings, args.file, limit=args.limit, assume_score=args.assume_score, force=args.force, timeout_s=args.timeout
    )


COMMANDS = {
    "dataset": Command(
        _arguments,
        run,
        "build: splits from the pairs in ClickHouse. import-sciqag: SciQAG release records into "
        "ClickHouse through the real judge and sink.",
    ),
}
