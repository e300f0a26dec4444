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
    rows = vector_index.run(sizes=(3000,), queries=20, settle_quiet_s=2)
    insert, lookup, recall = rows
    assert insert.value > 0 and insert.baseline > insert.value  # the index costs inserts
    assert "parts after: mcq " in insert.note
    assert lookup.value > 0 and lookup.baseline > 0
    assert "fewer than 10 found: 0; own paper returned: 0" in lookup.note  # k rows, never the asking paper's
    assert recall.baseline >= 0.99  # the scan agrees with numpy: the exact answer is right
    assert "index used: yes" in lookup.note  # the stream's query is one the HNSW index answers
    assert recall.target == 0.95 and recall.value >= 0.9  # the index finds the exact neighbours
