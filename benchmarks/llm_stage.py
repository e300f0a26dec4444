"""The LLM stages inside the pipeline against their ceilings, on the real papers.

1. LLM stage efficiency: generated tokens/s of the generator + judge agents in the streaming pipeline vs vLLM's
   offline `LLM.generate` on exactly the prompts and sampling parameters the pipeline sent (recorded), with the
   same engine settings. Target >= 0.9.
2. Prefix-cache reuse in judging: judge prompt tokens the engine computed vs the total, beside the ideal (each
   paper's text computed once per paper).
3. Pipeline overhead: the same papers through the same pipeline with the LLM answering instantly from the
   recording (a replay engine), as a share of the real run; then 10 / 100 / 1,000 distinct synthetic papers with
   the replay engine, to show the per-paper cost stays flat.
4. Projection: measured tokens per paper and stated 7B-on-one-H100 engine rates -> hours for SciQAG's 22,743 papers.

Runs on CPU with the bundled model; on a GPU host pass --model DIR (the same script, unchanged).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from .common import PDFS, Row, format_table

RESULT_MARK = "offline-result: "  # vLLM writes to stdout too
SCIQAG_PAPERS = 22_743
SCIQAG_NOTEBOOK_S_PER_PAPER = 35  # logged by SciQAG's own inference notebook
# Stated engine rates for a 7B model on one H100 (bf16, vLLM, many requests in flight). Not measured here (no GPU
# with vLLM): public vLLM benchmarks report ~12.5k output tok/s for Llama 3.1 8B on 1xH100 at saturation; a
# conservative pair and that optimistic one bracket the projection.
H100_7B_RATES = {
    "conservative": {"prefill": 20_000.0, "decode": 3_000.0},
    "optimistic": {"prefill": 50_000.0, "decode": 12_500.0},
}


class RecordingEngine:
    """The real engine, with every request recorded: rendered prompt, schema, limits, timing, usage, output."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.model_name, self.max_model_len = inner.model_name, inner.max_model_len
        self.calls: list[dict] = []

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    async def generate(self, messages, *, json_schema, max_tokens, request_id, role):
        started = time.perf_counter()
        result = await self.inner.generate(
            messages, json_schema=json_schema, max_tokens=max_tokens, request_id=request_id, role=role
        )
        self.calls.append(
            {
                "role": role,
                "request_id": request_id,
                "prompt": self.inner.render(messages),
                "schema": json_schema,
                "max_tokens": max_tokens,
                "start": started,
                "end": time.perf_counter(),
                "prompt_tokens": result.prompt_tokens,
                "generated_tokens": result.generated_tokens,
                "cached": result.cached_prompt_tokens,
                "text": result.text,
            }
        )
        return result


class ReplayEngine:
    """Answers at once with outputs recorded from the real engine for the same kind of request (same role and
    JSON schema), in turn: the pipeline does all its own work, the LLM costs nothing."""

    def __init__(self, calls: list[dict], model_dir: str, max_model_len: int) -> None:
        from transformers import AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model_name, self.max_model_len = "replay", max_model_len
        self._outputs: dict[str, list[str]] = defaultdict(list)
        for c in calls:
            self._outputs[self._key(c["role"], c["schema"])].append(c["text"])
        self._next: dict[str, int] = defaultdict(int)

    @staticmethod
    def _key(role: str, schema) -> str:
        return role + json.dumps(schema, sort_keys=True)

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    async def generate(self, messages, *, json_schema, max_tokens, request_id, role):
        from processors.llm import LLMResult

        key = self._key(role, json_schema)
        outputs = self._outputs[key]
        if not outputs:
            raise RuntimeError(f"nothing recorded for a {role} request with this schema")
        text = outputs[self._next[key] % len(outputs)]
        self._next[key] += 1
        await asyncio.sleep(0)
        return LLMResult(text=text, prompt_tokens=0, generated_tokens=0, finish_reason="stop")


@contextlib.contextmanager
def llm_replaced(factory):
    """Swap the pipeline's LLM backend for `factory(settings, model_dir)` (an async context manager)."""
    import processors.pipeline.app as app_module

    original = app_module.open_llm
    app_module.open_llm = factory
    try:
        yield original
    finally:
        app_module.open_llm = original


