"""Evaluations: `sciqag eval-mcq` (MERA-format multiple choice), `sciqag eval-open` (closed-book QA graded on CAR)
and `sciqag compare-sciqag` (our quality metrics on the SciQAG authors' own pairs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import Command, settings_from


def _eval_mcq_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--model", help="model folder (default: the bundled SmolLM2-135M-Instruct)")
    p.add_argument("--shots", type=int, default=0, help="worked examples before each item (default 0)")
    p.add_argument("--mode", choices=["loglik", "generate"], default="loglik")
    p.add_argument("--out", type=Path, help="per-item predictions as JSONL")
    p.add_argument("--limit", type=int, default=0, help="only the first N items")
    p.add_argument(
        "--exact",
        action="store_true",
        help="loglik: score every letter from the prompt logprobs of context + letter (slower; the default "
        "reads single-token letters from the next-token logprobs, which is the same quantity)",
    )
    p.add_argument("--max-model-len", type=int, default=4096)


def eval_mcq(args) -> int:
    from ..jobs.eval_mcq import eval_mcq as evaluate
    from ..llm import engine_options
    from ..local.model import prepare_bundled_model
    from ..logs import configure_logging

    settings = settings_from(args).with_overrides(max_model_len=args.max_model_len, temperature=0.0, max_in_flight=32)
    configure_logging(settings.log_level_or("WARNING"))
    model = args.model or str(prepare_bundled_model(settings.cache_dir))
    result = evaluate(
        args.file,
        engine_options(settings, model),
        shots=args.shots,
        mode=args.mode,
        out=args.out,
        limit=args.limit,
        exact=args.exact,
    )
    print(
        f"items {result['items']}  accuracy {result['accuracy']:.4f}  macro-F1 {result['macro_f1']:.4f}  "
        f"unanswered {result['unanswered']}  time {result['seconds']:.0f} s"
    )
    if args.out:
        print(f"predictions: {args.out}")
    return 0


def _eval_open_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, metavar="TEST.jsonl", help="a test split: {question, answer, category} or {Q, A}")
    p.add_argument(
        "--model",
        help="the evaluated model's folder (default: the bundled SmolLM2-135M-Instruct); "
        "with --llm-url, the served model's name",
    )
    p.add_argument("--judge", help="the judge model (default: the same as --model)")
    p.add_argument("--out", type=Path, help="per-item results JSONL (default: <FILE stem>.<model name>.results.jsonl)")
    p.add_argument("--compare", type=Path, metavar="RESULTS.jsonl", help="another run's results, shown side by side")
    p.add_argument("--limit", type=int, default=0, help="only the first N questions")
    p.add_argument("--llm-url", help="an OpenAI-compatible server instead of vLLM in this process (SCIQAG_LLM_URL)")
    p.add_argument("--max-model-len", type=int, default=4096)
    p.add_argument("--answer-max-tokens", type=int, default=256)
    p.add_argument("--log-level", help="WARNING, INFO or DEBUG")


def eval_open(args) -> int:
    from sciqag.car_results import car_means, format_comparison, format_means, read_results

    from ..jobs.eval_open import eval_open as evaluate
    from ..local.model import prepare_bundled_model
    from ..logs import configure_logging

    settings = settings_from(args).with_overrides(max_model_len=args.max_model_len, temperature=0.0)
    configure_logging(settings.log_level_or("WARNING"))
    for path in (args.file, args.compare):
        if path and not path.exists():
            raise FileNotFoundError(f"{path} not found")
    if settings.llm_url:
        if not args.model:
            raise ValueError("with --llm-url, --model names the served model")
        model = args.model
    else:
        model = args.model or str(prepare_bundled_model(settings.cache_dir))
    judge = args.judge or model
    out = args.out or args.file.with_name(f"{args.file.stem}.{Path(model).name}.results.jsonl")
    run = evaluate(
        args.file,
        settings,
        model=model,
        judge=judge,
        out=out,
        limit=args.limit,
        answer_max_tokens=args.answer_max_tokens,
    )
    means = car_means(run["results"])
    print(format_means(means, f"CAR (1-5), answers by {Path(model).name}, judged by {Path(judge).name}"))
    for key, label in (("answer_seconds_per_item", "answering"), ("judge_seconds_per_item", "grading")):
        if run[key] is not None:
            print(f"{label}: {run[key]:.2f} s per question")
    print(f"per-item results: {out}")
    if args.compare:
        print()
        print(format_comparison(car_means(read_results(args.compare)), means, args.compare.name, out.name))
    return 0


def _compare_sciqag_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        type=Path,
        default=Path("../shared/data/sciqag/papers_dev.jsonl"),
        help="SciQAG release records (JSONL with text and qa)",
    )


def compare_sciqag(args) -> int:
    from sciqag.embeddings import embed
    from sciqag.release_check import check_release, format_table, load_records

    if not args.data.exists():
        raise FileNotFoundError(f"{args.data} not found (the SciQAG records live in ../shared/data/sciqag)")
    print(format_table(check_release(load_records(args.data), embed)))
    return 0


COMMANDS = {
    "eval-mcq": Command(
        _eval_mcq_arguments,
        eval_mcq,
        "Scores the four letter continuations by log-likelihood, as the MERA harness does "
        "(--mode loglik), or generates and extracts the letter (--mode generate).",
    ),
    "eval-open": Command(
        _eval_open_arguments,
        eval_open,
        "The model answers each question without the paper; the judge scores each answer against "
        "the reference on completeness, accuracy and reasonableness (1-5, with reasons, structured "
        "output). Prints means overall and per category. Results are appended to --out as they "
        "come; a re-run resumes.",
    ),
    "compare-sciqag": Command(_compare_sciqag_arguments, compare_sciqag),
}
