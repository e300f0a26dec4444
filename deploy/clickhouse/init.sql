-- Generated from schemas/ddl.py by `sciqag schemas --ddl FILE`; a test keeps it in sync.
CREATE DATABASE IF NOT EXISTS `sciqag`;

CREATE TABLE IF NOT EXISTS `sciqag`.papers (
    paper_id String,
    doi String,
    title String,
    journal String,
    categories Array(String),
    source_uri String,
    source_feed String,
    language LowCardinality(String),
    status LowCardinality(String),
    stage LowCardinality(String),
    error_kind LowCardinality(String),
    error_message String,
    keywords Array(String),
    qa_pairs UInt16,
    context_strategy String,
    updated_at DateTime64(3, 'UTC'),
    q_similarity_mean Nullable(Float32),
    q_share_below_0_3 Nullable(Float32),
    q_pairs_over_0_7 UInt16,
    coverage Nullable(Float32),
    prefilter_dropped Map(String, UInt32)
) ENGINE = ReplacingMergeTree(updated_at) ORDER BY paper_id;

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS paper_id String;

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS doi String;

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS title String;

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS journal String;

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS categories Array(String);

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS source_uri String;

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS source_feed String;

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS language LowCardinality(String);

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS status LowCardinality(String);

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS stage LowCardinality(String);

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS error_kind LowCardinality(String);

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS error_message String;

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS keywords Array(String);

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS qa_pairs UInt16;

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS context_strategy String;

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS updated_at DateTime64(3, 'UTC');

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS q_similarity_mean Nullable(Float32);

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS q_share_below_0_3 Nullable(Float32);

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS q_pairs_over_0_7 UInt16;

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS coverage Nullable(Float32);

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS prefilter_dropped Map(String, UInt32);

CREATE TABLE IF NOT EXISTS `sciqag`.qa_pairs (
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
    inserted_at DateTime64(3, 'UTC'),
    options Array(String),
    correct_option Int8,
    single_correct Nullable(Bool)
) ENGINE = ReplacingMergeTree(inserted_at) ORDER BY (paper_id, qa_id);

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS paper_id String;

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS qa_id String;

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS kind LowCardinality(String);

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS pair_index UInt16;

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS doi String;

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS title String;

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS journal String;

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS categories Array(String);

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS source_uri String;

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS language LowCardinality(String);

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS keywords Array(String);

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS question String;

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS answer String;

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS relevance UInt8;

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS agnosticism UInt8;

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS completeness UInt8;

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS accuracy UInt8;

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS reasonableness UInt8;

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS reasons Map(String, String);

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS numeric_support Nullable(Float32);

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS accepted Bool;

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS generator_model String;

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS judge_model String;

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS prompt_version String;

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS scored_at DateTime64(3, 'UTC');

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS inserted_at DateTime64(3, 'UTC');

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS options Array(String);

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS correct_option Int8;

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS single_correct Nullable(Bool);

CREATE TABLE IF NOT EXISTS `sciqag`.dead_letters (
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
) ENGINE = ReplacingMergeTree(failed_at) ORDER BY (paper_id, stage, error_kind, source_topic, source_partition, source_offset);

ALTER TABLE `sciqag`.dead_letters ADD COLUMN IF NOT EXISTS stage LowCardinality(String);

ALTER TABLE `sciqag`.dead_letters ADD COLUMN IF NOT EXISTS paper_id String;

ALTER TABLE `sciqag`.dead_letters ADD COLUMN IF NOT EXISTS error_kind LowCardinality(String);

ALTER TABLE `sciqag`.dead_letters ADD COLUMN IF NOT EXISTS message String;

ALTER TABLE `sciqag`.dead_letters ADD COLUMN IF NOT EXISTS source_topic String;

ALTER TABLE `sciqag`.dead_letters ADD COLUMN IF NOT EXISTS source_partition Int32;

ALTER TABLE `sciqag`.dead_letters ADD COLUMN IF NOT EXISTS source_offset Int64;

ALTER TABLE `sciqag`.dead_letters ADD COLUMN IF NOT EXISTS source_uri String;

ALTER TABLE `sciqag`.dead_letters ADD COLUMN IF NOT EXISTS paper_failed Bool;

ALTER TABLE `sciqag`.dead_letters ADD COLUMN IF NOT EXISTS failed_at DateTime64(3, 'UTC');

