"""MERA's ruWorldTree format: four-option multiple choice, scored by accuracy and macro F1.

A row: `instruction` (a template with {question} and {option_a}..{option_d}),
`inputs` {question, option_a..option_d}, `outputs` (the answer letter),
`meta` {id, exam_name, school_grade, knowledge_type}.

Our items map to it as follows (documented in the README):
- exam_name      <- the paper's journal (or "sciqag-stream" when unknown)
- school_grade   <- a difficulty estimate, 7..11: 7, +1 for numbers in the correct option,
                    +1 for a long question (> 20 words), +1 for a long correct option (> 8 words),
                    +1 when the question asks why/how (a causal or process question)
- knowledge_type <- from the question's form, in WorldTree's vocabulary: CAUSAL (why, what causes),
                    PROCESS (how, by what method), PROPERTIES (values, quantities), else NO TYPE
- the correct option's letter is assigned so that A-D are balanced over the export
  (item i, ordered by qa_id, gets letter i mod 4); templates are spread evenly (template i mod 10).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

LETTERS = "ABCD"

# The 5 templates seen in MERA's public cards and code, then 5 written here in the same style.
TEMPLATES = [
    "{question}\nA) {option_a}\nB) {option_b}\nC) {option_c}\nD) {option_d}\nЗапишите только букву верного варианта: A, B, C или D.\nОтвет:",
    "{question}\nA. {option_a}\nB. {option_b}\nC. {option_c}\nD. {option_d}\nКакой ответ является правильным? В качестве ответа запишите только букву верного варианта: A, B, C или D без дополнительных объяснений.\nОтвет:",
    "Опираясь на логику и общеизвестные факты, ответьте на вопрос: {question}\nA. {option_a}\nB. {option_b}\nC. {option_c}\nD. {option_d}\nВ качестве ответа запишите только букву верного варианта: A, B, C или D без дополнительных объяснений.\nОтвет:",
    "{question}\nA. {option_a}\nB. {option_b}\nC. {option_c}\nD. {option_d}\nВыберите ответ из списка.\nОтвет:",
    "Опираясь на логику и общеизвестные факты, ответьте на вопрос: {question}\nA) {option_a}\nB) {option_b}\nC) {option_c}\nD) {option_d}\nОтвет:",
    "Вопрос: {question}\nВарианты ответа:\nA. {option_a}\nB. {option_b}\nC. {option_c}\nD. {option_d}\nВыберите один правильный вариант и запишите только его букву (A, B, C или D).\nОтвет:",
    "Ниже приведён вопрос по естественным наукам с четырьмя вариантами ответа.\n{question}\nA) {option_a}\nB) {option_b}\nC) {option_c}\nD) {option_d}\nУкажите букву правильного ответа.\nОтвет:",
    "Прочитайте вопрос и выберите верный ответ.\n{question}\nA. {option_a}\nB. {option_b}\nC. {option_c}\nD. {option_d}\nВ ответе укажите только букву: A, B, C или D.\nОтвет:",
    "{question}\nВозможные ответы:\nA) {option_a}\nB) {option_b}\nC) {option_c}\nD) {option_d}\nКакой из вариантов верен? Ответьте одной буквой.\nОтвет:",
    "Используя научные знания, ответьте на вопрос.\nВопрос: {question}\nA. {option_a}\nB. {option_b}\nC. {option_c}\nD. {option_d}\nЗапишите букву правильного варианта без пояснений.\nОтвет:",
]
FEWSHOT_TEMPLATE = "{question}\nA) {option_a}\nB) {option_b}\nC) {option_c}\nD) {option_d}\nОтвет:"

_CAUSAL = re.compile(
    r"^\s*(why|what causes|what is the reason|почему|по какой причине|что вызывает|чем объясняется)", re.I
)
_PROCESS = re.compile(
    r"^\s*(how|by what|what method|which method|как|каким образом|каким методом|с помощью чего)", re.I
)
_PROPERTIES = re.compile(
    r"^\s*(what (value|percentage|temperature|concentration|size)|how (much|many|large|long)|"
    r"сколько|какова|каков|какое значение|при какой температуре)",
    re.I,
)
_NUMBER = re.compile(r"\d")


@dataclass(frozen=True)
class MCQ:
    """A multiple-choice item as the pipeline stores it."""

    qa_id: str
    question: str
    options: list[str]
    correct: int  # 0-based index into options
    journal: str = ""


def knowledge_type(question: str) -> str:
    if _PROPERTIES.search(question):
        return "PROPERTIES"
    if _CAUSAL.search(question):
        return "CAUSAL"
    if _PROCESS.search(question):
        return "PROCESS"
    return "NO TYPE"


def school_grade(question: str, correct_option: str) -> int:
    grade = 7
    grade += bool(_NUMBER.search(correct_option))
    grade += len(question.split()) > 20
    grade += len(correct_option.split()) > 8
    grade += knowledge_type(question) in ("CAUSAL", "PROCESS")
    return grade


def to_mera(items: Iterable[MCQ]) -> list[dict]:
    """MERA rows with the correct letter balanced over A-D and templates spread evenly."""
    rows = []
    for i, item in enumerate(sorted(items, key=lambda it: it.qa_id)):
        if len(item.options) != 4 or not 0 <= item.correct < 4:
            raise ValueError(f"item {item.qa_id} needs four options and a correct index 0-3")
        target = i % 4
        distractors = [o for j, o in enumerate(item.options) if j != item.correct]
        options = distractors[:target] + [item.options[item.correct]] + distractors[target:]
        rows.append(
            {
                "instruction": TEMPLATES[i % len(TEMPLATES)],
                "inputs": {"question": item.question, **{f"option_{c}": o for c, o in zip("abcd", options)}},
                "outputs": LETTERS[target],
                "meta": {
                    "id": i,
                    "exam_name": item.journal or "sciqag-stream",
                    "school_grade": school_grade(item.question, item.options[item.correct]),
                    "knowledge_type": knowledge_type(item.question),
                },
            }
        )
    return rows


def read_mera(path: Path) -> list[dict]:
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        inputs = row.get("inputs") or {}
        missing = [k for k in ("question", "option_a", "option_b", "option_c", "option_d") if k not in inputs]
        if missing or "instruction" not in row:
            raise ValueError(f"{path}:{lineno}: not a MERA multiple-choice row (missing {missing or ['instruction']})")
        rows.append(row)
    return rows


def render(row: dict) -> str:
    """The row's instruction filled with its inputs ({text} is an alias of {question} in some MERA rows)."""
    inputs = row["inputs"]
    return row["instruction"].format(text=inputs["question"], **inputs)


