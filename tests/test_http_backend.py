"""The HTTP backend's server: a real `vllm serve` (the CPU vLLM package, bundled model).

The pipeline over HTTP runs in the crash test (`sciqag worker --llm-url`, tests/test_guarantees.py) and in the feed
test (MCQs included, tests/test_feeds.py); this checks what the dashboard reads from the server itself.
"""

import json
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .test_deploy import dashboard_metric_names

pytestmark = pytest.mark.slow


def test_vllm_serve_exports_every_metric_the_dashboard_uses(vllm_server):
    request = urllib.request.Request(
        f"{vllm_server}/v1/completions",
        headers={"Content-Type": "application/json"},
        data=json.dumps({"model": "sciqag-llm", "prompt": "The band gap of zinc oxide is", "max_tokens": 8}).encode(),
    )
    answer = json.loads(urllib.request.urlopen(request, timeout=120).read())
    assert answer["usage"]["completion_tokens"] > 0  # one request, so the per-request series exist

    body = urllib.request.urlopen(f"{vllm_server}/metrics", timeout=10).read().decode()
    exported = {f.name for f in text_string_to_metric_families(body)}
    exported |= {s.name for f in text_string_to_metric_families(body) for s in f.samples}
    wanted = {n for n in dashboard_metric_names() if n.startswith("vllm:")}
    assert wanted and wanted <= exported, f"missing from vllm serve: {sorted(wanted - exported)}"
