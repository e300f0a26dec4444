"""Settings from environment variables (SCIQAG_*) and CLI flags; flags win.

Empty broker / ClickHouse / model settings mean "use the embedded default":
a Tansu broker on loopback, chDB under the data dir, the bundled SmolLM2 model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from sciqag.near_duplicates import DEFAULT_THRESHOLD as DEFAULT_DUPLICATE_THRESHOLD


def _env(name: str, default: str = "") -> str:
    return os.environ.get(f"SCIQAG_{name}", default)


def _cache_dir() -> Path:
    base = _env("CACHE_DIR") or os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "sciqag")
    return Path(base)


def _secret(name: str) -> str:
    """A secret from SCIQAG_<NAME>, or from the file named by SCIQAG_<NAME>_FILE."""
    path = _env(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return _env(name)


def redact_url(url: str) -> str:
    """The URL with any password in it replaced by ***, for logs and reprs."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


@dataclass
class Settings:
    data_dir: Path = field(default_factory=lambda: Path(_env("DATA_DIR", ".sciqag")))
    cache_dir: Path = field(default_factory=_cache_dir)  # the converted bundled model
    # broker
    broker_url: str = field(
        default_factory=lambda: _env("BROKER_URL")
    )  # kafka://host:9092[;host2:9092]; empty: embedded Tansu
    topic_partitions: int = field(default_factory=lambda: int(_env("TOPIC_PARTITIONS", "4")))
    # broker TLS / SASL (see processors/kafka_auth.py); the password from the environment or a file only
    kafka_security_protocol: str = field(default_factory=lambda: _env("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT"))
    kafka_sasl_mechanism: str = field(default_factory=lambda: _env("KAFKA_SASL_MECHANISM", "PLAIN"))
    kafka_sasl_username: str = field(default_factory=lambda: _env("KAFKA_SASL_USERNAME"))
    kafka_sasl_password: str = field(default_factory=lambda: _secret("KAFKA_SASL_PASSWORD"), repr=False)
    kafka_ssl_cafile: str = field(default_factory=lambda: _env("KAFKA_SSL_CAFILE"))  # default: the system CAs
    kafka_ssl_certfile: str = field(default_factory=lambda: _env("KAFKA_SSL_CERTFILE"))  # client certificate (mTLS)
    kafka_ssl_keyfile: str = field(default_factory=lambda: _env("KAFKA_SSL_KEYFILE"))
    # how long the group waits for a worker that stopped heartbeating (killed, partitioned) before its partitions
    # go to the others; 0: 6 s on the embedded broker, Faust's 60 s on a configured one
    kafka_session_timeout_s: float = field(default_factory=lambda: float(_env("KAFKA_SESSION_TIMEOUT_S", "0")))
    # ClickHouse: a DSN (http://user@host:8123/db or chdb:///dir), or host settings; all empty: chDB under data_dir
    clickhouse_dsn: str = field(default_factory=lambda: _env("CLICKHOUSE_DSN"))
    clickhouse_host: str = field(default_factory=lambda: _env("CLICKHOUSE_HOST"))
    clickhouse_port: int = field(default_factory=lambda: int(_env("CLICKHOUSE_PORT", "8123")))
    clickhouse_user: str = field(default_factory=lambda: _env("CLICKHOUSE_USER", "default"))
    clickhouse_password: str = field(default_factory=lambda: _secret("CLICKHOUSE_PASSWORD"), repr=False)
    clickhouse_database: str = field(default_factory=lambda: _env("CLICKHOUSE_DATABASE", "sciqag"))
    # LLM engine: in-process vLLM by default; an OpenAI-compatible server (`vllm serve`) when llm_url is set
    llm_url: str = field(default_factory=lambda: _env("LLM_URL"))  # e.g. http://vllm:8000/v1
    llm_api_key: str = field(default_factory=lambda: _secret("LLM_API_KEY"), repr=False)
    llm_timeout_s: float = field(default_factory=lambda: float(_env("LLM_TIMEOUT_S", "300")))
    tokenizer: str = field(default_factory=lambda: _env("TOKENIZER"))  # local tokenizer folder for the HTTP backend
    model: str = field(default_factory=lambda: _env("MODEL"))  # a model folder; empty: the bundled SmolLM2-135M
    max_model_len: int = field(default_factory=lambda: int(_env("MAX_MODEL_LEN", "8192")))
    max_in_flight: int = field(default_factory=lambda: int(_env("MAX_IN_FLIGHT", "16")))
    gpu_memory_utilization: float = field(default_factory=lambda: float(_env("GPU_MEMORY_UTILIZATION", "0")))
    temperature: float = field(default_factory=lambda: float(_env("TEMPERATURE", "0.3")))
    # SciQAG generation
    pairs_per_paper: int = field(default_factory=lambda: int(_env("PAIRS_PER_PAPER", "10")))
    keywords_per_paper: int = field(default_factory=lambda: int(_env("KEYWORDS_PER_PAPER", "15")))
    max_context_tokens: int = field(
        default_factory=lambda: int(_env("MAX_CONTEXT_TOKENS", "0"))
    )  # 0: fit the model window
    generation_max_tokens: int = field(default_factory=lambda: int(_env("GENERATION_MAX_TOKENS", "2048")))
    judge_max_tokens: int = field(default_factory=lambda: int(_env("JUDGE_MAX_TOKENS", "512")))
    mcq_per_paper: int = field(default_factory=lambda: int(_env("MCQ_PER_PAPER", "4")))  # 0: no multiple-choice items
    quality_metrics: bool = field(default_factory=lambda: _env("QUALITY_METRICS", "1") not in ("0", "false", "no"))
    qa_language: str = field(default_factory=lambda: _env("QA_LANGUAGE", "auto"))  # auto: the paper's language
    acceptance_policy: str = field(default_factory=lambda: _env("ACCEPTANCE_POLICY", "strict"))
    # evidence quotes: a quote is located when its best fuzzy alignment reaches this ratio (exact matches always);
    # a pair is accepted only if its grounding reaches min_grounding (0: off, as in SciQAG's policies)
    evidence_threshold: float = field(default_factory=lambda: float(_env("EVIDENCE_THRESHOLD", "0.88")))
    min_grounding: float = field(default_factory=lambda: float(_env("MIN_GROUNDING", "0")))
    # judges (issue 20): the judge readers (export, stats, dataset build) show unless told --judge; empty or "live":
    # the live judge's scores as stored in qa_pairs
    primary_judge: str = field(default_factory=lambda: _env("PRIMARY_JUDGE"))
    # a shadow judge on the live stream: this share (0..1, by a hash of qa_id) of the live pairs is also judged by a
    # second engine (an OpenAI-compatible server at shadow_llm_url, else vLLM in-process on the shadow_model folder),
    # at shadow_temperature (empty: the live one), in the background: at most shadow_queue papers wait, more are
    # dropped and counted; its failures are counted, never dead-lettered
    shadow_share: float = field(default_factory=lambda: float(_env("SHADOW_SHARE", "0") or 0))
    shadow_llm_url: str = field(default_factory=lambda: _env("SHADOW_LLM_URL"))
    shadow_model: str = field(default_factory=lambda: _env("SHADOW_MODEL"))
    shadow_llm_api_key: str = field(default_factory=lambda: _secret("SHADOW_LLM_API_KEY"), repr=False)
    shadow_temperature: float | None = field(
        default_factory=lambda: float(_env("SHADOW_TEMPERATURE")) if _env("SHADOW_TEMPERATURE") else None
    )
    shadow_timeout_s: float = field(default_factory=lambda: float(_env("SHADOW_TIMEOUT_S", "60")))
    shadow_queue: int = field(default_factory=lambda: int(_env("SHADOW_QUEUE", "64")))
    # a worker with the sink computes the judges' agreement and cost figures (sciqag_judge_* gauges) this often;
    # 0: never
    judge_metrics_interval_s: float = field(default_factory=lambda: float(_env("JUDGE_METRICS_INTERVAL_S", "300")))
    # corpus-wide near-duplicate questions (processors/dedup.py): a pair whose question has at least this cosine
    # similarity to an earlier canonical question of another paper is marked as its duplicate; off: not checked
    near_duplicates: bool = field(default_factory=lambda: _env("NEAR_DUPLICATES", "1") not in ("0", "false", "no"))
    duplicate_threshold: float = field(
        default_factory=lambda: float(_env("DUPLICATE_THRESHOLD", str(DEFAULT_DUPLICATE_THRESHOLD)))
    )
    embeddings_model: str = field(default_factory=lambda: _env("EMBEDDINGS_MODEL"))  # empty: bundled MiniLM
    embeddings_dims: int = field(default_factory=lambda: int(_env("EMBEDDINGS_DIMS", "384")))
    # extraction and input limits
    max_pdf_bytes: int = field(default_factory=lambda: int(_env("MAX_PDF_BYTES", str(50 * 1024 * 1024))))
    max_inline_bytes: int = field(default_factory=lambda: int(_env("MAX_INLINE_BYTES", str(800 * 1024))))
    max_pages: int = field(default_factory=lambda: int(_env("MAX_PAGES", "300")))
    extract_workers: int = field(default_factory=lambda: int(_env("EXTRACT_WORKERS", "1")))
    extract_timeout_s: float = field(default_factory=lambda: float(_env("EXTRACT_TIMEOUT_S", "60")))
    # OCR of pages without a usable text layer (Tesseract through PyMuPDF): auto (the pages the quality check
    # sends to OCR), off, force (every page). A document's extraction may take extract_timeout_s plus ocr_budget_s
    ocr: str = field(default_factory=lambda: _env("OCR", "auto"))
    ocr_page_timeout_s: float = field(default_factory=lambda: float(_env("OCR_PAGE_TIMEOUT_S", "60")))
    ocr_budget_s: float = field(default_factory=lambda: float(_env("OCR_BUDGET_S", "300")))  # OCR time per paper
    ocr_dpi: int = field(default_factory=lambda: int(_env("OCR_DPI", "300")))
    tessdata: str = field(default_factory=lambda: _env("TESSDATA"))  # empty: $TESSDATA_PREFIX, else the system's
    # one http(s) fetch of a PDF in all: name resolution, every redirect hop, the body
    fetch_timeout_s: float = field(default_factory=lambda: float(_env("FETCH_TIMEOUT_S", "30")))
    file_roots: list[str] = field(default_factory=lambda: [p for p in _env("FILE_ROOTS").split(os.pathsep) if p])
    # hosts the PDF fetcher may reach although they resolve to private/loopback addresses (SSRF rule)
    allowed_hosts: list[str] = field(
        default_factory=lambda: [h.strip() for h in _env("ALLOWED_HOSTS").split(",") if h.strip()]
    )
    # bounds on what a record may carry (README "Guarantees"): a paper id / Kafka key (UTF-8 bytes), the title, every
    # other metadata string of a paper (doi, journal, language, source feed, each category; at most 100
    # categories), its PDF location, and the extracted text sent on sciqag.extracted (UTF-8 bytes; longer text is
    # cut at that many bytes and PaperExtracted.text_truncated_from says how long it was)
    max_key_bytes: int = field(default_factory=lambda: int(_env("MAX_KEY_BYTES", "1024")))
    max_title_chars: int = field(default_factory=lambda: int(_env("MAX_TITLE_CHARS", "2000")))
    max_field_chars: int = field(default_factory=lambda: int(_env("MAX_FIELD_CHARS", "2000")))
    max_uri_chars: int = field(default_factory=lambda: int(_env("MAX_URI_CHARS", "8192")))
    max_text_bytes: int = field(default_factory=lambda: int(_env("MAX_TEXT_BYTES", str(2 * 1024 * 1024))))
    # worker
    metrics_port: int = field(default_factory=lambda: int(_env("METRICS_PORT", "6066")))
    agents: list[str] = field(
        default_factory=lambda: [a for a in _env("AGENTS", "extractor,generator,judge,sink").split(",") if a]
    )
    # records Faust buffers ahead of each agent per partition (Faust's default); when one is full Faust stops
    # fetching that partition. Lower it only in a worker that runs one agent: in a worker with several, a full
    # buffer stalls the others too (measured: at 16 the extractor fell to 0.5 papers/s behind a slow generator)
    stream_buffer: int = field(default_factory=lambda: int(_env("STREAM_BUFFER", "4096")))
    # the sink's batches: at most this many records, or what arrived within sink_batch_seconds of the first
    sink_batch_rows: int = field(default_factory=lambda: int(_env("SINK_BATCH_ROWS", "5000")))
    sink_batch_seconds: float = field(default_factory=lambda: float(_env("SINK_BATCH_SECONDS", "1.0")))
    # `sciqag review` (issue 23): the token every request must bring when the review app binds to anything but
    # loopback (SCIQAG_REVIEW_TOKEN or a file named by SCIQAG_REVIEW_TOKEN_FILE; never logged); empty: loopback only
    review_token: str = field(default_factory=lambda: _secret("REVIEW_TOKEN"), repr=False)
    # empty: each command's own default (WARNING for jobs, INFO for the long-running worker and feed)
    log_level: str = field(default_factory=lambda: _env("LOG_LEVEL"))
    # fault injection for the crash tests: the sink SIGKILLs its worker after this many stored batches, i.e. after
    # the insert and before the offsets are committed; 0 (the default) never
    fault_kill_after_sink_batches: int = field(
        default_factory=lambda: int(_env("FAULT_KILL_AFTER_SINK_BATCHES", "0") or 0)
    )

    def __repr__(self) -> str:  # secrets are repr=False; a DSN may carry a password of its own
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.repr}
        values["clickhouse_dsn"] = redact_url(values["clickhouse_dsn"])
        return f"Settings({', '.join(f'{name}={value!r}' for name, value in values.items())})"

    def with_overrides(self, **values) -> Settings:
        known = {f.name for f in fields(self)}
        return replace(self, **{k: v for k, v in values.items() if k in known and v is not None})

    def log_level_or(self, default: str) -> str:
        """The log level set by SCIQAG_LOG_LEVEL or --log-level, else the command's default."""
        return (self.log_level or default).upper()

    @property
    def embedded_broker(self) -> bool:
        return not self.broker_url

    @property
    def chdb_path(self) -> Path:
        return self.data_dir.resolve() / "clickhouse"
