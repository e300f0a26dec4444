"""The LLM interface over HTTP: vLLM's OpenAI-compatible server (`vllm serve`).

For the scaled-out topology: generator and judge workers talk to a GPU host's
server instead of holding an engine. Structured output through the server's
`response_format: json_schema`; a semaphore caps requests in flight; connection
errors, timeouts and 5xx answers are retried with backoff, other errors are not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from .. import metrics
from . import LLMError, LLMResult, record_usage

log = logging.getLogger(__name__)

RETRIES = 3
CHARS_PER_TOKEN = 3.0  # conservative estimate when no tokenizer is available locally


class OpenAICompatible:
    def __init__(
        self,
        session,
        base_url: str,
        model: str,
        max_model_len: int,
        *,
        max_in_flight: int,
        temperature: float,
        tokenizer=None,
    ) -> None:
        self._session = session
        self._url = base_url.rstrip("/")
        self._tokenizer = tokenizer
        self._slots = asyncio.Semaphore(max_in_flight)
        self._temperature = temperature
        self.model_name = model
        self.max_model_len = max_model_len

    def count_tokens(self, text: str) -> int:
        if self._tokenizer is not None:
            return len(self._tokenizer.encode(text, add_special_tokens=False))
        return int(len(text) / CHARS_PER_TOKEN) + 1

    async def generate(
        self, messages: list[dict], *, json_schema: dict | None, max_tokens: int, request_id: str, role: str
    ) -> LLMResult:
        import aiohttp

        body = {
            "model": self.model_name,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": self._temperature,
        }
        if json_schema:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": json_schema, "strict": True},
            }
        headers = {"X-Request-Id": request_id}
        delay = 1.0
        async with self._slots:
            metrics.LLM_IN_FLIGHT.labels(role).inc()
            started = time.perf_counter()
            try:
                for attempt in range(1, RETRIES + 1):
                    try:
                        async with self._session.post(
                            f"{self._url}/chat/completions", json=body, headers=headers
                        ) as resp:
                            if resp.status >= 500:
                                raise aiohttp.ClientResponseError(
                                    resp.request_info, (), status=resp.status, message=(await resp.text())[:300]
                                )
                            if resp.status != 200:
                                metrics.LLM_ERRORS.labels(role, f"http_{resp.status}").inc()
                                raise LLMError(f"{self._url} answered {resp.status}: {(await resp.text())[:300]}")
                            data = await resp.json()
                        break
                    except (TimeoutError, aiohttp.ClientError) as exc:
                        metrics.LLM_ERRORS.labels(role, type(exc).__name__).inc()
                        if attempt == RETRIES:
                            raise LLMError(
                                f"request {request_id} to {self._url} failed {RETRIES} times: {exc!r}"
                            ) from exc
                        log.warning("LLM request %s failed (%r); retry %d in %.0f s", request_id, exc, attempt, delay)
                        await asyncio.sleep(delay)
                        delay *= 2
            finally:
                metrics.LLM_IN_FLIGHT.labels(role).dec()
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
            usage = data.get("usage") or {}
        except (KeyError, IndexError, TypeError) as exc:
            raise LLMError(f"unexpected answer from {self._url}: {str(data)[:300]}") from exc
        cached = ((usage.get("prompt_tokens_details") or {}).get("cached_tokens")) or 0
        result = LLMResult(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            generated_tokens=int(usage.get("completion_tokens", 0)),
            finish_reason=str(choice.get("finish_reason")),
            cached_prompt_tokens=int(cached),
        )
        record_usage(role, result, started)
        return result


@contextlib.asynccontextmanager
async def open_http_engine(
    base_url: str,
    *,
    model: str = "",
    api_key: str = "",
    timeout_s: float = 300,
    max_in_flight: int = 16,
    temperature: float = 0.3,
    tokenizer_path: str = "",
    wait_s: float = 600,
) -> AsyncIterator[OpenAICompatible]:
    """Connect to the server (waiting up to `wait_s` for it to come up) and learn its model and window."""
    import aiohttp

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    timeout = aiohttp.ClientTimeout(total=timeout_s, connect=10)
    async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                async with session.get(f"{base_url.rstrip('/')}/models") as resp:
                    resp.raise_for_status()
                    listing = (await resp.json())["data"]
                break
            except (TimeoutError, aiohttp.ClientError, KeyError) as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the LLM server at {base_url} did not answer within {wait_s:.0f} s: {exc!r}"
                    ) from exc
                await asyncio.sleep(2)
        entry = next((m for m in listing if m["id"] == model), None) if model else (listing[0] if listing else None)
        if entry is None:
            raise RuntimeError(
                f"the LLM server at {base_url} does not serve {model!r}; it serves {[m['id'] for m in listing]}"
            )
        tokenizer = None
        if tokenizer_path:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
        log.info("LLM server %s: model %s, window %s", base_url, entry["id"], entry.get("max_model_len"))
        yield OpenAICompatible(
            session,
            base_url,
            entry["id"],
            int(entry.get("max_model_len") or 4096),
            max_in_flight=max_in_flight,
            temperature=temperature,
            tokenizer=tokenizer,
        )
