"""ClickHouse tables, each defined once as a column list.

ReplacingMergeTree keyed by the deterministic ids, so a re-delivered record replaces
its earlier copy instead of adding a row (read with FINAL). Columns added later are
also emitted as `ADD COLUMN IF NOT EXISTS`, so an existing database is brought up to date.
"""

from __future__ import annotations

from .records import RACAR_DIMENSIONS

PAPERS_TABLE = "papers"
QA_TABLE = "qa_pairs"
DLQ_TABLE = "dead_letters"
# the paper text as extracted (from sciqag.extracted) and the context the generator saw (from sciqag.qa.generated):
# two topics, so two tables, each row replaced when its own record is delivered again
PAPER_TEXTS_TABLE = "paper_texts"
PAPER_CONTEXTS_TABLE = "paper_contexts"
# one question embedding per stored pair, under an HNSW index: the corpus-wide near-duplicate lookup
# (processors/near_duplicates.py). A plain MergeTree: a pair's row is written once (re-deliveries reuse it) and
# deleted when its pair is pruned or its question changed
QA_EMBEDDINGS_TABLE = "qa_embeddings"
EMBEDDING_DIMS = 384  # all-MiniLM-L6-v2; another model of another size needs SCIQAG_EMBEDDINGS_DIMS and a new database
# The sink's fast path: QAScored records go in as the JSON they are on the topic, into a Null table shaped like
# the record, and a materialized view turns them into qa_pairs rows, so ClickHouse parses them, not Python. The
# version is in the name: a change of the record-to-row mapping gets new objects, never a rewrite of the old
# ones under writers that use them.
QA_JSON_TABLE = "qa_scored_json_v4"  # v2: judge_prompt_version; v3: evidence, grounding; v4: near-duplicates
QA_JSON_VIEW = "qa_scored_json_v4_to_qa_pairs"
# every judge's scores of a pair, side by side (issue 20): one row per (pair, judge), replaced when the same judge
# scores the same pair again. Its own Null table and view, apart from the qa_pairs ones: every scored record goes
# in here, only the live judge's also into QA_JSON_TABLE (schemas/records.py QAScored.judge_role)
JUDGMENTS_TABLE = "judgments"
JUDGMENTS_JSON_TABLE = "qa_judgments_json_v1"
JUDGMENTS_JSON_VIEW = "qa_judgments_json_v1_to_judgments"
# reviewers' verdicts on pairs (issue 23, `sciqag review`): append-only, one row per verdict given; the latest verdict
# of a pair (argMax by decided_at) is the one readers honour over the judge's acceptance
VERDICTS_TABLE = "verdicts"
_EVIDENCE = "Array(Tuple(quote String, start Int32, end Int32, ratio Float32, located Bool))"

