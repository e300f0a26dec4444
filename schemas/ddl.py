"""ClickHouse tables. ReplacingMergeTree keyed by the deterministic ids, so a re-delivered
record replaces its earlier copy instead of adding a row (read with FINAL)."""
from __future__ import annotations

PAPERS_TABLE = "papers"
QA_TABLE = "qa_pairs"
DLQ_TABLE = "dead_letters"


def ddl(database: str) -> list[str]:
    db = f"`{database}`"
    return [
        f"CREATE DATABASE IF NOT EXISTS {db}",
        f"""CREATE TABLE IF NOT EXISTS {db}.{PAPERS_TABLE} (
            paper_id String,
            doi String,
            title String,
            journal String,
            categories Array(String),
            source_uri String,
            source_feed String,
            language LowCardinality(String),
            status LowCardinality(String),      -- scored | failed
            stage LowCardinality(String),       -- the stage that decided the status
            error_kind LowCardinality(String),
            error_message String,
            keywords Array(String),
            qa_pairs UInt16,
            context_strategy String,
            updated_at DateTime64(3, 'UTC')
        ) ENGINE = ReplacingMergeTree(updated_at) ORDER BY paper_id""",
        f"""CREATE TABLE IF NOT EXISTS {db}.{QA_TABLE} (
            paper_id String,
            qa_id String,
            kind LowCardinality(String),
            pair_index UInt16,
            doi String,
            title String,
            journal String,
            categories Array(String),
            source_uri String,
            language LowCardinality(String),
            keywords Array(String),
            question String,
            answer String,
            relevance UInt8,
            agnosticism UInt8,
            completeness UInt8,
            accuracy UInt8,
            reasonableness UInt8,
            reasons Map(String, String),
            numeric_support Nullable(Float32),
            accepted Bool,
            generator_model String,
            judge_model String,
            prompt_version String,
            scored_at DateTime64(3, 'UTC'),
            inserted_at DateTime64(3, 'UTC')
        ) ENGINE = ReplacingMergeTree(inserted_at) ORDER BY (paper_id, qa_id)""",
        f"""CREATE TABLE IF NOT EXISTS {db}.{DLQ_TABLE} (
            stage LowCardinality(String),
            paper_id String,
            error_kind LowCardinality(String),
            message String,
            source_topic String,
            source_partition Int32,
            source_offset Int64,
            source_uri String,
            paper_failed Bool,
            failed_at DateTime64(3, 'UTC')
        ) ENGINE = ReplacingMergeTree(failed_at)
        ORDER BY (paper_id, stage, error_kind, source_topic, source_partition, source_offset)""",
    ]