def run_pipeline(paths: list[Path], settings, *, timeout_s: float = 7200) -> dict:
    """Publish the PDFs, wait until each is scored or failed; returns timings (window = first publish -> all done)."""
    from processors.ingest.publish import record_for_file
    from processors.jobs.run import wait_for_papers
    from processors.pipeline.worker import run_worker
    from schemas import topics as T

    out: dict = {}

    async def job(worker) -> int:
        store = await worker.store()
        records = [record_for_file(p, source_feed="bench") for p in paths]
        started, submitted = time.perf_counter(), time.time()
        for r in records:
            await worker.send(T.PAPERS, r.paper_id, r)
        status, code = await wait_for_papers(
            worker,
            store,
            [r.paper_id for r in records],
            submitted=submitted,
            started=time.monotonic(),
            timeout_s=timeout_s,
            poll_s=0.1,
            progress=False,
        )
        out["end"] = time.perf_counter()
        out["start"] = started
        out["scored"] = sum(1 for s in status.values() if s["status"] == "scored")
        out["failed"] = sum(1 for s in status.values() if s["status"] == "failed")
        return code

    code = run_worker(settings, job)
    if code:
        raise RuntimeError(f"the pipeline run failed (exit {code})")
    return out


def offline_ceiling(calls: list[dict], options) -> dict:
    """The recorded requests through vLLM's offline LLM.generate in a fresh process, same engine settings."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(
            {
                "options": options.__dict__,
                "requests": [
                    {"prompt": c["prompt"], "schema": c["schema"], "max_tokens": c["max_tokens"]} for c in calls
                ],
            },
            f,
        )
    try:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.llm_stage", "--offline", f.name],
            capture_output=True,
            text=True,
            timeout=7200,
        )
        if done.returncode != 0:
            raise RuntimeError(f"offline run failed:\n{done.stderr[-3000:]}")
        result = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARK)]
        if not result:
            raise RuntimeError(f"offline run printed no result:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        return json.loads(result[-1][len(RESULT_MARK) :])
    finally:
        os.unlink(f.name)


def _offline_main(path: str) -> None:
    """Child process: vllm.LLM with the pipeline's engine settings; prints {"generated", "seconds", "prompt"}."""
    spec = json.loads(Path(path).read_text())
    o = spec["options"]
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(o["kv_cache_gib"]))
    from vllm import LLM, SamplingParams
    from vllm.config import StructuredOutputsConfig
    from vllm.sampling_params import StructuredOutputsParams

    llm = LLM(
        model=o["model"],
        max_model_len=o["max_model_len"],
        enforce_eager=o["enforce_eager"],
        enable_prefix_caching=True,
        gpu_memory_utilization=o["gpu_memory_utilization"],
        seed=o["seed"],
        dtype=o["dtype"],
        max_num_seqs=o["max_in_flight"],
        structured_outputs_config=StructuredOutputsConfig(backend="xgrammar", disable_any_whitespace=True),
    )
    requests = spec["requests"]
    params = [
        SamplingParams(
            max_tokens=r["max_tokens"],
            temperature=o["temperature"],
            structured_outputs=StructuredOutputsParams(json=r["schema"]) if r["schema"] else None,
        )
        for r in requests
    ]
    started = time.perf_counter()
    outputs = llm.generate([r["prompt"] for r in requests], params, use_tqdm=False)
    seconds = time.perf_counter() - started
    print(
        RESULT_MARK
        + json.dumps(
            {
                "generated": sum(len(o.outputs[0].token_ids) for o in outputs),
                "seconds": seconds,
                "prompt": sum(len(o.prompt_token_ids or []) for o in outputs),
            }
        )
    )


def _mean_in_flight(calls: list[dict], cap: int) -> float:
    """Integral over time of the requests inside the engine. A recorded span starts before the engine's semaphore
    (SCIQAG_MAX_IN_FLIGHT), so at any moment min(cap, open spans) are running: the semaphore never idles a slot."""
    edges = sorted([(c["start"], 1) for c in calls] + [(c["end"], -1) for c in calls])
    total, open_spans, last = 0.0, 0, edges[0][0] if edges else 0.0
    for at, step in edges:
        total += min(cap, open_spans) * (at - last)
        open_spans, last = open_spans + step, at
    return total


def _common_prefix(strings: list[str]) -> str:
    return os.path.commonprefix(strings) if strings else ""


