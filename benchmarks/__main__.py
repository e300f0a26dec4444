"""`make bench`: every benchmark, one table. Options pass through to the LLM benchmark."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import dedup_step, extraction, grounding, llm_stage, near_duplicate_threshold, sink, vector_index
from .common import format_table, machine, save


def main() -> None:
    parser = argparse.ArgumentParser(description="Run every benchmark and print one table of ratios.")
    parser.add_argument(
        "--only",
        help="comma-separated subset of extraction,grounding,near_duplicates,vector_index,dedup_step,sink,llm,scaling",
    )
    parser.add_argument("--model", default="", help="model folder for the LLM benchmarks (default: bundled)")
    parser.add_argument("--sizes", default="10,100,1000", help="paper counts for the overhead scaling runs")
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--mcq", type=int, default=4)
    parser.add_argument(
        "--copies", type=int, default=1, help="stream each real PDF this many times in the LLM benchmark"
    )
    parser.add_argument("--sink-rows", type=int, default=100_000)
    parser.add_argument(
        "--vector-sizes", default="10k,100k,1M", help="stored vectors for the vector index benchmark (e.g. 10k,100k)"
    )
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    chosen = set(
        (args.only or "extraction,grounding,near_duplicates,vector_index,dedup_step,sink,llm,scaling").split(",")
    )
    started = time.time()
    rows = []
    if "extraction" in chosen:
        rows += extraction.run()
    if "grounding" in chosen:
        rows += grounding.run()
    if "near_duplicates" in chosen:
        rows += near_duplicate_threshold.run()
    if "vector_index" in chosen:
        rows += vector_index.run(vector_index.parse_sizes(args.vector_sizes))
    if "dedup_step" in chosen:
        rows += dedup_step.run()
    if "sink" in chosen:
        rows += sink.run(args.sink_rows)
        rows += sink.run_with_near_duplicates()
    if "llm" in chosen:
        rows += llm_stage.run(
            model=args.model,
            sizes=tuple(int(s) for s in args.sizes.split(",")),
            pairs=args.pairs,
            mcq=args.mcq,
            copies=args.copies,
        )
    if "scaling" in chosen:
        from . import scaling  # starts brokers and workers: only when chosen

        rows += scaling.run()
    print(
        f"\nsciqag-stream benchmarks — {machine()} — {time.strftime('%Y-%m-%d %H:%M')} — "
        f"{time.time() - started:.0f} s\n"
    )
    print(format_table(rows))
    if args.json:
        save(rows, args.json)
    sys.exit(0)


if __name__ == "__main__":
    main()
