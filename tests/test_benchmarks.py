"""The benchmarks run and report ratios (figures are `make bench`'s business; here only that they work)."""

import pytest

from benchmarks import extraction, sink, vector_index
from benchmarks.common import Row, format_table

from .conftest import shared_pdfs


def test_extraction_benchmark_measures_both_sides():
    shared_pdfs()
    (row,) = extraction.run(rounds=1, with_markdown=False)
    assert row.value > 0 and row.baseline > 0 and row.ratio == row.value / row.baseline
    assert "image_only_pdf" in row.note  # the scan is left out, and said so
    assert "extractor pages/s" in format_table([row])


def test_table_flags_a_ratio_below_target():
    assert Row("x", "m", 1.0, "b", 4.0, target=0.5).status() == "BELOW TARGET"
    assert Row("x", "m", 3.0, "b", 4.0, target=0.5).status() == "ok"
    assert Row("x", "m", 3.0).status() == ""


@pytest.mark.slow
def test_sink_benchmark_runs_against_the_real_broker_and_chdb():
    agent, vs_json, bound = sink.run(2000, sink_batch_rows=500)  # several batches: the first one is not timed
    assert [r.benchmark for r in (agent, vs_json, bound)] == ["sink", "sink_vs_json_insert", "sink_bound"]
    assert agent.value == vs_json.value > 0 and vs_json.baseline > 0
    assert bound.baseline == agent.baseline > 0 and bound.value > 0
    assert " rows in " in agent.note and "us msgspec decode" in bound.note


def test_vector_index_benchmark_measures_the_stream_table_against_a_scan():
    rows = vector_index.run(sizes=(3000,), queries=20, settle_quiet_s=2, stream_batches=3)
    insert, lookup, recall, *streamed = rows
    assert insert.value > 0 and insert.baseline > insert.value  # the index costs inserts
    assert "parts after: mcq " in insert.note
    assert lookup.value > 0 and lookup.baseline > 0
    assert "fewer than 10 found: 0; own paper returned: 0" in lookup.note  # k rows, never the asking paper's
    assert recall.baseline >= 0.99  # the scan agrees with numpy: the exact answer is right
    assert "index used: yes" in lookup.note  # the stream's query is one the HNSW index answers
    assert recall.target == 0.95 and recall.value >= 0.9  # the index finds the exact neighbours
    # after 3 sink-sized inserts, at once and once merged: the 420 rows are found too, the parts are counted
    names = [r.measured for r in streamed]
    assert len(names) == 4, names
    for name, what in zip(names, ("lookup p99 ms", "recall@10", "lookup p99 ms", "recall@10")):
        assert name.startswith(f"{what} at 3.42k (3 stream inserts of 140 in "), names
    assert [", then settled in " in n for n in names] == [False, False, True, True], names
    for stream_lookup, stream_recall in (streamed[:2], streamed[2:]):
        assert "fewer than 10 found: 0; own paper returned: 0" in stream_lookup.note
        assert "index used: yes" in stream_lookup.note and "parts: mcq " in stream_lookup.note
        assert stream_recall.baseline >= 0.99 and stream_recall.value >= 0.9
