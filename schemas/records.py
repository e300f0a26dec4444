"""Wire records for every topic.

One msgspec Struct per record. Rules (msgspec schema-evolution guide):
new fields always get defaults, field types never change, unknown fields are
ignored on decode so older consumers keep working with newer producers.
Records are plain data (no record refers back to itself), so they are declared
gc=False: the cyclic collector never walks them. With ~200k long-lived objects
in a worker, decoding a QAScored took 17-22 us with tracking and 9 us without
(benchmarks/sink.py, `sink_bound` row).
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

SCHEMA_VERSION = 1


def utcnow() -> datetime:
    return datetime.now(UTC)


class PaperRef(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """The identifiers of a paper, carried by every downstream record."""

    paper_id: str
    doi: str = ""
    title: str = ""
    journal: str = ""
    categories: list[str] = []
    source_uri: str = ""  # where the PDF came from: file:// or http(s):// URI, or "inline:<name>"
    source_feed: str = ""
    submitted_at: datetime | None = None


class PaperSubmitted(msgspec.Struct, gc=False, kw_only=True):
    """`sciqag.papers`: a new paper. Either `pdf_uri` or `pdf_bytes` is set."""

    paper_id: str
    doi: str = ""
    title: str = ""
    journal: str = ""
    categories: list[str] = []
    language: str = ""  # hint from the feed ("en", "ru"); empty = detect
    source_feed: str = ""
    pdf_uri: str = ""
    pdf_bytes: bytes | None = None  # inline PDF, bounded by settings.max_inline_bytes
    submitted_at: datetime = msgspec.field(default_factory=utcnow)
    schema_version: int = SCHEMA_VERSION

    def ref(self) -> PaperRef:
        return PaperRef(
            paper_id=self.paper_id,
            doi=self.doi,
            title=self.title,
            journal=self.journal,
            categories=list(self.categories),
            source_uri=self.pdf_uri,
            source_feed=self.source_feed,
            submitted_at=self.submitted_at,
        )


class Section(msgspec.Struct, gc=False, frozen=True):
    """A detected section: its heading and [start, end) character offsets into the text."""

    title: str
    start: int
    end: int


class PaperExtracted(msgspec.Struct, gc=False, kw_only=True):
    """`sciqag.extracted`: cleaned full text of one paper."""

    paper: PaperRef
    text: str
    sections: list[Section] = []
    pages: int = 0
    language: str = "en"
    extractor_version: str = ""
    removed: dict[str, int] = {}  # what cleaning removed, by kind (running headers, references...)
    # how each page was read, in page order: "text", "empty", "repaired:<how>", "ocr:<why>", or
    # "text:<why OCR was wanted>:<why it was not done>" (sciqag.extraction.ExtractedText.page_methods)
    page_methods: list[str] = []
    ocr_pages: list[int] = []  # 1-based pages whose text is Tesseract's
    repaired_pages: dict[int, str] = {}  # 1-based page -> repair ("cp1251-as-latin1", "ftfy", ...)
    ocr_language: str = ""  # Tesseract language(s) used ("rus", "eng", "rus+eng"); "" = no OCR
    detected_language: str = ""  # the body's language as detected (ISO 639-1), whatever the feed's hint said
    title_source: str = ""  # where ref.title came from when the feed had none: metadata | largest_font | ...
    extracted_at: datetime = msgspec.field(default_factory=utcnow)
    schema_version: int = SCHEMA_VERSION
    # the text's length in characters before it was cut to fit the topic (Settings.max_text_bytes); 0: not cut
    text_truncated_from: int = 0


class ExtractionSummary(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """How a paper's text was obtained, carried from the extractor to the papers table (on QAGenerated, and on the
    QAScored record that completes the paper)."""

    extractor_version: str = ""
    pages: int = 0
    ocr_pages: list[int] = []  # 1-based pages whose text is Tesseract's
    repaired_pages: dict[int, str] = {}  # 1-based page -> repair
    ocr_language: str = ""
    detected_language: str = ""
    title_source: str = ""

    @classmethod
    def of(cls, paper: PaperExtracted) -> ExtractionSummary:
        return cls(
            extractor_version=paper.extractor_version,
            pages=paper.pages,
            ocr_pages=list(paper.ocr_pages),
            repaired_pages=dict(paper.repaired_pages),
            ocr_language=paper.ocr_language,
            detected_language=paper.detected_language,
            title_source=paper.title_source,
        )


class Evidence(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """A verbatim quote the generator gave for an answer, and where it is in the paper: `[start, end)` character
    offsets into PaperExtracted.text (-1 when not located), the match ratio (1.0: exact after normalising)."""

    quote: str
    start: int = -1
    end: int = -1
    ratio: float = 0.0
    located: bool = False
    passage: str = ""  # on sciqag.qa.generated only: the located text, for the judge (which has no full text)


class QAPair(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    qa_id: str
    index: int
    question: str
    answer: str  # for kind "mcq": the text of the correct option
    kind: str = "open"  # open | mcq
    options: list[str] = []  # mcq: the four options
    correct_option: int = -1  # mcq: 0-based index of the correct option
    evidence: list[Evidence] = []  # the model's quotes for the answer (mcq: for the correct option), located
    # share of the answer's content words and numbers covered by the located evidence; None: the model gave no quote
    grounding: float | None = None


class QAGenerated(msgspec.Struct, gc=False, kw_only=True):
    """`sciqag.qa.generated`: keywords and the pairs generated for one paper.

    `context` is the paper text exactly as the generator saw it, so the judge
    scores against the same evidence; `context_strategy` says how it was fitted
    into the model's window (never silently truncated).
    """

    paper: PaperRef
    language: str
    keywords: list[str]
    pairs: list[QAPair]
    context: str
    context_strategy: str = "full"
    model: str = ""
    prompt_version: str = ""
    prompt_tokens: int = 0
    generated_tokens: int = 0
    prefilter_dropped: dict[str, int] = {}  # pairs the rule-based pre-filter removed, by reason
    extraction: ExtractionSummary | None = None
    # where the pairs went, by kind (open | mcq): how many were asked of the model (SCIQAG_PAIRS_PER_PAPER,
    # SCIQAG_MCQ_PER_PAPER) and how many usable ones were parsed from its output, before the pre-filter
    pairs_requested: dict[str, int] = {}
    pairs_parsed: dict[str, int] = {}
    generated_at: datetime = msgspec.field(default_factory=utcnow)
    schema_version: int = SCHEMA_VERSION


class DimensionScore(msgspec.Struct, gc=False, frozen=True):
    score: int
    reason: str = ""


class Racar(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """SciQAG's five judging dimensions, each scored 1..3."""

    relevance: DimensionScore
    agnosticism: DimensionScore
    completeness: DimensionScore
    accuracy: DimensionScore
    reasonableness: DimensionScore