PAPER_COLUMNS: list[tuple[str, str]] = [
    ("paper_id", "String"),
    ("doi", "String"),
    ("title", "String"),
    ("journal", "String"),
    ("categories", "Array(String)"),
    ("source_uri", "String"),
    ("source_feed", "String"),
    ("language", "LowCardinality(String)"),
    ("status", "LowCardinality(String)"),  # scored | failed
    ("stage", "LowCardinality(String)"),  # the stage that decided the status
    ("error_kind", "LowCardinality(String)"),
    ("error_message", "String"),
    ("keywords", "Array(String)"),
    ("qa_pairs", "UInt16"),
    ("context_strategy", "String"),
    ("updated_at", "DateTime64(3, 'UTC')"),
    # SciQAG quality measures per paper
    ("q_similarity_mean", "Nullable(Float32)"),
    ("q_share_below_0_3", "Nullable(Float32)"),
    ("q_pairs_over_0_7", "UInt16"),
    ("coverage", "Nullable(Float32)"),
    ("prefilter_dropped", "Map(String, UInt32)"),
    # where the pairs went, by kind (schemas.records.PaperQuality): asked of the model, parsed, not judged
    ("pairs_requested", "Map(String, UInt16)"),
    ("pairs_parsed", "Map(String, UInt16)"),
    ("pairs_not_judged", "Map(String, UInt16)"),
    # how the text was obtained (schemas.records.ExtractionSummary): OCR'd and repaired pages, detected language
    ("extractor_version", "LowCardinality(String)"),
    ("pages", "UInt16"),
    ("ocr_pages", "Array(UInt16)"),
    ("repaired_pages", "Map(UInt16, String)"),
    ("ocr_language", "LowCardinality(String)"),
    ("detected_language", "LowCardinality(String)"),
    ("title_source", "LowCardinality(String)"),
]
QA_COLUMNS: list[tuple[str, str]] = [
    ("paper_id", "String"),
    ("qa_id", "String"),
    ("kind", "LowCardinality(String)"),
    ("pair_index", "UInt16"),
    ("doi", "String"),
    ("title", "String"),
    ("journal", "String"),
    ("categories", "Array(String)"),
    ("source_uri", "String"),
    ("language", "LowCardinality(String)"),
    ("keywords", "Array(String)"),
    ("question", "String"),
    ("answer", "String"),
    *((d, "UInt8") for d in RACAR_DIMENSIONS),
    ("reasons", "Map(String, String)"),
    ("numeric_support", "Nullable(Float32)"),
    ("accepted", "Bool"),
    ("generator_model", "String"),
    ("judge_model", "String"),
    ("prompt_version", "String"),
    ("scored_at", "DateTime64(3, 'UTC')"),
    ("inserted_at", "DateTime64(3, 'UTC')"),
    # multiple-choice items (kind = mcq)
    ("options", "Array(String)"),
    ("correct_option", "Int8"),
    ("single_correct", "Nullable(Bool)"),
    ("judge_prompt_version", "String"),
    # evidence: the generator's quotes located in paper_texts.text ([start, end) offsets), and the grounding score
    ("evidence", _EVIDENCE),
    ("grounding", "Nullable(Float32)"),
    # the near-duplicate decision (processors/near_duplicates.py): the canonical pair of another paper this one
    # repeats ('' if none), the cosine similarity of the question to the nearest earlier canonical question of
    # another paper (NULL: not checked), and the time the pair was first stored (the order that decides which of two
    # similar pairs is canonical)
    ("duplicate_of", "String"),
    ("duplicate_similarity", "Nullable(Float32)"),
    ("first_stored_at", "DateTime64(6, 'UTC')"),
]
DLQ_COLUMNS: list[tuple[str, str]] = [
    ("stage", "LowCardinality(String)"),
    ("paper_id", "String"),
    ("error_kind", "LowCardinality(String)"),
    ("message", "String"),
    ("source_topic", "String"),
    ("source_partition", "Int32"),
    ("source_offset", "Int64"),
    ("source_uri", "String"),
    ("paper_failed", "Bool"),
    ("failed_at", "DateTime64(3, 'UTC')"),
]

PAPER_TEXT_COLUMNS: list[tuple[str, str]] = [
    ("paper_id", "String"),
    ("text", "String CODEC(ZSTD(3))"),  # PaperExtracted.text: evidence offsets point into it
    ("sections", "Array(Tuple(title String, start UInt32, end UInt32))"),
    ("language", "LowCardinality(String)"),
    ("detected_language", "LowCardinality(String)"),
    ("extractor_version", "LowCardinality(String)"),
    ("pages", "UInt16"),
    ("page_methods", "Array(LowCardinality(String))"),
    ("extracted_at", "DateTime64(3, 'UTC')"),
    ("updated_at", "DateTime64(3, 'UTC')"),
]
PAPER_CONTEXT_COLUMNS: list[tuple[str, str]] = [
    ("paper_id", "String"),
    ("context", "String CODEC(ZSTD(3))"),  # QAGenerated.context: the paper as the generator (and judge) saw it
    ("context_strategy", "String"),  # how it was fitted into the window
    ("generator_model", "String"),
    ("prompt_version", "String"),
    ("generated_at", "DateTime64(3, 'UTC')"),
    ("updated_at", "DateTime64(3, 'UTC')"),
]

