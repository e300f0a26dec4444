"""The generator and judge over HTTP against a real `vllm serve` (the CPU vLLM package, bundled model)."""
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from processors.samples import write_sample_pdfs

from .e2e import metric, open_store, run_sciqag
from .test_deploy import dashboard_metric_names

pytestmark = pytest.mark.slow


def test_pipeline_over_http_against_vllm_serve(tmp_path, free_port, vllm_server):
    papers = write_sample_pdfs(tmp_path / "inbox")
    result = run_sciqag(papers, tmp_path / "data", free_port, scrape=True,
                        extra=["--llm-url", f"{vllm_server}/v1", "--model", "sciqag-llm"])
    assert result.returncode == 0, result.stderr[-4000:]
    statuses = [v["status"] for v in result.summary["papers"].values()]
    assert statuses == ["scored"] * len(papers)
    store = open_store(tmp_path / "data")
    rows = store.qa_rows()
    store.close()
    assert rows and {r["judge_model"] for r in rows} == {"sciqag-llm"}
    assert metric(result.metrics, "sciqag_llm_tokens_total", role="judge", kind="generated") > 0
    assert metric(result.metrics, "sciqag_qa_pairs_stored_total") == len(rows)

    # the server's own metrics: every vllm:* name the dashboard uses is exported
    body = urllib.request.urlopen(f"{vllm_server}/metrics", timeout=10).read().decode()
    exported = {f.name for f in text_string_to_metric_families(body)}
    exported |= {s.name for f in text_string_to_metric_families(body) for s in f.samples}
    wanted = {n for n in dashboard_metric_names() if n.startswith("vllm:")}
    assert wanted and wanted <= exported, f"missing from vllm serve: {sorted(wanted - exported)}"