RACAR_DIMENSIONS = ("relevance", "agnosticism", "completeness", "accuracy", "reasonableness")


class PaperQuality(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """Per-paper SciQAG quality measures, carried on each scored pair of the paper."""

    q_similarity_mean: float | None = None  # mean pairwise cosine similarity of the questions
    q_share_below_0_3: float | None = None  # share of question pairs below 0.3
    q_pairs_over_0_7: int = 0  # near-duplicate question pairs
    coverage: float | None = None  # SciQAG coverage rate of the answers over the paper
    prefilter_dropped: dict[str, int] = {}
    # the paper's pair funnel for its papers row, by kind: QAGenerated.pairs_requested and .pairs_parsed, and the
    # pairs the judge could not score (each dead-lettered with paper_failed=False)
    pairs_requested: dict[str, int] = {}
    pairs_parsed: dict[str, int] = {}
    pairs_not_judged: dict[str, int] = {}


class QAScored(msgspec.Struct, gc=False, kw_only=True):
    """`sciqag.qa.scored`: one judged pair."""

    paper: PaperRef
    qa_id: str
    pair_index: int  # the pair's index in the generator's output (part of its qa_id)
    sequence: int  # 0..pair_count-1 among the pairs of this paper that reach the scored topic
    pair_count: int  # the record with sequence == pair_count - 1 completes the paper
    kind: str = "open"
    language: str = "en"
    keywords: list[str] = []
    question: str
    answer: str
    racar: Racar
    options: list[str] = []
    correct_option: int = -1
    single_correct: bool | None = None  # mcq: the judge found exactly the marked option correct
    paper_quality: PaperQuality | None = None
    numeric_support: float | None = None  # share of numbers in the answer found in the paper; None if it has none
    accepted: bool = False
    generator_model: str = ""
    judge_model: str = ""
    prompt_version: str = ""
    judge_prompt_version: str = ""  # the RACAR prompt that scored it (sciqag.prompts.JUDGE_PROMPT_VERSION)
    context_strategy: str = ""  # how the paper was fitted into the generator's window (QAGenerated.context_strategy)
    judge_prompt_tokens: int = 0
    judge_generated_tokens: int = 0
    # on the completing record only: the qa_ids of every pair of this run of the paper, so the sink can delete
    # pairs an earlier run stored that this one no longer has (a re-generation after a crash, a replay)
    paper_qa_ids: list[str] = []
    extraction: ExtractionSummary | None = None  # on the completing record only, for the papers row
    evidence: list[Evidence] = []  # the quotes given for the answer and where they are in PaperExtracted.text
    grounding: float | None = None  # see QAPair.grounding
    scored_at: datetime = msgspec.field(default_factory=utcnow)
    schema_version: int = SCHEMA_VERSION
    # which judge scored it (issue 20): a stable id of the judge's model, prompt, policy and temperature
    # (sciqag.judges.judge_id), and its role: "live" (the judge of the stream: the record also writes the pair to
    # qa_pairs and completes the paper), "rejudge" (`sciqag rejudge`) or "shadow" (a second judge on a share of the
    # live pairs); those two only add a judgment (the judgments table) and leave the pair and the paper as they are
    judge_id: str = ""
    judge_role: str = "live"
    acceptance_policy: str = ""  # the policy `accepted` was decided under (Settings.acceptance_policy)
    judge_temperature: float | None = None


class _PaperIdOnly(msgspec.Struct, gc=False, frozen=True):
    paper_id: str


class _ScoreOnly(msgspec.Struct, gc=False, frozen=True):
    score: int


class _RacarScores(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    relevance: _ScoreOnly
    agnosticism: _ScoreOnly
    completeness: _ScoreOnly
    accuracy: _ScoreOnly
    reasonableness: _ScoreOnly


class QAScoredCheck(msgspec.Struct, gc=False, kw_only=True):
    """The fields of a QAScored without defaults (and its version), read without the rest.

    The sink's fast path checks each record with this (and decides near-duplicates from it), then lets ClickHouse
    parse the whole record (see
    schemas/ddl.py, QA_JSON_TABLE): a record missing a required field is dead-lettered as decode() would, at a
    fifth of its cost. A test keeps these fields in step with QAScored.
    """

    paper: _PaperIdOnly
    qa_id: str
    pair_index: int
    sequence: int
    pair_count: int
    question: str
    answer: str
    racar: _RacarScores
    schema_version: int = SCHEMA_VERSION
    # and what the sink's near-duplicate decision reads (processors/dedup.py), with QAScored's defaults
    kind: str = "open"
    language: str = "en"
    options: list[str] = []
    judge_role: str = "live"  # not required; read here so the sink routes the record without decoding it whole

    @property
    def live(self) -> bool:
        """A record of the stream's own judge: it writes the pair and may complete the paper (see QAScored)."""
        return self.judge_role == "live"

    @property
    def completes_paper(self) -> bool:
        return self.live and self.sequence == self.pair_count - 1


class DeadLetter(msgspec.Struct, gc=False, kw_only=True):
    """`sciqag.dlq`: a record a stage could not process, and why."""

    stage: str
    paper_id: str = ""
    error_kind: str
    message: str
    source_topic: str = ""
    source_partition: int = -1
    source_offset: int = -1
    source_uri: str = ""
    payload_excerpt: str = ""  # the first bytes of the original payload, for operators
    paper_failed: bool = True  # False when only one pair failed and the paper goes on
    failed_at: datetime = msgspec.field(default_factory=utcnow)
    schema_version: int = SCHEMA_VERSION


RECORD_TYPES: dict[str, type[msgspec.Struct]] = {
    "PaperSubmitted": PaperSubmitted,
    "PaperExtracted": PaperExtracted,
    "QAGenerated": QAGenerated,
    "QAScored": QAScored,
    "DeadLetter": DeadLetter,
}
