"""What the command modules share: the `Command` shape, the option groups several commands take, and the settings
they make from the parsed flags."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..settings import Settings


@dataclass(frozen=True)
class Command:
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str | None = None


def common_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir", type=Path, help="where embedded ClickHouse and caches live (SCIQAG_DATA_DIR, default .sciqag)"
    )
    p.add_argument(
        "--broker",
        dest="broker_url",
        help="Kafka broker URL, kafka://host:9092 (SCIQAG_BROKER_URL; default: embedded Tansu)",
    )
    p.add_argument("--log-level", help="WARNING, INFO or DEBUG (SCIQAG_LOG_LEVEL)")


def judge_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--judge",
        dest="primary_judge",
        metavar="ID",
        help="read this judge's scores and acceptance (a judge_id of `sciqag judges list`) instead of the primary "
        "judge's (SCIQAG_PRIMARY_JUDGE; default: live, the live judge's as stored in qa_pairs)",
    )


def engine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        help="model folder for vLLM (SCIQAG_MODEL; default: the bundled SmolLM2-135M-Instruct); "
        "with --llm-url, the served model's name",
    )
    p.add_argument(
        "--llm-url",
        help="an OpenAI-compatible server, e.g. http://vllm:8000/v1 (SCIQAG_LLM_URL; default: vLLM in this process)",
    )
    p.add_argument(
        "--pairs", dest="pairs_per_paper", type=int, help="QA pairs per paper (SCIQAG_PAIRS_PER_PAPER, default 10)"
    )
    p.add_argument("--keywords", dest="keywords_per_paper", type=int, help="keywords per paper (default 15)")
    p.add_argument(
        "--mcq",
        dest="mcq_per_paper",
        type=int,
        help="four-option multiple-choice items per paper (SCIQAG_MCQ_PER_PAPER, default 4; 0: none)",
    )
    p.add_argument(
        "--max-context-tokens", type=int, help="paper tokens given to the model (default: what the window allows)"
    )
    p.add_argument("--max-model-len", type=int, help="the engine's context window (default 8192)")
    p.add_argument("--max-in-flight", type=int, help="concurrent LLM requests (default 16)")
    p.add_argument("--metrics-port", type=int, help="Prometheus /metrics port (SCIQAG_METRICS_PORT, default 6066)")


def settings_from(args: argparse.Namespace) -> Settings:
    """SCIQAG_* settings with the flags given on top (flags named like the settings' fields)."""
    values = {k: v for k, v in vars(args).items() if v is not None}
    if isinstance(values.get("agents"), str):
        values["agents"] = [a.strip() for a in values["agents"].split(",") if a.strip()]
    return Settings().with_overrides(**values)
