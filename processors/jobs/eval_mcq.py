"""`sciqag eval-mcq`: a model through vLLM on any MERA-format multiple-choice file."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from sciqag.mera import LETTERS, accuracy, extract_letter, macro_f1, read_mera, render, render_fewshot

from ..llm import EngineOptions
from ..llm.vllm_local import VLLMInProcess, open_engine
from ..progress import Progress


def build_prompt(rows: list[dict], index: int, shots: int) -> str:
    """K worked examples (other items of the same file, in file order) then the item's own instruction."""
    examples = [render_fewshot(r) for j, r in enumerate(rows) if j != index][:shots]
    return "\n\n".join([*examples, render(rows[index])])


async def score_rows(
    engine: VLLMInProcess,
    rows: list[dict],
    *,
    shots: int,
    mode: str,
    concurrency: int = 32,
    progress=None,
    exact: bool = False,
) -> list[dict]:
    gate = asyncio.Semaphore(concurrency)
    done = 0

    async def one(i: int) -> dict:
        nonlocal done
        async with gate:
            prompt = build_prompt(rows, i, shots)
            if mode == "loglik":
                # the continuation after "Ответ:" is " A" .. " D", as in MERA's log-likelihood harness
                lps = await engine.continuation_logprobs(
                    prompt, [f" {c}" for c in LETTERS], request_id=f"mcq-{i}", exact=exact
                )
                pred = LETTERS[max(range(4), key=lambda k: lps[k])]
                detail = {"logprobs": dict(zip(LETTERS, lps))}
            else:
                text = await engine.complete(prompt, max_tokens=8, request_id=f"mcq-gen-{i}")
                pred = extract_letter(text) or ""
                detail = {"generated": text}
        done += 1
        if progress:
            progress(done, len(rows))
        return {"id": rows[i].get("meta", {}).get("id", i), "gold": rows[i].get("outputs", ""), "pred": pred, **detail}

    return list(await asyncio.gather(*(one(i) for i in range(len(rows)))))


def report(preds: list[dict]) -> dict:
    gold = [p["gold"] for p in preds]
    pred = [p["pred"] for p in preds]
    return {
        "items": len(preds),
        "accuracy": accuracy(gold, pred),
        "macro_f1": macro_f1(gold, pred),
        "unanswered": sum(1 for p in pred if not p),
    }


def eval_mcq(
    path: Path, options: EngineOptions, *, shots: int, mode: str, out: Path | None, limit: int = 0, exact: bool = False
) -> dict:
    rows = read_mera(path)[: limit or None]
    if not rows:
        raise ValueError(f"{path} holds no items")
    started = time.monotonic()

    bar = Progress(len(rows), "items scored", started=started, every_s=5)

    def progress(done: int, total: int) -> None:
        bar.update(done)

    async def main() -> list[dict]:
        async with open_engine(options) as engine:
            print(
                f"engine up after {time.monotonic() - started:.0f} s; scoring {len(rows)} items ({mode}, {shots}-shot)",
                file=sys.stderr,
                flush=True,
            )
            return await score_rows(engine, rows, shots=shots, mode=mode, progress=progress, exact=exact)

    preds = asyncio.run(main())
    bar.close()
    if out:
        out.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in preds), encoding="utf-8")
    result = report(preds)
    result["seconds"] = time.monotonic() - started
    return result