JUDGMENT_COLUMNS: list[tuple[str, str]] = [
    ("judge_id", "LowCardinality(String)"),
    ("paper_id", "String"),
    ("qa_id", "String"),
    ("judge_role", "LowCardinality(String)"),  # live | rejudge | shadow
    ("kind", "LowCardinality(String)"),
    *((d, "UInt8") for d in RACAR_DIMENSIONS),
    ("reasons", "Map(String, String)"),
    ("accepted", "Bool"),
    ("single_correct", "Nullable(Bool)"),
    ("judge_model", "String"),
    ("judge_prompt_version", "String"),
    ("acceptance_policy", "LowCardinality(String)"),
    ("judge_temperature", "Nullable(Float32)"),
    ("judge_prompt_tokens", "UInt32"),
    ("judge_generated_tokens", "UInt32"),
    ("scored_at", "DateTime64(6, 'UTC')"),
    ("inserted_at", "DateTime64(3, 'UTC')"),
]

VERDICT_COLUMNS: list[tuple[str, str]] = [
    ("paper_id", "String"),
    ("qa_id", "String"),
    ("reviewer", "String"),
    ("verdict", "LowCardinality(String)"),  # accept | reject | edit (accepted with the edited text below)
    ("reason", "String"),  # a rejection's reason: one of sciqag/verdicts.py REJECT_REASONS, or free text
    ("edited_question", "String"),  # edit: the reviewer's text, replacing the generated one ('' otherwise)
    ("edited_answer", "String"),
    ("decided_at", "DateTime64(6, 'UTC')"),
]

