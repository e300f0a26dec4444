"""An OpenAI-compatible LLM stand-in that answers at once, for tests that need volume through the LLM stages.

A real ASGI server (Starlette on uvicorn) speaking the part of the OpenAI API the HTTP backend uses
(processors/llm/openai_http.py): `GET /v1/models` and `POST /v1/chat/completions` with
`response_format: json_schema`. It reads the paper out of the prompt's <paper> fence and answers the generator with
keywords and pairs whose answers and evidence are sentences of that paper (so the generator locates every quote),
and the judge with RACAR scores drawn from a hash of the pair (so a re-delivered paper is judged the same). Every
answer is validated against the request's own JSON schema before it is sent: a schema the stand-in cannot fill is
a 500, never an invalid answer. One pair in three papers mentions a figure, so the pre-filter has work too.

It counts its requests and tokens on `/metrics`: `standin_requests_total{kind}`, `standin_tokens_total{kind}`.

    python -m tests.llm_standin --port PORT [--delay-ms N] [--model NAME] [--max-answers N]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

MODEL = "sciqag-standin"
_PAPER = re.compile(r"<paper>\n(.*?)\n</paper>", re.DOTALL)
_PAIR = re.compile(r"<pair>\n(.*?)\n</pair>", re.DOTALL)
_SENTENCE = re.compile(r"[^.!?]{40,}?[.!?](?=\s|$)")
_WORD = re.compile(r"[A-Za-zА-Яа-я][A-Za-zА-Яа-я-]{4,}")


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _sentences(paper: str) -> list[str]:
    found = [" ".join(s.split()) for s in _SENTENCE.findall(paper)]
    return [s for s in found if 40 <= len(s) <= 290] or [" ".join(paper.split())[:290]]


def generation_answer(paper: str, n_keywords: int, n_pairs: int) -> dict:
    sentences = _sentences(paper)
    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(paper)))
    keywords = [w[:60] for w in words[:n_keywords]]
    keywords += [f"keyword {i}" for i in range(n_keywords - len(keywords))]
    figure_pair = _digest(paper) % 3 == 0  # one paper in three: its last pair points at a figure (pre-filtered)
    pairs = []
    for i in range(n_pairs):
        sentence = sentences[i % len(sentences)]
        topic = keywords[i % len(keywords)]
        question = f"What was found about {topic} in the measurements, case {i + 1}?"
        if figure_pair and i == n_pairs - 1:
            question = f"What does Figure {i + 1} show about {topic}?"
        pairs.append({"question": question, "answer": sentence[:400], "evidence": [sentence[:300]]})
    return {"keywords": keywords, "qa_pairs": pairs}


def judge_answer(prompt: str, dimensions: list[str], mcq: bool = False) -> dict:
    pair = _PAIR.search(prompt)
    seed = _digest(pair.group(1) if pair else prompt)
    answer = {}
    for n, dimension in enumerate(dimensions):
        score = 3 if (seed >> n) % 4 else 2  # mostly 3: about a third of the pairs pass the strict policy
        answer[dimension] = {"score": score, "reason": f"The answer is supported by the paper ({dimension})."}
    if mcq:  # a multiple-choice item: the option numbers (1-4) the paper supports
        answer["correct_options"] = [1 + (seed >> 8) % 4]
    return answer


def answer_for(schema: dict, prompt: str) -> dict:
    props = schema.get("properties", {})
    paper_match = _PAPER.search(prompt)
    paper = paper_match.group(1) if paper_match else prompt
    if "qa_pairs" in props:
        return generation_answer(paper, props["keywords"]["minItems"], props["qa_pairs"]["minItems"])
    dimensions = [name for name in props if name != "correct_options"]
    if dimensions and all(isinstance(props[d], dict) and "score" in props[d].get("properties", {}) for d in dimensions):
        return judge_answer(prompt, dimensions, mcq="correct_options" in props)
    raise ValueError(f"the stand-in does not know how to fill a schema with properties {sorted(props)}")


def build_app(delay_s: float = 0.0, model: str = MODEL, max_answers: int = 0):
    """max_answers > 0: the process exits after that many answers, as a killed server would (later requests find
    nobody listening)."""
    import asyncio
    import os

    import jsonschema
    from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    requests = Counter("standin_requests", "Chat completions answered, by kind.", ["kind"])
    answered = itertools.count(1)
    tokens = Counter("standin_tokens", "Tokens (4 characters each) by kind (prompt | generated).", ["kind"])

    async def models(_: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": model, "object": "model", "max_model_len": 8192}]})

    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        prompt = "\n".join(m.get("content") or "" for m in body.get("messages", []))
        schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema")
        if not schema:
            return JSONResponse({"error": {"message": "the stand-in answers structured requests only"}}, 400)
        try:
            answer = answer_for(schema, prompt)
            jsonschema.validate(answer, schema)
        except (ValueError, jsonschema.ValidationError) as exc:
            return JSONResponse({"error": {"message": str(exc)[:500]}}, 500)
        if delay_s:
            await asyncio.sleep(delay_s)
        text = json.dumps(answer, ensure_ascii=False)
        kind = "generation" if "qa_pairs" in answer else "judge"
        requests.labels(kind).inc()
        prompt_tokens, completion_tokens = len(prompt) // 4 + 1, len(text) // 4 + 1
        tokens.labels("prompt").inc(prompt_tokens)
        tokens.labels("generated").inc(completion_tokens)
        return JSONResponse(
            {
                "id": request.headers.get("x-request-id", "standin"),
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
            background=BackgroundTask(os._exit, 0) if max_answers and next(answered) >= max_answers else None,
        )

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def health(_: Request) -> Response:
        return Response("ok")

    return Starlette(
        routes=[
            Route("/v1/models", models),
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/metrics", metrics),
            Route("/health", health),
        ]
    )


def start_llm_standin(
    port: int, log_file: Path, delay_ms: int = 0, model: str = MODEL, max_answers: int = 0
) -> subprocess.Popen:
    """Start the stand-in as its own process and wait until it answers; the caller stops it."""
    log = open(log_file, "a")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "tests.llm_standin", "--port", str(port), "--delay-ms", str(delay_ms)),
            *("--model", model, "--max-answers", str(max_answers)),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parent.parent,
    )
    log.close()
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError("the LLM stand-in did not come up:\n" + log_file.read_text()[-2000:]) from None
            time.sleep(0.2)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=int, default=0, help="answer after this long (default: at once)")
    parser.add_argument("--model", default=MODEL, help=f"the model name it reports (default: {MODEL})")
    parser.add_argument("--max-answers", type=int, default=0, help="exit after this many answers (default: never)")
    args = parser.parse_args()
    app = build_app(args.delay_ms / 1000, args.model, args.max_answers)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