def synthetic_papers(n: int, out: Path) -> list[Path]:
    """n distinct short papers (the bundled samples with a numbered variation), rendered with PyMuPDF."""
    from processors.local.samples import SAMPLES_DIR, render_pdf

    sources = sorted(SAMPLES_DIR.glob("*.md"))
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        text = sources[i % len(sources)].read_text(encoding="utf-8")
        lines = text.splitlines()
        lines.insert(1, f"\nSample {i}: measured at {20 + i % 50} °C with {i} repetitions.\n")
        target = out / f"paper-{i:04d}.pdf"
        render_pdf("\n".join(lines), target)
        paths.append(target)
    return paths


def copies_of(paths: list[Path], copies: int, out: Path) -> list[Path]:
    """Each PDF `copies` times, each copy with its own metadata subject (so its own content hash and paper_id)."""
    import pymupdf

    out.mkdir(parents=True, exist_ok=True)
    result = []
    for n in range(copies):
        for path in paths:
            with pymupdf.open(path) as doc:
                doc.set_metadata({**doc.metadata, "subject": f"sciqag-stream benchmark copy {n}"})
                target = out / f"{path.stem}.copy{n}.pdf"
                target.write_bytes(doc.tobytes())
            result.append(target)
    return result


def run(
    *,
    model: str = "",
    sizes=(10, 100, 1000),
    pairs: int = 10,
    mcq: int = 4,
    max_model_len: int = 8192,
    max_context_tokens: int = 0,
    copies: int = 1,
) -> list[Row]:
    from processors.llm import engine_options
    from processors.local.broker import free_port
    from processors.local.model import prepare_bundled_model
    from processors.settings import Settings

    model_dir = model or str(prepare_bundled_model())
    papers = [p for p in sorted(PDFS.glob("*.pdf"))]
    if not papers:
        raise FileNotFoundError(f"no PDFs in {PDFS}")
    recorders: list[RecordingEngine] = []

    @contextlib.asynccontextmanager
    async def recording(settings, model_dir_):
        async with real_open_llm(settings, model_dir_) as engine:
            recorder = RecordingEngine(engine)
            recorders.append(recorder)
            yield recorder

    def settings_for(tmp: str, **extra) -> Settings:
        return Settings(
            data_dir=Path(tmp),
            metrics_port=free_port(),
            pairs_per_paper=pairs,
            mcq_per_paper=mcq,
            max_model_len=max_model_len,
            max_context_tokens=max_context_tokens,
            model=model_dir,
            log_level="WARNING",
            file_roots=[str(PDFS), tmp, *copy_roots],
            **extra,
        )

    rows: list[Row] = []
    copy_roots: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as copies_dir:
        if copies > 1:  # a longer stream: the last papers' judge requests (a latency tail) weigh less
            papers = copies_of(papers, copies, Path(copies_dir))
            copy_roots.append(copies_dir)
        settings = settings_for(tmp)
        with llm_replaced(recording) as real_open_llm:
            real = run_pipeline(papers, settings)
        calls = recorders[0].calls
        if not calls:
            raise RuntimeError(f"no LLM request was made: {real}")
        first_request = min(c["start"] for c in calls)
        llm_window = max(c["end"] for c in calls) - first_request
        generated = sum(c["generated_tokens"] for c in calls)
        # how full the pipeline kept the engine: requests in flight averaged over the window (offline: 16 until its
        # queue runs out)
        mean_in_flight = _mean_in_flight(calls, settings.max_in_flight) / llm_window
        ceiling = offline_ceiling(calls, engine_options(settings, model_dir))
        rows.append(
            Row(
                "llm_stage",
                "pipeline generated tok/s",
                generated / llm_window,
                "offline LLM.generate tok/s",
                ceiling["generated"] / ceiling["seconds"],
                target=0.9,
                note=f"{len(calls)} requests recorded from {real['scored']} scored papers of {len(papers)} "
                f"({pairs} pairs + {mcq} MCQ each); pipeline: {generated} tokens in {llm_window:.1f} s "
                f"(first request to last answer), {mean_in_flight:.1f} requests in flight on average; offline: "
                f"{ceiling['generated']} tokens in "
                f"{ceiling['seconds']:.1f} s, max_num_seqs = the pipeline's max_in_flight "
                f"{settings.max_in_flight}",
            )
        )

        judge = [c for c in calls if c["role"] == "judge"]
        total = sum(c["prompt_tokens"] for c in judge)
        computed = total - sum(c["cached"] for c in judge)
        by_paper: dict[str, list[dict]] = defaultdict(list)
        for c in judge:
            by_paper[":".join(c["request_id"].split(":")[1:4])].append(c)
        ideal = 0
        for group in by_paper.values():
            prefix = recorders[0].count_tokens(_common_prefix([c["prompt"] for c in group]))
            ideal += prefix + sum(c["prompt_tokens"] - prefix for c in group)
        rows.append(
            Row(
                "prefix_cache",
                "judge prompt tokens computed, share",
                computed / max(total, 1),
                "ideal: each paper's text once",
                ideal / max(total, 1),
                note=f"{len(judge)} judge requests over {len(by_paper)} papers: {total} prompt tokens, "
                f"{total - computed} served from the prefix cache; ratio 1.0 = ideal, higher = "
                f"recomputed",
            )
        )

        with tempfile.TemporaryDirectory() as tmp2:
            replay_settings = settings_for(tmp2)

            @contextlib.asynccontextmanager
            async def replay(settings_, model_dir_):
                yield ReplayEngine(calls, model_dir, max_model_len)

            with llm_replaced(replay):
                fast = run_pipeline(papers, replay_settings)
        real_window = real["end"] - first_request  # from engine ready: the engine's start-up is not pipeline work
        rows.append(
            Row(
                "overhead",
                "s outside the LLM (replay run)",
                fast["end"] - fast["start"],
                "s end to end, real run",
                real_window,
                note=f"ratio = share of end-to-end time spent outside LLM calls on {len(papers)} real "
                f"PDFs (extraction, broker round trips, (de)serialisation, quality measures, sink)",
            )
        )

        base = None
        for n in sizes:
            with tempfile.TemporaryDirectory() as tmp3:
                paths = synthetic_papers(n, Path(tmp3) / "papers")
                with llm_replaced(replay):
                    timing = run_pipeline(paths, settings_for(tmp3))
            per_paper = (timing["end"] - timing["start"]) / n
            base = base or per_paper
            rows.append(
                Row(
                    "overhead_scaling",
                    f"s per paper at {n} papers",
                    per_paper,
                    f"s per paper at {sizes[0]} papers",
                    base,
                    note=f"{timing['scored']} scored, {timing['failed']} failed; "
                    "replay engine; a ratio that stays near or below 1 means linear",
                )
            )

        per_paper = {
            "generator prompt": sum(c["prompt_tokens"] for c in calls if c["role"] == "generator"),
            "generator output": sum(c["generated_tokens"] for c in calls if c["role"] == "generator"),
            "judge prompt": total,
            "judge prompt computed": computed,
            "judge output": sum(c["generated_tokens"] for c in judge),
        }
        n_papers = max(real["scored"], 1)
        per_paper = {k: v / n_papers for k, v in per_paper.items()}
        prefill = per_paper["generator prompt"] + per_paper["judge prompt computed"]
        decode = per_paper["generator output"] + per_paper["judge output"]
        tokens = ", ".join(f"{k} {v:,.0f}" for k, v in per_paper.items())
        for name, rate in H100_7B_RATES.items():
            hours = SCIQAG_PAPERS * (prefill / rate["prefill"] + decode / rate["decode"]) / 3600
            rows.append(
                Row(
                    "projection",
                    f"hours for {SCIQAG_PAPERS:,} papers ({name})",
                    hours,
                    f"SciQAG notebook at {SCIQAG_NOTEBOOK_S_PER_PAPER} s/paper, h",
                    SCIQAG_PAPERS * SCIQAG_NOTEBOOK_S_PER_PAPER / 3600,
                    note=f"per paper: {tokens} tokens; assumed 7B on 1xH100: {rate['prefill']:,.0f} prefill "
                    f"and {rate['decode']:,.0f} generated tok/s",
                )
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="", help="model folder (default: the bundled SmolLM2-135M-Instruct)")
    parser.add_argument("--sizes", default="10,100,1000", help="paper counts for the overhead scaling runs")
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--mcq", type=int, default=4)
    parser.add_argument("--max-context-tokens", type=int, default=0)
    parser.add_argument("--max-model-len", type=int, default=8192)
    parser.add_argument(
        "--copies", type=int, default=1, help="stream each real PDF this many times (distinct paper ids; default 1)"
    )
    parser.add_argument("--offline", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.offline:
        _offline_main(args.offline)
        return
    rows = run(
        model=args.model,
        sizes=tuple(int(s) for s in args.sizes.split(",")),
        pairs=args.pairs,
        mcq=args.mcq,
        max_model_len=args.max_model_len,
        max_context_tokens=args.max_context_tokens,
        copies=args.copies,
    )
    print(format_table(rows))


if __name__ == "__main__":
    main()