def render_fewshot(row: dict) -> str:
    return FEWSHOT_TEMPLATE.format(**row["inputs"]) + " " + row["outputs"]


def accuracy(gold: list[str], pred: list[str]) -> float:
    return sum(g == p for g, p in zip(gold, pred)) / len(gold) if gold else float("nan")


def macro_f1(gold: list[str], pred: list[str]) -> float:
    """Macro F1 over the labels present in gold or predictions (sklearn's f1_score(average="macro"))."""
    labels = sorted(set(gold) | set(pred))
    scores = []
    for label in labels:
        tp = sum(g == label and p == label for g, p in zip(gold, pred))
        fp = sum(g != label and p == label for g, p in zip(gold, pred))
        fn = sum(g == label and p != label for g, p in zip(gold, pred))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return sum(scores) / len(scores) if scores else float("nan")


_LETTER = re.compile(r"(?<![A-ZА-ЯЁ])[ABCDАВС](?![A-ZА-ЯЁ])")  # a letter on its own, not inside a word
_CYRILLIC_TO_LATIN = {"А": "A", "В": "B", "С": "C"}


def extract_letter(text: str) -> str | None:
    """The first stand-alone answer letter in generated text (Cyrillic look-alikes А, В, С accepted)."""
    match = _LETTER.search(text.upper())
    return _CYRILLIC_TO_LATIN.get(match.group(0), match.group(0)) if match else None
