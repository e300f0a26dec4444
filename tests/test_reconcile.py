"""A paper processed twice keeps only its latest run's pairs: the sink against a real (embedded) ClickHouse.

Re-delivery after a crash and replay both run a paper again under the same qa_ids; when the later run keeps
fewer pairs or fails, the pairs only the earlier run had must go, or the papers table and the pairs disagree.
"""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY

from processors.pipeline.app import Pipeline
from processors.pipeline.context import EngineHolder
from processors.settings import Settings
from schemas import DeadLetter, PaperRef, encode
from schemas import topics as T

from .stage_harness import Record, scored_run, sink_batch, stage_topics


def _pruned_total() -> float:
    return REGISTRY.get_sample_value("sciqag_qa_pairs_pruned_total") or 0.0


class Sink:
    def __init__(self, tmp_path) -> None:
        settings = Settings(data_dir=tmp_path, quality_metrics=False)
        self.stages = Pipeline.create(settings, stage_topics(), EngineHolder())
        self.offset = 0

    def batch(self, *records) -> None:
        batch = []
        for record in records:
            topic, key = (
                (T.DLQ, record.paper_id) if isinstance(record, DeadLetter) else (T.SCORED, record.paper.paper_id)
            )
            batch.append(Record(topic, 0, self.offset, key.encode(), encode(record)))
            self.offset += 1
        asyncio.run(sink_batch(self.stages, batch))

    def stored(self) -> dict[str, tuple[str, int, list[int]]]:
        store = self.stages.context.store()
        papers = {r["paper_id"]: r for r in store.papers()}
        pairs: dict[str, list[int]] = {}
        for row in store.qa_rows():
            pairs.setdefault(row["paper_id"], []).append(row["pair_index"])
        return {pid: (r["status"], r["qa_pairs"], sorted(pairs.get(pid, []))) for pid, r in papers.items()}


def test_a_later_run_with_fewer_pairs_or_a_failure_replaces_the_earlier_pairs(tmp_path):
    sink = Sink(tmp_path)
    try:
        pruned_before = _pruned_total()
        sink.batch(*scored_run("p-a", [0, 1, 2]), *scored_run("p-b", [0, 1]))
        assert sink.stored() == {"p-a": ("scored", 3, [0, 1, 2]), "p-b": ("scored", 2, [0, 1])}

        # p-a again (re-delivered or replayed): pair 1 did not survive this time
        sink.batch(*scored_run("p-a", [0, 2]))
        assert sink.stored()["p-a"] == ("scored", 2, [0, 2])
        assert _pruned_total() - pruned_before == 1

        # the same run delivered once more changes nothing
        sink.batch(*scored_run("p-a", [0, 2]))
        assert sink.stored()["p-a"] == ("scored", 2, [0, 2])
        assert _pruned_total() - pruned_before == 1

        # p-b fails on its latest run: no pairs remain beside a failed paper; p-a is untouched
        sink.batch(
            DeadLetter(
                stage="generator", error_kind="llm_error", message="engine down", paper_id="p-b", paper_failed=True
            )
        )
        assert sink.stored() == {"p-a": ("scored", 2, [0, 2]), "p-b": ("failed", 0, [])}

        # a run that fails and then succeeds in one batch: the later outcome wins
        sink.batch(
            DeadLetter(stage="judge", error_kind="no_pair_judged", message="x", paper_id="p-a", paper_failed=True),
            *scored_run("p-a", [1]),
        )
        assert sink.stored()["p-a"] == ("scored", 1, [1])
    finally:
        sink.stages.close()


def test_records_from_before_the_keep_list_existed_are_stored_and_not_pruned(tmp_path):
    sink = Sink(tmp_path)
    try:
        sink.batch(*scored_run("p-old", [0, 1, 2]))
        sink.batch(*scored_run("p-old", [0], announce_ids=False))  # an older judge: no paper_qa_ids on the record
        assert sink.stored()["p-old"] == ("scored", 1, [0, 1, 2])
    finally:
        sink.stages.close()


def _stored_for_replay(tmp_path) -> None:
    sink = Sink(tmp_path)
    try:
        sink.batch(
            *scored_run("p-file", [0]),
            *scored_run("p-web", [0]),
            DeadLetter(
                stage="extractor",
                error_kind="corrupt_pdf",
                message="broken",
                paper_id="p-failed",
                source_uri="file:///inbox/failed.pdf",
            ),
        )
        inline = scored_run("p-inline", [0])[0]
        inline.paper = PaperRef(paper_id="p-inline", source_uri="inline:upload.pdf")
        web = scored_run("p-web", [0])[0]
        web.paper = PaperRef(
            paper_id="p-web",
            doi="10.1/web",
            title="A web paper",
            source_uri="https://example.org/web.pdf",
            source_feed="arxiv",
        )
        sink.batch(inline, web)
    finally:
        sink.stages.close()


def test_replay_selects_stored_papers_by_id_status_and_time(tmp_path, capsys):
    import msgspec

    from processors.cli import main
    from schemas import PaperSubmitted

    _stored_for_replay(tmp_path)
    out = tmp_path / "replay.jsonl"
    assert main(["replay", "--all", "--data-dir", str(tmp_path), "--out", str(out)]) == 0
    records = [msgspec.json.decode(line, type=PaperSubmitted) for line in out.read_bytes().splitlines()]
    by_id = {r.paper_id: r for r in records}
    assert set(by_id) == {"p-file", "p-web", "p-failed"}
    assert by_id["p-web"].pdf_uri == "https://example.org/web.pdf"
    assert (by_id["p-web"].doi, by_id["p-web"].title, by_id["p-web"].source_feed) == (
        "10.1/web",
        "A web paper",
        "arxiv",
    )
    assert by_id["p-failed"].pdf_uri == "file:///inbox/failed.pdf"
    assert "skipped p-inline: it was sent inline and its PDF is not stored" in capsys.readouterr().err

    assert main(["replay", "--all", "--status", "failed", "--dry-run", "--data-dir", str(tmp_path)]) == 0
    listed = capsys.readouterr()
    assert listed.out.split() == ["p-failed", "file:///inbox/failed.pdf"]

    # a time range on when each paper was stored (just now)
    assert main(["replay", "--until", "2000-01-01", "--dry-run", "--data-dir", str(tmp_path)]) == 0
    assert "would replay 0 papers" in capsys.readouterr().err
    assert main(["replay", "--since", "2000-01-01T00:00Z", "--dry-run", "--data-dir", str(tmp_path)]) == 0
    assert "would replay 3 papers" in capsys.readouterr().err

    # an id the store does not have is reported and fails the command; the ones it has are still written
    assert (
        main(["replay", "--paper-id", "p-file", "--paper-id", "p-nope", "--data-dir", str(tmp_path), "--out", str(out)])
        == 1
    )
    assert "not found: p-nope" in capsys.readouterr().err
    assert [msgspec.json.decode(line)["paper_id"] for line in out.read_bytes().splitlines()] == ["p-file"]


def test_replay_refuses_unclear_requests(tmp_path, capsys):
    from processors.cli import main

    assert main(["replay", "--data-dir", str(tmp_path), "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "choose the papers" in capsys.readouterr().err
    assert main(["replay", "--all", "--data-dir", str(tmp_path)]) == 2  # no broker and no --out
    assert "publishes to a broker" in capsys.readouterr().err
    assert main(["replay", "--since", "yesterday", "--dry-run", "--data-dir", str(tmp_path)]) == 2
    assert "not an ISO 8601 time" in capsys.readouterr().err