_SCORE = "Tuple(score UInt8, reason String)"
# QAScored as it is on the wire (schemas/records.py), with the record's defaults for fields a producer left out
QA_JSON_COLUMNS: list[tuple[str, str]] = [
    (
        "paper",
        "Tuple(paper_id String, doi String, title String, journal String, categories Array(String), "
        "source_uri String, source_feed String)",
    ),
    ("qa_id", "String"),
    ("pair_index", "UInt16"),
    ("kind", "String DEFAULT 'open'"),
    ("language", "String DEFAULT 'en'"),
    ("keywords", "Array(String)"),
    ("question", "String"),
    ("answer", "String"),
    (
        "racar",
        "Tuple(" + ", ".join(f"{d} {_SCORE}" for d in RACAR_DIMENSIONS) + ")",
    ),
    ("options", "Array(String)"),
    ("correct_option", "Int8 DEFAULT -1"),
    ("single_correct", "Nullable(Bool)"),
    ("numeric_support", "Nullable(Float32)"),
    ("accepted", "Bool"),
    ("generator_model", "String"),
    ("judge_model", "String"),
    ("prompt_version", "String"),
    ("judge_prompt_version", "String"),
    ("evidence", _EVIDENCE),
    ("grounding", "Nullable(Float32)"),
    ("scored_at", "DateTime64(6, 'UTC') DEFAULT now64(6)"),
    # not on the topic: the sink adds them to the record before it inserts it (processors/near_duplicates.py)
    ("duplicate_of", "String"),
    ("duplicate_similarity", "Nullable(Float32)"),
    ("first_stored_at", "DateTime64(6, 'UTC') DEFAULT now64(6)"),
]
# the part of a QAScored the judgments view reads (unknown fields are skipped)
JUDGMENTS_JSON_COLUMNS: list[tuple[str, str]] = [
    ("paper", "Tuple(paper_id String)"),
    ("qa_id", "String"),
    ("kind", "String DEFAULT 'open'"),
    ("racar", "Tuple(" + ", ".join(f"{d} {_SCORE}" for d in RACAR_DIMENSIONS) + ")"),
    ("single_correct", "Nullable(Bool)"),
    ("accepted", "Bool"),
    ("judge_model", "String"),
    ("judge_prompt_version", "String"),
    ("judge_id", "String"),
    ("judge_role", "String DEFAULT 'live'"),
    ("acceptance_policy", "String"),
    ("judge_temperature", "Nullable(Float32)"),
    ("judge_prompt_tokens", "UInt32"),
    ("judge_generated_tokens", "UInt32"),
    ("scored_at", "DateTime64(6, 'UTC') DEFAULT now64(6)"),
]
# judgments column -> expression over the JSON record (processors/store.py judgment_row builds the same in Python); a
# record written before judge ids existed gets one from its model and prompt ('legacy:...')
_JUDGMENT_FROM_JSON: dict[str, str] = {
    "judge_id": "if(judge_id = '', concat('legacy:', judge_model, ':', judge_prompt_version), judge_id)",
    "paper_id": "paper.paper_id",
    "qa_id": "qa_id",
    "judge_role": "judge_role",
    "kind": "kind",
    **{d: f"racar.{d}.score" for d in RACAR_DIMENSIONS},
    "reasons": "map(" + ", ".join(f"'{d}', racar.{d}.reason" for d in RACAR_DIMENSIONS) + ")",
    "accepted": "accepted",
    "single_correct": "single_correct",
    "judge_model": "judge_model",
    "judge_prompt_version": "judge_prompt_version",
    "acceptance_policy": "acceptance_policy",
    "judge_temperature": "judge_temperature",
    "judge_prompt_tokens": "judge_prompt_tokens",
    "judge_generated_tokens": "judge_generated_tokens",
    "scored_at": "scored_at",
    "inserted_at": "now64(3)",
}
# qa_pairs column -> expression over the JSON record (processors/store.py qa_row builds the same row in Python)
_QA_FROM_JSON: dict[str, str] = {
    "paper_id": "paper.paper_id",
    "qa_id": "qa_id",
    "kind": "kind",
    "pair_index": "pair_index",
    "doi": "paper.doi",
    "title": "paper.title",
    "journal": "paper.journal",
    "categories": "paper.categories",
    "source_uri": "paper.source_uri",
    "language": "language",
    "keywords": "keywords",
    "question": "question",
    "answer": "answer",
    **{d: f"racar.{d}.score" for d in RACAR_DIMENSIONS},
    "reasons": "map(" + ", ".join(f"'{d}', racar.{d}.reason" for d in RACAR_DIMENSIONS) + ")",
    "numeric_support": "numeric_support",
    "accepted": "accepted",
    "generator_model": "generator_model",
    "judge_model": "judge_model",
    "prompt_version": "prompt_version",
    "scored_at": "scored_at",
    "inserted_at": "now64(3)",
    "options": "options",
    "correct_option": "correct_option",
    "single_correct": "single_correct",
    "judge_prompt_version": "judge_prompt_version",
    "evidence": "evidence",
    "grounding": "grounding",
    "duplicate_of": "duplicate_of",
    "duplicate_similarity": "duplicate_similarity",
    "first_stored_at": "first_stored_at",
}
# how ClickHouse reads the JSON the sink inserts (records, rows): as strictly as msgspec where it can (no numbers or
# objects taken as strings), ISO 8601 times as msgspec writes them, unknown fields skipped (newer producers add
# fields, see records.py)
JSON_INPUT_SETTINGS: dict[str, int | str] = {
    "date_time_input_format": "best_effort",
    "input_format_skip_unknown_fields": 1,
    "input_format_json_read_numbers_as_strings": 0,
    "input_format_json_read_bools_as_numbers": 0,
    "input_format_json_read_bools_as_strings": 0,
    "input_format_json_read_objects_as_strings": 0,
    "input_format_json_read_arrays_as_strings": 0,
}

