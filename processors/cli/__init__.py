"""The `sciqag` command.

`COMMANDS` maps each command to the module under this package that declares its options beside its handler (a
`Command` in that module's own `COMMANDS`); `main()` imports only the module of the command given, so `sciqag
export` never loads Faust or vLLM. `sciqag --help` lists every command from the table here.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import SciqagError

DESCRIPTION = """\
sciqag-stream: scientific papers in, judged question-answer pairs out (SciQAG, continuously).

papers (Kafka) -> extractor (PyMuPDF) -> generator (vLLM) -> judge (vLLM, RACAR) -> ClickHouse + sciqag.qa.scored

With nothing configured every service is embedded: a Tansu broker on loopback,
chDB (in-process ClickHouse) under --data-dir, and the bundled SmolLM2-135M model.
Settings come from SCIQAG_* environment variables (see README); flags win.
"""

# command -> (module in this package, one line for `sciqag --help`), in the order --help lists them
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "the main job: process PDFs end to end and print a summary"),
    "worker": ("run", "a long-running worker against the configured services"),
    "publish": ("ingest", "publish PDFs or a JSONL feed of PaperSubmitted records to sciqag.papers"),
    "feed": ("ingest", "ingest publisher feeds (arXiv, RSS, OAI-PMH, Crossref, inbox) into sciqag.papers"),
    "extract": ("tools", "extraction only: print the cleaned text (or --json) of PDFs"),
    "export": ("corpus", "write the scored pairs from ClickHouse, one JSON object per line"),
    "replay": ("ingest", "publish stored papers again (by id or by time range) to reprocess them"),
    "stats": ("corpus", "corpus report: RACAR, acceptance, diversity, coverage, numeric support"),
    "review": ("review", "a local web app to review pairs: filters, evidence in the paper text, verdicts"),
    "rejudge": ("judges", "judge the stored pairs again with another judge, nothing regenerated"),
    "judges": ("judges", "list the judges, compare two (agreement, weighted kappa, tokens per pair)"),
    "eval-mcq": ("evaluate", "evaluate a model on a MERA-format multiple-choice file (accuracy, macro-F1)"),
    "dataset": ("dataset", "SciQAG-24D-style benchmarks: import SciQAG's release, build train/test splits"),
    "eval-open": ("evaluate", "closed-book QA: a model answers a test split, a judge grades it (CAR 1-5)"),
    "compare-sciqag": ("evaluate", "our quality metrics on the SciQAG authors' pairs, beside the paper's figures"),
    "schemas": ("tools", "write JSON Schema files for every topic record (and the ClickHouse DDL)"),
    "prepare-model": ("tools", "convert the bundled model once into the cache and print its folder"),
}


def command_module(name: str):
    return importlib.import_module(f"{__name__}.{COMMANDS[name][0]}")


def build_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """The parser with every command listed; only `chosen` (None: all of them) gets its options."""
    parser = argparse.ArgumentParser(
        prog="sciqag", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_) in COMMANDS.items():
        if chosen is not None and name != chosen:
            sub.add_parser(name, help=help_)
            continue
        command = command_module(name).COMMANDS[name]
        p = sub.add_parser(name, help=help_, description=command.description)
        command.add_arguments(p)
        p.set_defaults(handler=command.run)
    return parser


def _chosen(argv: list[str]) -> str | None:
    first = next((a for a in argv if not a.startswith("-")), None)
    return first if first in COMMANDS else None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    chosen = _chosen(argv)
    args = build_parser(chosen).parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        return 130
    except (SciqagError, FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"sciqag {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
