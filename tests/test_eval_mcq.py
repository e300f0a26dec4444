"""`sciqag eval-mcq` with the bundled model through vLLM, on the real ruWorldTree items."""

import json
import subprocess

import pytest

from sciqag.mera import accuracy, macro_f1

from .conftest import SHARED, sciqag_exe

pytestmark = [pytest.mark.slow, pytest.mark.llm]
ITEMS = SHARED / "ruworldtree" / "test_crowd_labelled.jsonl"


def _eval(tmp_path, name, *extra, limit: int = 24):
    out = tmp_path / f"{name}.jsonl"
    proc = subprocess.run(
        [sciqag_exe(), "eval-mcq", str(ITEMS), "--limit", str(limit), "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, [json.loads(line) for line in out.read_text().splitlines()]


def test_loglik_scoring_agrees_with_exact_prompt_logprobs_and_reports_metrics(tmp_path):
    # 12 items (48 option log-probabilities read both ways): the exact read costs a prefill per option
    stdout, fast = _eval(tmp_path, "fast", "--shots", "1", limit=12)
    _, exact = _eval(tmp_path, "exact", "--shots", "1", "--exact", limit=12)
    assert len(fast) == len(exact) == 12
    gaps = []
    for a, b in zip(fast, exact):
        assert a["gold"] == b["gold"] and a["pred"] == b["pred"]
        gaps += [abs(a["logprobs"][c] - b["logprobs"][c]) for c in "ABCD"]
    # the same log-probability read two ways; bf16 sums differ slightly between a decode step and a prefill
    assert sum(gaps) / len(gaps) < 0.02 and max(gaps) < 0.25
    gold, pred = [p["gold"] for p in fast], [p["pred"] for p in fast]
    assert f"accuracy {accuracy(gold, pred):.4f}" in stdout and f"macro-F1 {macro_f1(gold, pred):.4f}" in stdout


def test_generative_mode_extracts_letters(tmp_path):
    stdout, preds = _eval(tmp_path, "gen", "--mode", "generate", limit=12)  # letter extraction: test_fidelity.py
    assert len(preds) == 12 and all(p["pred"] in ("A", "B", "C", "D", "") for p in preds)
    assert "accuracy" in stdout and "unanswered" in stdout