_ENGINES = {
    PAPER_TEXTS_TABLE: (PAPER_TEXT_COLUMNS, "ReplacingMergeTree(updated_at) ORDER BY paper_id"),
    PAPER_CONTEXTS_TABLE: (PAPER_CONTEXT_COLUMNS, "ReplacingMergeTree(updated_at) ORDER BY paper_id"),
    PAPERS_TABLE: (PAPER_COLUMNS, "ReplacingMergeTree(updated_at) ORDER BY paper_id"),
    QA_TABLE: (QA_COLUMNS, "ReplacingMergeTree(inserted_at) ORDER BY (paper_id, qa_id)"),
    # version: when it was judged, so a late re-delivery of an older judgment never wins over a newer one
    JUDGMENTS_TABLE: (JUDGMENT_COLUMNS, "ReplacingMergeTree(scored_at) ORDER BY (judge_id, paper_id, qa_id)"),
    # append-only: every verdict is kept (the history of a pair's reviews); readers take the latest
    VERDICTS_TABLE: (VERDICT_COLUMNS, "MergeTree ORDER BY (paper_id, qa_id, decided_at)"),
    DLQ_TABLE: (
        DLQ_COLUMNS,
        "ReplacingMergeTree(failed_at) "
        "ORDER BY (paper_id, stage, error_kind, source_topic, source_partition, source_offset)",
    ),
}


EMBEDDING_COLUMNS: list[tuple[str, str]] = [
    ("qa_id", "String"),
    ("paper_id", "String"),
    ("kind", "LowCardinality(String)"),  # open pairs are compared with open pairs, mcq items with mcq items
    ("language", "LowCardinality(String)"),
    ("question", "String"),  # the text embedded: a replayed pair whose question changed gets a new row
    ("model", "LowCardinality(String)"),
    ("embedding", "Array(Float32)"),
    ("first_stored_at", "DateTime64(6, 'UTC')"),
    # when the row was inserted, by the server's clock: a sink member's recheck reads the rows other members inserted
    # since its own lookups (processors/dedup.py)
    ("inserted_at", "DateTime64(6, 'UTC') DEFAULT now64(6)"),
]


# The lookup reads whole granules: the HNSW search gives ~20 rows a part, and ClickHouse then reads the filter
# columns (kind, paper_id) of every granule holding one, decompressing every compressed block under it, and the
# selected columns of the 10 rows it returns the same way. With MergeTree's defaults (8,192-row granules, cut to ~6,500
# by index_granularity_bytes; 64 KB-1 MB blocks) that is nearly every row of a part once it has a few hundred thousand
# rows: at 1M stored vectors 576k rows and 16 MB decompressed a lookup (benchmarks/vector_index.py, BENCHMARKS.md).
# 128-row granules and 2-64 KB blocks: 14k rows and 0.8 MB; the `embedding` column is not read by a lookup (the
# distance comes from the index) and floats hardly compress, so the table is as big on disk as before. A paper with 128
# or more pairs of one kind (10 + 4 by default) can fill whole granules, which `paper_id != ..` on the primary key then
# leaves out, and ClickHouse scans that part without the index for that paper's lookups (checked: right, only slower).
# index_granularity cannot be changed on an existing table: a store created before keeps MergeTree's defaults (CREATE
# TABLE IF NOT EXISTS leaves it as it is) until the table is created again.
EMBEDDINGS_TABLE_SETTINGS = "index_granularity = 128, min_compress_block_size = 2048, max_compress_block_size = 65536"
# The HNSW graph: bf16 vectors (ClickHouse's default), 16 connections a layer and a candidate list of 64 while building
# (ClickHouse's defaults are 32 and 128; 16 and 64 are pgvector's): 2.4x less CPU to build a part's graph, and inserts
# and merges are mostly that. Its recall@10 at 1M, merged to one or two parts a kind, is 0.97 with the lookup's
# candidate list of 256 (processors/store.py NEAREST_SETTINGS), 0.90 with 64. An existing table keeps the index it was
# created with.
EMBEDDINGS_HNSW = "'bf16', 16, 64"


