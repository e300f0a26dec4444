"""The LLM interface the agents depend on, and how a worker opens one of its two backends.

Agents never touch an engine directly: they call `LLMEngine.generate()` with chat messages and a JSON schema.
`open_llm()` chooses the backend from the settings: vLLM in this process (`vllm_local.py`, the default) or an
OpenAI-compatible server such as `vllm serve` (`openai_http.py`, when SCIQAG_LLM_URL is set). Either one's lifetime
is an async context manager that always releases the engine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from .. import metrics
from ..errors import EngineDead, LLMError
from ..settings import Settings

__all__ = [
    "EngineDead",
    "EngineOptions",
    "LLMEngine",
    "LLMError",
    "LLMResult",
    "engine_options",
    "open_llm",
    "record_usage",
]


@dataclass(frozen=True)
class LLMResult:
    text: str
    prompt_tokens: int
    generated_tokens: int
    finish_reason: str
    cached_prompt_tokens: int = 0


class LLMEngine(Protocol):
    model_name: str
    max_model_len: int

    def count_tokens(self, text: str) -> int: ...

    async def generate(
        self, messages: list[dict], *, json_schema: dict | None, max_tokens: int, request_id: str, role: str
    ) -> LLMResult: ...


@dataclass(frozen=True)
class EngineOptions:
    """How to start an in-process vLLM engine."""

    model: str
    max_model_len: int = 8192
    max_in_flight: int = 16
    temperature: float = 0.3
    seed: int = 0
    enforce_eager: bool = True
    gpu_memory_utilization: float = 0.85
    kv_cache_gib: int = 2  # CPU backend: KV cache size (VLLM_CPU_KVCACHE_SPACE)
    dtype: str = "auto"
    name: str = ""


def record_usage(role: str, result: LLMResult, started: float) -> None:
    """The request's latency and tokens in the metrics, the same for every backend."""
    metrics.LLM_REQUEST_SECONDS.labels(role).observe(time.perf_counter() - started)
    metrics.LLM_TOKENS.labels(role, "prompt").inc(result.prompt_tokens)
    metrics.LLM_TOKENS.labels(role, "generated").inc(result.generated_tokens)
    metrics.LLM_TOKENS.labels(role, "cached_prompt").inc(result.cached_prompt_tokens)


def engine_options(settings: Settings, model_dir: str) -> EngineOptions:
    memory = settings.gpu_memory_utilization
    if memory <= 0:
        # vLLM's CPU backend reads this as the share of RAM to reserve; a GPU wants most of its memory
        memory = 0.85 if _has_cuda() else 0.2
    return EngineOptions(
        model=model_dir,
        max_model_len=settings.max_model_len,
        max_in_flight=settings.max_in_flight,
        temperature=settings.temperature,
        gpu_memory_utilization=memory,
    )


def _has_cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def open_llm(settings: Settings, model_dir: str | None):
    """The LLM backend: an OpenAI-compatible server when SCIQAG_LLM_URL is set, else vLLM in-process."""
    if settings.llm_url:
        from .openai_http import open_http_engine

        return open_http_engine(
            settings.llm_url,
            model=settings.model,
            api_key=settings.llm_api_key,
            timeout_s=settings.llm_timeout_s,
            max_in_flight=settings.max_in_flight,
            temperature=settings.temperature,
            tokenizer_path=settings.tokenizer,
        )
    from .vllm_local import open_engine

    if model_dir is None:
        raise ValueError("the in-process engine needs a model folder")
    return open_engine(engine_options(settings, model_dir))
