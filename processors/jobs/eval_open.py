"""`sciqag eval-open`: closed-book answers from one model, graded against the reference by a judge (CAR, 1-5).

Two phases, each resumable: answers are appended to `<out>.answers.jsonl` as they
come, graded items to `<out>`; a re-run skips what either file already holds.
When the judge is another model the answering engine is shut down before the
judge's starts, so one machine holds one model at a time.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sciqag.errors import ModelOutputError
from sciqag.parsing import parse_car
from sciqag.prompts import CAR_DIMENSIONS, CAR_PROMPT_VERSION, answer_messages, car_messages, car_schema
from sciqag.splits import category_of

from ..errors import EngineDead, LLMError
from ..llm import open_llm
from ..progress import Progress
from ..settings import Settings

JUDGE_ATTEMPTS = 2


@dataclass
class TestItem:
    id: str
    question: str
    reference: str
    paper_id: str
    category: str


def read_test_items(path: Path) -> list[TestItem]:
    """A test split in the `qa` shape ({question, answer, paper_id, category}) or SciQAG's {Q, A}."""
    items = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{lineno}: not JSON: {exc}") from exc
        question = raw.get("question", raw.get("Q")) if isinstance(raw, dict) else None
        reference = raw.get("answer", raw.get("A")) if isinstance(raw, dict) else None
        if not isinstance(question, str) or not isinstance(reference, str) or not question.strip():
            raise ValueError(f"{path}:{lineno}: needs a question and a reference answer (question/answer or Q/A)")
        digest = hashlib.sha256(f"{question}\n{reference}".encode()).hexdigest()[:12]
        items.append(
            TestItem(
                id=f"{lineno}-{digest}",
                question=question,
                reference=reference,
                paper_id=raw.get("paper_id", ""),
                category=raw.get("category") or category_of(raw),
            )
        )
    return items


def read_done(path: Path) -> dict[str, dict]:
    """Rows already written; a line cut off by an interruption is dropped from the file, so its item is redone."""
    if not path.exists():
        return {}
    done, kept, broken = {}, [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
            done[row["id"]] = row
            kept.append(line + "\n")
        except (json.JSONDecodeError, KeyError, TypeError):
            broken = True
    if broken:
        path.write_text("".join(kept), encoding="utf-8")
    return done


async def _answer_all(engine, items: list[TestItem], sink, max_tokens: int) -> None:
    progress = Progress(len(items), "answered", every_s=10)

    async def one(item: TestItem) -> None:
        try:
            result = await engine.generate(
                answer_messages(item.question),
                json_schema=None,
                max_tokens=max_tokens,
                request_id=f"answer-{item.id}",
                role="answer",
            )
            row = {"id": item.id, "answer": result.text.strip(), "answer_tokens": result.generated_tokens}
        except EngineDead:
            raise
        except LLMError as exc:
            row = {"id": item.id, "answer": "", "answer_error": str(exc)}
        row["answer_model"] = engine.model_name
        sink.write(json.dumps(row, ensure_ascii=False) + "\n")
        sink.flush()
        progress.tick()

    await asyncio.gather(*(one(i) for i in items))


async def _judge_all(engine, items: list[TestItem], answers: dict[str, dict], sink, max_tokens: int) -> None:
    progress = Progress(len(items), "graded", every_s=10)
    schema = car_schema()

    async def one(item: TestItem) -> None:
        answer = answers[item.id]
        row = {
            "id": item.id,
            "paper_id": item.paper_id,
            "category": item.category,
            "question": item.question,
            "reference": item.reference,
            "answer": answer.get("answer", ""),
            "answer_model": answer.get("answer_model", ""),
            "judge_model": engine.model_name,
            "prompt_version": CAR_PROMPT_VERSION,
            "scores": None,
            "reasons": None,
        }
        error = None
        for attempt in range(1, JUDGE_ATTEMPTS + 1):
            try:
                result = await engine.generate(
                    car_messages(item.question, item.reference, row["answer"]),
                    json_schema=schema,
                    max_tokens=max_tokens,
                    request_id=f"car-{item.id}-{attempt}",
                    role="car_judge",
                )
                grades = parse_car(result.text)
                row["scores"] = {d: grades[d].score for d in CAR_DIMENSIONS}
                row["reasons"] = {d: grades[d].reason for d in CAR_DIMENSIONS}
                error = None
                break
            except EngineDead:
                raise
            except (LLMError, ModelOutputError) as exc:
                error = f"{exc.kind}: {exc}"
        if error:
            row["error"] = error
        sink.write(json.dumps(row, ensure_ascii=False) + "\n")
        sink.flush()
        progress.tick()

    await asyncio.gather(*(one(i) for i in items))


def eval_open(
    test_file: Path,
    settings: Settings,
    *,
    model: str,
    judge: str,
    out: Path,
    limit: int = 0,
    answer_max_tokens: int = 256,
    judge_max_tokens: int = 400,
) -> dict:
    """Returns {"results": [...], "answer_seconds_per_item", "judge_seconds_per_item"} (per item of this run)."""
    items = read_test_items(test_file)[: limit or None]
    if not items:
        raise ValueError(f"{test_file} holds no items")
    answers_file = out.with_name(out.name + ".answers.jsonl")
    graded = read_done(out)
    answers = read_done(answers_file)
    to_answer = [i for i in items if i.id not in graded and i.id not in answers]
    to_grade = [i for i in items if i.id not in graded]
    if len(to_grade) < len(items):
        print(
            f"resuming: {len(items) - len(to_grade)} items already graded, {len(answers)} answers kept", file=sys.stderr
        )
    timings = {"answer_seconds_per_item": None, "judge_seconds_per_item": None}

    async def phase(model_path: str, work) -> float:
        started = time.monotonic()
        async with open_llm(settings.with_overrides(model=model_path), model_path) as engine:
            print(
                f"engine up after {time.monotonic() - started:.0f} s: {engine.model_name}", file=sys.stderr, flush=True
            )
            work_started = time.monotonic()
            await work(engine)
            return time.monotonic() - work_started

    async def main() -> None:
        async def answer(engine) -> None:
            with answers_file.open("a", encoding="utf-8") as sink:
                await _answer_all(engine, to_answer, sink, answer_max_tokens)

        async def grade(engine) -> None:
            answers.update(read_done(answers_file))
            with out.open("a", encoding="utf-8") as sink:
                await _judge_all(engine, to_grade, answers, sink, judge_max_tokens)

        if to_answer and to_grade and judge == model:

            async def both(engine) -> None:
                t0 = time.monotonic()
                await answer(engine)
                timings["answer_seconds_per_item"] = (time.monotonic() - t0) / len(to_answer)
                t1 = time.monotonic()
                await grade(engine)
                timings["judge_seconds_per_item"] = (time.monotonic() - t1) / len(to_grade)

            await phase(model, both)
            return
        if to_answer:
            timings["answer_seconds_per_item"] = await phase(model, answer) / len(to_answer)
        if to_grade:
            timings["judge_seconds_per_item"] = await phase(judge, grade) / len(to_grade)

    out.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(main())
    wanted = {i.id for i in items}
    results = [r for r in read_done(out).values() if r["id"] in wanted]
    return {"results": results, **timings}
