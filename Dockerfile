# The sciqag-stream worker image: CPU-side agents (extractor, sink) and the LLM-side agents
# (generator, judge), which talk to a `vllm serve` container over HTTP (SCIQAG_LLM_URL).
# vLLM itself runs in the vllm/vllm-openai image (docker-compose.yml); it is not in this image.
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
WORKDIR /app
# Tesseract's English and Russian data for OCR of scanned pages (PyMuPDF carries the engine; SCIQAG_OCR=auto)
RUN apt-get update && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-eng tesseract-ocr-rus \
    && rm -rf /var/lib/apt/lists/*
# CPU torch for the sentence-embedding quality measures (question diversity, coverage)
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY sciqag sciqag
COPY processors processors
RUN pip install ".[quality]" && useradd --create-home sciqag
USER sciqag
EXPOSE 6066
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:6066/metrics', timeout=4)"
ENTRYPOINT ["sciqag"]
CMD ["worker"]
