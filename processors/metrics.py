"""Prometheus metrics, named sciqag_<thing>_<unit>. Served with Faust's own monitor on /metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

PAPERS = Counter(
    "sciqag_papers_total", "Papers leaving a stage, by outcome (ok | failed | scored).", ["stage", "outcome"]
)
STAGE_SECONDS = Histogram(
    "sciqag_stage_duration_seconds",
    "Time a stage spent on one record.",
    ["stage"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
END_TO_END_SECONDS = Histogram(
    "sciqag_end_to_end_latency_seconds",
    "From a paper's submission to its last pair reaching the sink.",
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200),
)
LLM_TOKENS = Counter(
    "sciqag_llm_tokens_total", "LLM tokens by role and kind (prompt | generated | cached_prompt).", ["role", "kind"]
)
LLM_IN_FLIGHT = Gauge("sciqag_llm_requests_in_flight", "LLM requests currently in the engine.", ["role"])
LLM_REQUEST_SECONDS = Histogram(
    "sciqag_llm_request_duration_seconds",
    "Latency of one LLM request.",
    ["role"],
    buckets=(0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
)
LLM_ERRORS = Counter("sciqag_llm_errors_total", "LLM requests that failed in the engine.", ["role", "error"])
PAGES_RECOVERED = Counter(
    "sciqag_extraction_pages_total",
    "Pages whose text layer was not used as it was, by method (ocr | repaired) and why (no_text, mojibake, ...).",
    ["method", "reason"],
)
GROUNDING = Histogram(
    "sciqag_qa_grounding",
    "Share of a judged answer's content words and numbers covered by its located evidence (pairs with quotes).",
    ["kind", "language"],
    buckets=(0.0, 0.25, 0.5, 0.75, 0.9, 1.0),
)
QA_PAIRS = Counter("sciqag_qa_pairs_total", "Judged QA pairs, by outcome (accepted | rejected).", ["outcome"])
PREFILTER_DROPPED = Counter(
    "sciqag_qa_prefilter_dropped_total", "Generated pairs the rule-based pre-filter dropped, by reason.", ["reason"]
)
QA_FUNNEL = Counter(
    "sciqag_qa_funnel_pairs",
    "Where the pairs asked of the model went, by kind (open | mcq) and step: requested = generated + unparseable + "
    "failed_paper (the generator failed the paper); generated = prefiltered + not_judged + judged; judged = accepted "
    "+ the rest. Near-duplicates: sciqag_near_duplicates_total.",
    ["kind", "step"],
)
QA_STORED = Counter("sciqag_qa_pairs_stored_total", "QA pairs inserted into ClickHouse.")
JUDGMENTS_STORED = Counter(
    "sciqag_judgments_stored_total",
    "Judgments (one judge's scores of one pair) inserted into ClickHouse, by the judge's role (live | rejudge | "
    "shadow).",
    ["role"],
)
QA_PRUNED = Counter(
    "sciqag_qa_pairs_pruned_total",
    "Stored pairs deleted because a later run of their paper (re-delivery, replay) no longer has them.",
)
RACAR_SCORE = Histogram("sciqag_racar_score", "RACAR scores (1..3) per dimension.", ["dimension"], buckets=(1, 2, 3))
DLQ = Counter("sciqag_dlq_total", "Records sent to the dead-letter topic, by stage and reason.", ["stage", "reason"])
SINK_INSERT_SECONDS = Histogram(
    "sciqag_sink_insert_duration_seconds",
    "One batched ClickHouse insert.",
    ["table"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# judges (issue 20): the shadow judge's work, and the agreement and cost figures of each judge against the primary
SHADOW_PAIRS = Counter(
    "sciqag_shadow_judge_pairs_total",
    "Live pairs offered to the shadow judge, by outcome (judged | failed | dropped: its queue was full).",
    ["judge", "outcome"],
)
JUDGE_PAIRS = Counter(
    "sciqag_judge_pairs_total",
    "Pairs a judge agent scored or could not score, by role (live | rejudge | shadow) and outcome (scored | failed).",
    ["role", "outcome"],
)
JUDGE_AGREEMENT = Gauge(
    "sciqag_judge_agreement_ratio",
    "Share of the pairs both judges scored where they gave the same score (dimension: a RACAR dimension, or accepted).",
    ["judge", "reference", "dimension"],
)
JUDGE_KAPPA = Gauge(
    "sciqag_judge_kappa",
    "Cohen's kappa of a judge against the reference judge (quadratic weights for the 1..3 dimensions, unweighted for "
    "accepted); absent where undefined.",
    ["judge", "reference", "dimension"],
)
JUDGE_MEAN_DIFFERENCE = Gauge(
    "sciqag_judge_mean_difference",
    "Mean score of a judge minus the reference judge's, on the pairs both scored.",
    ["judge", "reference", "dimension"],
)
JUDGE_COMMON_PAIRS = Gauge(
    "sciqag_judge_common_pairs", "Pairs scored by both a judge and the reference judge.", ["judge", "reference"]
)
JUDGE_TOKENS_PER_PAIR = Gauge(
    "sciqag_judge_tokens_per_pair", "LLM tokens (prompt + generated) a judge spent per judged pair.", ["judge"]
)
JUDGE_TOKENS_PER_ACCEPTED = Gauge(
    "sciqag_judge_tokens_per_accepted_pair", "LLM tokens a judge spent per pair it accepted.", ["judge"]
)
JUDGE_ACCEPTANCE = Gauge("sciqag_judge_acceptance_ratio", "Share of its judged pairs a judge accepted.", ["judge"])
NEAR_DUPLICATE_CHECKED = Counter(
    "sciqag_near_duplicate_checked_total",
    "Stored pairs checked against the corpus for near-duplicate questions, by kind and language.",
    ["kind", "language"],
)
NEAR_DUPLICATES = Counter(
    "sciqag_near_duplicates_total",
    "Stored pairs whose question near-duplicates an earlier canonical pair of another paper, by kind and language.",
    ["kind", "language"],
)
NEAR_DUPLICATE_SECONDS = Histogram(
    "sciqag_near_duplicate_seconds",
    "Time of the near-duplicate decision for one sink batch (embeddings, index lookups, embeddings insert).",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SINK_RETRIES = Counter("sciqag_sink_insert_retries_total", "ClickHouse inserts retried after an error.")

# feed ingestion (`sciqag feed`), by source name
FEED_POLLS = Counter(
    "sciqag_feed_polls_total", "Feed polls by source and outcome (ok | not_modified | error).", ["source", "outcome"]
)
FEED_PAPERS = Counter(
    "sciqag_feed_papers_total",
    "Feed entries by source and result (new | duplicate | dead_lettered).",
    ["source", "result"],
)
FEED_ERRORS = Counter(
    "sciqag_feed_errors_total", "Feed errors by source and kind (malformed_feed, http_error...).", ["source", "kind"]
)
FEED_LAST_SUCCESS = Gauge(
    "sciqag_feed_last_success_timestamp_seconds", "When a source was last polled successfully.", ["source"]
)


class _AssignedPartitions:
    """`sciqag_partition_assigned{group, topic, partition}` = 1 for each partition this worker's consumers hold now,
    read from the consumers at scrape time (nothing stale after a rebalance). Which member of a scaled-out stage
    holds which partitions; the embedded Tansu broker does not report assignments in DescribeGroups."""

    def __init__(self) -> None:
        self.sources: dict[str, Callable[[], Iterable[tuple[str, int]]]] = {}

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily(
            "sciqag_partition_assigned",
            "Partitions assigned to this worker now, by consumer group (1 per partition held).",
            labels=["group", "topic", "partition"],
        )
        for group, assignment in list(self.sources.items()):
            try:
                held = sorted(assignment())
            except Exception:  # a consumer not started yet or stopping: it holds nothing
                held = []
            for topic, partition in held:
                family.add_metric([group, topic, str(partition)], 1)
        yield family


ASSIGNED_PARTITIONS = _AssignedPartitions()
REGISTRY.register(ASSIGNED_PARTITIONS)
