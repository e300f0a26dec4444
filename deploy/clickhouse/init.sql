-- Generated from schemas/ddl.py by `sciqag schemas --ddl FILE`; a test keeps it in sync.
CREATE DATABASE IF NOT EXISTS `sciqag`;

CREATE TABLE IF NOT EXISTS `sciqag`.paper_texts (
    paper_id String,
    text String CODEC(ZSTD(3)),
    sections Array(Tuple(title String, start UInt32, end UInt32)),
    language LowCardinality(String),
    detected_language LowCardinality(String),
    extractor_version LowCardinality(String),
    pages UInt16,
    page_methods Array(LowCardinality(String)),
    extracted_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(updated_at) ORDER BY paper_id;

ALTER TABLE `sciqag`.paper_texts ADD COLUMN IF NOT EXISTS paper_id String;

ALTER TABLE `sciqag`.paper_texts ADD COLUMN IF NOT EXISTS text String CODEC(ZSTD(3));

ALTER TABLE `sciqag`.paper_texts ADD COLUMN IF NOT EXISTS sections Array(Tuple(title String, start UInt32, end UInt32));

ALTER TABLE `sciqag`.paper_texts ADD COLUMN IF NOT EXISTS language LowCardinality(String);

ALTER TABLE `sciqag`.paper_texts ADD COLUMN IF NOT EXISTS detected_language LowCardinality(String);

ALTER TABLE `sciqag`.paper_texts ADD COLUMN IF NOT EXISTS extractor_version LowCardinality(String);

ALTER TABLE `sciqag`.paper_texts ADD COLUMN IF NOT EXISTS pages UInt16;

ALTER TABLE `sciqag`.paper_texts ADD COLUMN IF NOT EXISTS page_methods Array(LowCardinality(String));

ALTER TABLE `sciqag`.paper_texts ADD COLUMN IF NOT EXISTS extracted_at DateTime64(3, 'UTC');

ALTER TABLE `sciqag`.paper_texts ADD COLUMN IF NOT EXISTS updated_at DateTime64(3, 'UTC');

CREATE TABLE IF NOT EXISTS `sciqag`.paper_contexts (
    paper_id String,
    context String CODEC(ZSTD(3)),
    context_strategy String,
    generator_model String,
    prompt_version String,
    generated_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(updated_at) ORDER BY paper_id;

ALTER TABLE `sciqag`.paper_contexts ADD COLUMN IF NOT EXISTS paper_id String;

ALTER TABLE `sciqag`.paper_contexts ADD COLUMN IF NOT EXISTS context String CODEC(ZSTD(3));

ALTER TABLE `sciqag`.paper_contexts ADD COLUMN IF NOT EXISTS context_strategy String;

ALTER TABLE `sciqag`.paper_contexts ADD COLUMN IF NOT EXISTS generator_model String;

ALTER TABLE `sciqag`.paper_contexts ADD COLUMN IF NOT EXISTS prompt_version String;

ALTER TABLE `sciqag`.paper_contexts ADD COLUMN IF NOT EXISTS generated_at DateTime64(3, 'UTC');

ALTER TABLE `sciqag`.paper_contexts ADD COLUMN IF NOT EXISTS updated_at DateTime64(3, 'UTC');

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
    prefilter_dropped Map(String, UInt32),
    pairs_requested Map(String, UInt16),
    pairs_parsed Map(String, UInt16),
    pairs_not_judged Map(String, UInt16),
    extractor_version LowCardinality(String),
    pages UInt16,
    ocr_pages Array(UInt16),
    repaired_pages Map(UInt16, String),
    ocr_language LowCardinality(String),
    detected_language LowCardinality(String),
    title_source LowCardinality(String)
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

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS pairs_requested Map(String, UInt16);

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS pairs_parsed Map(String, UInt16);

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS pairs_not_judged Map(String, UInt16);

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS extractor_version LowCardinality(String);

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS pages UInt16;

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS ocr_pages Array(UInt16);

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS repaired_pages Map(UInt16, String);

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS ocr_language LowCardinality(String);

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS detected_language LowCardinality(String);

ALTER TABLE `sciqag`.papers ADD COLUMN IF NOT EXISTS title_source LowCardinality(String);

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
    single_correct Nullable(Bool),
    judge_prompt_version String,
    evidence Array(Tuple(quote String, start Int32, end Int32, ratio Float32, located Bool)),
    grounding Nullable(Float32),
    duplicate_of String,
    duplicate_similarity Nullable(Float32),
    first_stored_at DateTime64(6, 'UTC')
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

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS judge_prompt_version String;

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS evidence Array(Tuple(quote String, start Int32, end Int32, ratio Float32, located Bool));

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS grounding Nullable(Float32);

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS duplicate_of String;

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS duplicate_similarity Nullable(Float32);

ALTER TABLE `sciqag`.qa_pairs ADD COLUMN IF NOT EXISTS first_stored_at DateTime64(6, 'UTC');

CREATE TABLE IF NOT EXISTS `sciqag`.judgments (
    judge_id LowCardinality(String),
    paper_id String,
    qa_id String,
    judge_role LowCardinality(String),
    kind LowCardinality(String),
    relevance UInt8,
    agnosticism UInt8,
    completeness UInt8,
    accuracy UInt8,
    reasonableness UInt8,
    reasons Map(String, String),
    accepted Bool,
    single_correct Nullable(Bool),
    judge_model String,
    judge_prompt_version String,
    acceptance_policy LowCardinality(String),
    judge_temperature Nullable(Float32),
    judge_prompt_tokens UInt32,
    judge_generated_tokens UInt32,
    scored_at DateTime64(6, 'UTC'),
    inserted_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(scored_at) ORDER BY (judge_id, paper_id, qa_id);

ALTER TABLE `sciqag`.judgments ADD COLUMN IF NOT EXISTS judge_id LowCardinality(String);

ALTER TABLE `sciqag`.judgments ADD COLUMN IF NOT EXISTS paper_id String;

ALTER TABLE `sciqag`.judgments ADD COLUMN IF NOT EXISTS qa_id String;

ALTER TABLE `sciqag`.judgments ADD COLUMN IF NOT EXISTS judge_role LowCardinality(String);

ALTER TABLE `sciqag`.judgments ADD COLUMN IF NOT EXISTS kind LowCardinality(String);

ALTER TABLE `sciqag`.judgments ADD COLUMN IF NOT EXISTS relevance UInt8;

ALTER TABLE `sciqag`.judgments ADD COLUMN IF NOT EXISTS agnosticism UInt8;

ALTER TABLE `sciqag`.judgments ADD COLUMN IF NOT EXISTS completeness UInt8;

ALTER TABLE `sciqag`.judgments ADD COLUMN IF NOT EXISTS accuracy UInt8;

ALTER TABLE `sciqag`.judgments ADD COLUMN IF NOT EXISTS reasonableness UInt8;

ALTER TABLE `sciqag`.judgments ADD COLUMN IF NOT EXISTS reasons Map(String, String);

ALTER TABLE `sciqag`.judgments ADD COLUMN IF NOT EXISTS accepted Bool;

ALTER TABLE `sciqag`.judgments ADD COLUMN IF NOT EXISTS single_correct Nullable(Bool);

ALTER TABLE `sciqag`.judgments ADD COLUMN IF NOT EXISTS judge_model String;

ALTER TABLE `sciqag`.judgments ADD COLUMN IF NOT EXISTS judge_prompt_version String;

ALTER TABLE `sciqag`.judgments ADD COLUMN IF NOT EXISTS acceptance_policy LowCardinality(String);

ALTER TABLE `sciqag`.judgments ADD COLUMN IF NOT EXISTS judge_temperature Nullable(Float32);

ALTER TABLE `sciqag`.judgments ADD COLUMN IF NOT EXISTS judge_prompt_tokens UInt32;

ALTER TABLE `sciqag`.judgments ADD COLUMN IF NOT EXISTS judge_generated_tokens UInt32;

ALTER TABLE `sciqag`.judgments ADD COLUMN IF NOT EXISTS scored_at DateTime64(6, 'UTC');

ALTER TABLE `sciqag`.judgments ADD COLUMN IF NOT EXISTS inserted_at DateTime64(3, 'UTC');

CREATE TABLE IF NOT EXISTS `sciqag`.verdicts (
    paper_id String,
    qa_id String,
    reviewer String,
    verdict LowCardinality(String),
    reason String,
    edited_question String,
    edited_answer String,
    decided_at DateTime64(6, 'UTC')
) ENGINE = MergeTree ORDER BY (paper_id, qa_id, decided_at);

ALTER TABLE `sciqag`.verdicts ADD COLUMN IF NOT EXISTS paper_id String;

ALTER TABLE `sciqag`.verdicts ADD COLUMN IF NOT EXISTS qa_id String;

ALTER TABLE `sciqag`.verdicts ADD COLUMN IF NOT EXISTS reviewer String;

ALTER TABLE `sciqag`.verdicts ADD COLUMN IF NOT EXISTS verdict LowCardinality(String);

ALTER TABLE `sciqag`.verdicts ADD COLUMN IF NOT EXISTS reason String;

ALTER TABLE `sciqag`.verdicts ADD COLUMN IF NOT EXISTS edited_question String;

ALTER TABLE `sciqag`.verdicts ADD COLUMN IF NOT EXISTS edited_answer String;

ALTER TABLE `sciqag`.verdicts ADD COLUMN IF NOT EXISTS decided_at DateTime64(6, 'UTC');

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

CREATE TABLE IF NOT EXISTS `sciqag`.qa_embeddings (
    qa_id String,
    paper_id String,
    kind LowCardinality(String),
    language LowCardinality(String),
    question String,
    model LowCardinality(String),
    embedding Array(Float32),
    first_stored_at DateTime64(6, 'UTC'),
    inserted_at DateTime64(6, 'UTC') DEFAULT now64(6),
    INDEX question_hnsw embedding TYPE vector_similarity('hnsw', 'cosineDistance', 384, 'bf16', 16, 64),
    INDEX inserted_minmax inserted_at TYPE minmax GRANULARITY 1
) ENGINE = MergeTree PARTITION BY kind ORDER BY (kind, paper_id, qa_id) SETTINGS index_granularity = 128, min_compress_block_size = 2048, max_compress_block_size = 65536;

ALTER TABLE `sciqag`.qa_embeddings ADD COLUMN IF NOT EXISTS inserted_at DateTime64(6, 'UTC') DEFAULT now64(6);

ALTER TABLE `sciqag`.qa_embeddings ADD INDEX IF NOT EXISTS inserted_minmax inserted_at TYPE minmax GRANULARITY 1;

CREATE TABLE IF NOT EXISTS `sciqag`.qa_scored_json_v4 (
    paper Tuple(paper_id String, doi String, title String, journal String, categories Array(String), source_uri String, source_feed String),
    qa_id String,
    pair_index UInt16,
    kind String DEFAULT 'open',
    language String DEFAULT 'en',
    keywords Array(String),
    question String,
    answer String,
    racar Tuple(relevance Tuple(score UInt8, reason String), agnosticism Tuple(score UInt8, reason String), completeness Tuple(score UInt8, reason String), accuracy Tuple(score UInt8, reason String), reasonableness Tuple(score UInt8, reason String)),
    options Array(String),
    correct_option Int8 DEFAULT -1,
    single_correct Nullable(Bool),
    numeric_support Nullable(Float32),
    accepted Bool,
    generator_model String,
    judge_model String,
    prompt_version String,
    judge_prompt_version String,
    evidence Array(Tuple(quote String, start Int32, end Int32, ratio Float32, located Bool)),
    grounding Nullable(Float32),
    scored_at DateTime64(6, 'UTC') DEFAULT now64(6),
    duplicate_of String,
    duplicate_similarity Nullable(Float32),
    first_stored_at DateTime64(6, 'UTC') DEFAULT now64(6)
) ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS `sciqag`.qa_scored_json_v4_to_qa_pairs TO `sciqag`.qa_pairs AS SELECT
    paper.paper_id AS paper_id,
    qa_id AS qa_id,
    kind AS kind,
    pair_index AS pair_index,
    paper.doi AS doi,
    paper.title AS title,
    paper.journal AS journal,
    paper.categories AS categories,
    paper.source_uri AS source_uri,
    language AS language,
    keywords AS keywords,
    question AS question,
    answer AS answer,
    racar.relevance.score AS relevance,
    racar.agnosticism.score AS agnosticism,
    racar.completeness.score AS completeness,
    racar.accuracy.score AS accuracy,
    racar.reasonableness.score AS reasonableness,
    map('relevance', racar.relevance.reason, 'agnosticism', racar.agnosticism.reason, 'completeness', racar.completeness.reason, 'accuracy', racar.accuracy.reason, 'reasonableness', racar.reasonableness.reason) AS reasons,
    numeric_support AS numeric_support,
    accepted AS accepted,
    generator_model AS generator_model,
    judge_model AS judge_model,
    prompt_version AS prompt_version,
    scored_at AS scored_at,
    now64(3) AS inserted_at,
    options AS options,
    correct_option AS correct_option,
    single_correct AS single_correct,
    judge_prompt_version AS judge_prompt_version,
    evidence AS evidence,
    grounding AS grounding,
    duplicate_of AS duplicate_of,
    duplicate_similarity AS duplicate_similarity,
    first_stored_at AS first_stored_at
FROM `sciqag`.qa_scored_json_v4;

CREATE TABLE IF NOT EXISTS `sciqag`.qa_judgments_json_v1 (
    paper Tuple(paper_id String),
    qa_id String,
    kind String DEFAULT 'open',
    racar Tuple(relevance Tuple(score UInt8, reason String), agnosticism Tuple(score UInt8, reason String), completeness Tuple(score UInt8, reason String), accuracy Tuple(score UInt8, reason String), reasonableness Tuple(score UInt8, reason String)),
    single_correct Nullable(Bool),
    accepted Bool,
    judge_model String,
    judge_prompt_version String,
    judge_id String,
    judge_role String DEFAULT 'live',
    acceptance_policy String,
    judge_temperature Nullable(Float32),
    judge_prompt_tokens UInt32,
    judge_generated_tokens UInt32,
    scored_at DateTime64(6, 'UTC') DEFAULT now64(6)
) ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS `sciqag`.qa_judgments_json_v1_to_judgments TO `sciqag`.judgments AS SELECT
    if(judge_id = '', concat('legacy:', judge_model, ':', judge_prompt_version), judge_id) AS judge_id,
    paper.paper_id AS paper_id,
    qa_id AS qa_id,
    judge_role AS judge_role,
    kind AS kind,
    racar.relevance.score AS relevance,
    racar.agnosticism.score AS agnosticism,
    racar.completeness.score AS completeness,
    racar.accuracy.score AS accuracy,
    racar.reasonableness.score AS reasonableness,
    map('relevance', racar.relevance.reason, 'agnosticism', racar.agnosticism.reason, 'completeness', racar.completeness.reason, 'accuracy', racar.accuracy.reason, 'reasonableness', racar.reasonableness.reason) AS reasons,
    accepted AS accepted,
    single_correct AS single_correct,
    judge_model AS judge_model,
    judge_prompt_version AS judge_prompt_version,
    acceptance_policy AS acceptance_policy,
    judge_temperature AS judge_temperature,
    judge_prompt_tokens AS judge_prompt_tokens,
    judge_generated_tokens AS judge_generated_tokens,
    scored_at AS scored_at,
    now64(3) AS inserted_at
FROM `sciqag`.qa_judgments_json_v1;

