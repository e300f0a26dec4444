"""ClickHouse tables, each defined once as a column list.

ReplacingMergeTree keyed by the deterministic ids, so a re-delivered record replaces
its earlier copy instead of adding a row (read with FINAL). Columns added later are
also emitted as `ADD COLUMN IF NOT EXISTS`, so an existing database is brought up to date.
"""
from __future__ import annotations

PAPERS_TABLE = "papers"
QA_TABLE = "qa_pairs"
DLQ_TABLE = "dead_letters"

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
    ("relevance", "UInt8"),
    ("agnosticism", "UInt8"),
    ("completeness", "UInt8"),
    ("accuracy", "UInt8"),
    ("reasonableness", "UInt8"),
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

_ENGINES = {
    PAPERS_TABLE: (PAPER_COLUMNS, "ReplacingMergeTree(updated_at) ORDER BY paper_id"),
    QA_TABLE: (QA_COLUMNS, "ReplacingMergeTree(inserted_at) ORDER BY (paper_id, qa_id)"),
    DLQ_TABLE: (DLQ_COLUMNS, "ReplacingMergeTree(failed_at) "
                             "ORDER BY (paper_id, stage, error_kind, source_topic, source_partition, source_offset)"),
}


def column_names(table: str) -> list[str]:
    return [name for name, _ in _ENGINES[table][0]]


def ddl(database: str) -> list[str]:
    db = f"`{database}`"
    statements = [f"CREATE DATABASE IF NOT EXISTS {db}"]
    for table, (columns, engine) in _ENGINES.items():
        cols = ",\n    ".join(f"{name} {type_}" for name, type_ in columns)
        statements.append(f"CREATE TABLE IF NOT EXISTS {db}.{table} (\n    {cols}\n) ENGINE = {engine}")
        statements += [f"ALTER TABLE {db}.{table} ADD COLUMN IF NOT EXISTS {name} {type_}" for name, type_ in columns]
    return statements


def ddl_script(database: str) -> str:
    """The DDL as one SQL file, for a ClickHouse server's init scripts."""
    header = "-- Generated from schemas/ddl.py by `sciqag schemas --ddl FILE`; a test keeps it in sync.\n"
    return header + "".join(statement + ";\n\n" for statement in ddl(database))
