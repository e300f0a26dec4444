"""The whole pipeline on real parts: a Tansu broker, the vLLM engine with the bundled model, chDB."""
import shutil

import pytest

from schemas import RACAR_DIMENSIONS

from .conftest import SCAN, shared_pdfs
from .e2e import metric, open_store, run_sciqag

pytestmark = pytest.mark.slow


def test_real_papers_end_to_end(tmp_path, free_port):
    pdfs = shared_pdfs()
    result = run_sciqag(pdfs, tmp_path / "data", free_port, scrape=True)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "sciqag run summary" in result.stdout

    store = open_store(tmp_path / "data")
    papers = {r["source_uri"].rsplit("/", 1)[-1]: r for r in store.query("SELECT * FROM sciqag.papers FINAL")}
    qa = store.qa_rows()
    dead = store.query("SELECT * FROM sciqag.dead_letters FINAL")
    store.close()

    # every text-bearing paper is scored, with pairs whose five scores are in 1..3
    text_pdfs = [p.name for p in pdfs if p.name != SCAN]
    for name in text_pdfs:
        assert papers[name]["status"] == "scored", (name, papers[name])
        rows = [r for r in qa if r["paper_id"] == papers[name]["paper_id"]]
        assert rows and len(rows) == papers[name]["qa_pairs"], name
        for row in rows:
            assert all(1 <= row[d] <= 3 for d in RACAR_DIMENSIONS), row
            assert row["question"] and row["answer"] and row["keywords"]
            assert row["source_uri"].endswith(name)
    russian = [r for r in qa if r["source_uri"].endswith("phd__dissertation.pdf")]
    assert all(r["language"] == "ru" for r in russian)

    # the image-only scan is in the DLQ, with a reason that names it
    scan = [d for d in dead if d["source_uri"].endswith(SCAN)]
    assert len(scan) == 1 and scan[0]["stage"] == "extractor" and scan[0]["error_kind"] == "image_only_pdf"
    assert "image-only" in scan[0]["message"]
    assert papers[SCAN]["status"] == "failed"

    # the metrics endpoint reports the same paper and pair counts as ClickHouse
    scored = sum(1 for p in papers.values() if p["status"] == "scored")
    failed = sum(1 for p in papers.values() if p["status"] == "failed")
    assert metric(result.metrics, "sciqag_papers_total", stage="sink", outcome="scored") == scored == len(text_pdfs)
    assert metric(result.metrics, "sciqag_papers_total", stage="sink", outcome="failed") == failed == 1
    assert metric(result.metrics, "sciqag_qa_pairs_stored_total") == len(qa)
    judged = metric(result.metrics, "sciqag_qa_pairs_total")
    assert judged == len(qa)
    assert metric(result.metrics, "sciqag_qa_pairs_total", outcome="accepted") == sum(r["accepted"] for r in qa)
    assert metric(result.metrics, "sciqag_dlq_total", stage="extractor", reason="image_only_pdf") == 1
    assert metric(result.metrics, "sciqag_llm_tokens_total", role="generator", kind="generated") > 0
    assert metric(result.metrics, "sciqag_racar_score_count", dimension="accuracy") == len(qa)
    assert any(name.startswith("faust_") for name, _ in result.metrics)  # Faust's own monitor is exported too
    print(f"\nend-to-end: {result.summary.get('wall_seconds', 0):.0f} s, {len(qa)} pairs, "
          f"{result.summary.get('generated_tokens', 0):.0f} generated tokens")


def test_bad_files_are_reported_and_good_papers_still_scored_and_rerun_does_not_duplicate(tmp_path, free_port):
    from processors.samples import write_sample_pdfs

    inbox = tmp_path / "inbox"
    good = write_sample_pdfs(inbox)
    whole = good[0].read_bytes()
    (inbox / "truncated.pdf").write_bytes(whole[: len(whole) // 3])
    (inbox / "notes.txt").write_text("meeting notes, not a paper\n")
    data = tmp_path / "data"

    first = run_sciqag([inbox], data, free_port)
    assert first.returncode == 0, first.stderr[-4000:]
    assert "failed papers:" in first.stdout
    failed_lines = [ln for ln in first.stdout.splitlines() if ln.startswith("  ")]
    assert any("truncated.pdf" in ln and "extractor" in ln for ln in failed_lines), first.stdout
    assert any("notes.txt" in ln and "not_a_pdf" in ln for ln in failed_lines), first.stdout
    statuses = {v["file"].rsplit("/", 1)[-1]: v["status"] for v in first.summary["papers"].values()}
    assert statuses == {**{p.name: "scored" for p in good}, "truncated.pdf": "failed", "notes.txt": "failed"}

    store = open_store(data)
    first_ids = {(r["paper_id"], r["qa_id"]) for r in store.qa_rows()}
    store.close()
    assert first_ids

    second = run_sciqag([inbox], data, free_port)
    assert second.returncode == 0, second.stderr[-4000:]
    store = open_store(data)
    rows = store.qa_rows()
    paper_rows = store.query("SELECT paper_id, count() AS n FROM sciqag.papers FINAL GROUP BY paper_id")
    store.close()
    ids = [(r["paper_id"], r["qa_id"]) for r in rows]
    assert len(ids) == len(set(ids)), "a pair is stored twice"
    assert set(ids) >= first_ids or set(ids) <= first_ids  # same ids: deterministic qa_id per paper and index
    assert len(paper_rows) == len(good) + 2 and all(r["n"] == 1 for r in paper_rows)