def embeddings_table_ddl(database: str, dims: int = EMBEDDING_DIMS, table: str = QA_EMBEDDINGS_TABLE) -> str:
    """The embeddings table with its HNSW index (cosine). Vector similarity indexes are in ClickHouse >= 25.8 (and
    the chDB of this project). PARTITION BY kind: each kind has its own parts, so its own HNSW graphs, and the kind
    filter prunes whole partitions. Not ORDER BY kind alone: a filter on a primary-key prefix that leaves out some
    granules of a part makes ClickHouse pre-filter that part, i.e. scan it without the index (benchmarks/
    vector_index.py: at 100k vectors the lookup was a full scan, as slow as the table without the index).
    EMBEDDINGS_TABLE_SETTINGS (small granules) and EMBEDDINGS_HNSW: see there."""
    cols = ",\n    ".join(f"{name} {type_}" for name, type_ in EMBEDDING_COLUMNS)
    return (
        f"CREATE TABLE IF NOT EXISTS `{database}`.{table} (\n    {cols},\n"
        f"    INDEX question_hnsw embedding TYPE vector_similarity('hnsw', 'cosineDistance', {int(dims)}, "
        f"{EMBEDDINGS_HNSW}),\n"
        "    INDEX inserted_minmax inserted_at TYPE minmax GRANULARITY 1\n"
        f") ENGINE = MergeTree PARTITION BY kind ORDER BY (kind, paper_id, qa_id) SETTINGS {EMBEDDINGS_TABLE_SETTINGS}"
    )


def embeddings_table_updates(database: str, table: str = QA_EMBEDDINGS_TABLE) -> list[str]:
    """What a table created by an earlier version lacks."""
    return [
        f"ALTER TABLE `{database}`.{table} ADD COLUMN IF NOT EXISTS inserted_at DateTime64(6, 'UTC') DEFAULT now64(6)",
        f"ALTER TABLE `{database}`.{table} ADD INDEX IF NOT EXISTS inserted_minmax inserted_at TYPE minmax "
        "GRANULARITY 1",
    ]


def column_names(table: str) -> list[str]:
    if table == QA_EMBEDDINGS_TABLE:
        return [name for name, _ in EMBEDDING_COLUMNS]
    return [name for name, _ in _ENGINES[table][0]]


def ddl(database: str, embedding_dims: int = EMBEDDING_DIMS) -> list[str]:
    db = f"`{database}`"
    statements = [f"CREATE DATABASE IF NOT EXISTS {db}"]
    for table, (columns, engine) in _ENGINES.items():
        cols = ",\n    ".join(f"{name} {type_}" for name, type_ in columns)
        statements.append(f"CREATE TABLE IF NOT EXISTS {db}.{table} (\n    {cols}\n) ENGINE = {engine}")
        statements += [f"ALTER TABLE {db}.{table} ADD COLUMN IF NOT EXISTS {name} {type_}" for name, type_ in columns]
    statements.append(embeddings_table_ddl(database, embedding_dims))
    statements += embeddings_table_updates(database)
    statements += _json_intake(db, QA_JSON_TABLE, QA_JSON_COLUMNS, QA_JSON_VIEW, QA_TABLE, QA_COLUMNS, _QA_FROM_JSON)
    statements += _json_intake(
        db, JUDGMENTS_JSON_TABLE, JUDGMENTS_JSON_COLUMNS, JUDGMENTS_JSON_VIEW, JUDGMENTS_TABLE, JUDGMENT_COLUMNS,
        _JUDGMENT_FROM_JSON,
    )  # fmt: skip
    return statements


def _json_intake(db, table, json_columns, view, target, target_columns, from_json) -> list[str]:
    """A Null table shaped like a record's JSON, and the materialized view that turns its rows into `target`'s."""
    cols = ",\n    ".join(f"{name} {type_}" for name, type_ in json_columns)
    select = ",\n    ".join(f"{from_json[name]} AS {name}" for name, _ in target_columns)
    return [
        f"CREATE TABLE IF NOT EXISTS {db}.{table} (\n    {cols}\n) ENGINE = Null",
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{view} TO {db}.{target} AS SELECT\n    {select}\n"
        f"FROM {db}.{table}",
    ]


def ddl_script(database: str) -> str:
    """The DDL as one SQL file, for a ClickHouse server's init scripts."""
    header = "-- Generated from schemas/ddl.py by `sciqag schemas --ddl FILE`; a test keeps it in sync.\n"
    return header + "".join(statement + ";\n\n" for statement in ddl(database))
