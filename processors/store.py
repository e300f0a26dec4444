"""ClickHouse access through clickhouse-connect: chDB in-process by default, a server over HTTP when configured;
and the rows of each table, built from the records by column name.

clickhouse-connect is synchronous; the agents call it through `run_in_executor`,
and a lock keeps the chDB session single-threaded.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import msgspec

from schemas import (
    RACAR_DIMENSIONS,
    DeadLetter,
    ExtractionSummary,
    PaperExtracted,
    PaperQuality,
    QAGenerated,
    QAScored,
)
from schemas.ddl import (
    DLQ_TABLE,
    JSON_INPUT_SETTINGS,
    JUDGMENTS_JSON_TABLE,
    JUDGMENTS_TABLE,
    PAPER_CONTEXTS_TABLE,
    PAPER_TEXTS_TABLE,
    PAPERS_TABLE,
    QA_EMBEDDINGS_TABLE,
    QA_JSON_TABLE,
    QA_TABLE,
    VERDICTS_TABLE,
    column_names,
    ddl,
)

from .errors import StoreError
from .settings import Settings

log = logging.getLogger(__name__)

PAPER_COLUMNS = column_names(PAPERS_TABLE)
QA_COLUMNS = column_names(QA_TABLE)
DLQ_COLUMNS = column_names(DLQ_TABLE)
# what a judge decides about a pair: the qa_pairs columns a reader's --judge takes from the judgments table instead
JUDGED_COLUMNS = [*RACAR_DIMENSIONS, "reasons", "accepted", "single_correct", "judge_model", "judge_prompt_version"]


_encode_json = msgspec.json.Encoder().encode


# -- rows, by column name: a column added to schemas/ddl.py cannot shift the others ---------------------------------


def qa_row(r: QAScored, decision: Any = None) -> dict[str, Any]:
    """The qa_pairs row of a scored pair (the sink's fallback path; ClickHouse builds the same from the JSON record,
    schemas/ddl.py _QA_FROM_JSON), with its near-duplicate decision (processors/dedup.py) when it has one."""
    p = r.paper
    # unchecked, as the JSON path stores a record without a decision
    dedup = {"duplicate_of": "", "duplicate_similarity": None, "first_stored_at": now()}
    if decision is not None and decision.first_stored_at is not None:
        dedup = {
            "duplicate_of": decision.duplicate_of,
            "duplicate_similarity": decision.similarity,
            "first_stored_at": decision.first_stored_at,
        }
    return {
        **dedup,
        "paper_id": p.paper_id,
        "qa_id": r.qa_id,
        "kind": r.kind,
        "pair_index": r.pair_index,
        "doi": p.doi,
        "title": p.title,
        "journal": p.journal,
        "categories": list(p.categories),
        "source_uri": p.source_uri,
        "language": r.language,
        "keywords": list(r.keywords),
        "question": r.question,
        "answer": r.answer,
        **{d: getattr(r.racar, d).score for d in RACAR_DIMENSIONS},
        "reasons": {d: getattr(r.racar, d).reason for d in RACAR_DIMENSIONS},
        "numeric_support": r.numeric_support,
        "accepted": r.accepted,
        "generator_model": r.generator_model,
        "judge_model": r.judge_model,
        "prompt_version": r.prompt_version,
        "judge_prompt_version": r.judge_prompt_version,
        "scored_at": r.scored_at,
        "inserted_at": now(),
        "options": list(r.options),
        "correct_option": r.correct_option,
        "single_correct": r.single_correct,
        "evidence": [(e.quote, e.start, e.end, e.ratio, e.located) for e in r.evidence],
        "grounding": r.grounding,
    }


def judgment_row(r: QAScored) -> dict[str, Any]:
    """The judgments row of a scored pair (the sink's fallback path; ClickHouse builds the same from the JSON record,
    schemas/ddl.py _JUDGMENT_FROM_JSON)."""
    return {
        "judge_id": r.judge_id or f"legacy:{r.judge_model}:{r.judge_prompt_version}",
        "paper_id": r.paper.paper_id,
        "qa_id": r.qa_id,
        "judge_role": r.judge_role,
        "kind": r.kind,
        **{d: getattr(r.racar, d).score for d in RACAR_DIMENSIONS},
        "reasons": {d: getattr(r.racar, d).reason for d in RACAR_DIMENSIONS},
        "accepted": r.accepted,
        "single_correct": r.single_correct,
        "judge_model": r.judge_model,
        "judge_prompt_version": r.judge_prompt_version,
        "acceptance_policy": r.acceptance_policy,
        "judge_temperature": r.judge_temperature,
        "judge_prompt_tokens": r.judge_prompt_tokens,
        "judge_generated_tokens": r.judge_generated_tokens,
        "scored_at": r.scored_at,
        "inserted_at": now(),
    }


def paper_row_scored(r: QAScored) -> dict[str, Any]:
    """The papers row of a paper whose last pair `r` is."""
    p = r.paper
    q = r.paper_quality or PaperQuality()
    return {
        "paper_id": p.paper_id,
        "doi": p.doi,
        "title": p.title,
        "journal": p.journal,
        "categories": list(p.categories),
        "source_uri": p.source_uri,
        "source_feed": p.source_feed,
        "language": r.language,
        "status": "scored",
        "stage": "sink",
        "error_kind": "",
        "error_message": "",
        "keywords": list(r.keywords),
        "qa_pairs": r.pair_count,
        "context_strategy": r.context_strategy,
        "updated_at": now(),
        "q_similarity_mean": q.q_similarity_mean,
        "q_share_below_0_3": q.q_share_below_0_3,
        "q_pairs_over_0_7": q.q_pairs_over_0_7,
        "coverage": q.coverage,
        "prefilter_dropped": dict(q.prefilter_dropped),
        "pairs_requested": dict(q.pairs_requested),
        "pairs_parsed": dict(q.pairs_parsed),
        "pairs_not_judged": dict(q.pairs_not_judged),
        **_extraction_columns(r.extraction),
    }


def _extraction_columns(e: ExtractionSummary | None) -> dict[str, Any]:
    if e is None:  # records from before the field: the columns keep their defaults
        return {}
    return {
        "extractor_version": e.extractor_version,
        "pages": e.pages,
        "ocr_pages": list(e.ocr_pages),
        "repaired_pages": dict(e.repaired_pages),
        "ocr_language": e.ocr_language,
        "detected_language": e.detected_language,
        "title_source": e.title_source,
    }


def paper_row_failed(d: DeadLetter) -> dict[str, Any]:
    """The papers row of a paper a dead letter failed (the columns not named keep their defaults)."""
    return {
        "paper_id": d.paper_id,
        "source_uri": d.source_uri,
        "status": "failed",
        "stage": d.stage,
        "error_kind": d.error_kind,
        "error_message": d.message,
        "updated_at": now(),
    }


def paper_text_row(e: PaperExtracted) -> dict[str, Any]:
    """The paper_texts row of an extracted paper (inserted as JSON: sections as objects)."""
    return {
        "paper_id": e.paper.paper_id,
        "text": e.text,
        "sections": [{"title": x.title, "start": x.start, "end": x.end} for x in e.sections],
        "language": e.language,
        "detected_language": e.detected_language,
        "extractor_version": e.extractor_version,
        "pages": e.pages,
        "page_methods": list(e.page_methods),
        "extracted_at": e.extracted_at,
        "updated_at": now(),
    }


def paper_context_row(g: QAGenerated) -> dict[str, Any]:
    """The paper_contexts row of a generated paper: the text its pairs were written (and are judged) from."""
    return {
        "paper_id": g.paper.paper_id,
        "context": g.context,
        "context_strategy": g.context_strategy,
        "generator_model": g.model,
        "prompt_version": g.prompt_version,
        "generated_at": g.generated_at,
        "updated_at": now(),
    }


def dlq_row(d: DeadLetter) -> dict[str, Any]:
    return {name: getattr(d, name) for name in DLQ_COLUMNS}


def _values(row: dict[str, Any], columns: list[str], table: str) -> list:
    unknown = row.keys() - set(columns)
    if unknown:
        raise KeyError(f"{table} has no columns {sorted(unknown)}")
    return [row.get(name, _COLUMN_DEFAULTS.get(name)) for name in columns]


# the nearest stored questions of one kind, other papers only: the HNSW index returns the nearest rows, the filters
# apply after it (post-filtering), so it fetches `vector_search_index_fetch_multiplier` times more to keep k
NEAREST_QUESTIONS_SQL = (
    "SELECT qa_id, paper_id, question, 1 - cosineDistance(embedding, {{vector:Array(Float32)}}) AS similarity "
    "FROM `{database}`.{table} WHERE kind = {{kind:String}} AND paper_id != {{paper_id:String}} "
    "ORDER BY cosineDistance(embedding, {{vector:Array(Float32)}}) LIMIT {{k:UInt32}}"
)
# (benchmarks/vector_index.py, BENCHMARKS.md; at 1M stored vectors). hnsw_candidate_list_size_for_search 256, i.e.
# ClickHouse's default, spelled out: once the merges leave one or two parts a kind, recall@10 on the 16-connection
# graph of schemas/ddl.py was 0.97 at 256, 0.94 at 128 and 0.90 at 64, and the lookup's CPU hardly changed (~10 ms;
# the search is a small part of it). With the many small parts of a 100k table 64 was as good (0.99-1.00). Fetch
# multiplier 2: 20 rows a part, of which the asking paper's own rows (a replay; 10 + 4 a paper by default) leave at
# least 10; it halves the granules read after the search (4 did not find more). The lookup is a point query: what
# is left of its cost is per part of the kind (one HNSW search and its reads each, ~2 ms) plus ~10 ms of parsing,
# planning, one search and the client, whatever the table size (BENCHMARKS.md, 2026-12-01 (4)).
NEAREST_SETTINGS = {"vector_search_index_fetch_multiplier": 2, "hnsw_candidate_list_size_for_search": 256}


# what a row leaves out gets the column's ClickHouse default; Python needs it spelled out for the list inserts
_COLUMN_DEFAULTS: dict[str, Any] = {
    "extractor_version": "",
    "pages": 0,
    "ocr_pages": [],
    "repaired_pages": {},
    "ocr_language": "",
    "detected_language": "",
    "title_source": "",
    "categories": [],
    "keywords": [],
    "qa_pairs": 0,
    "q_pairs_over_0_7": 0,
    "prefilter_dropped": {},
    "pairs_requested": {},
    "pairs_parsed": {},
    "pairs_not_judged": {},
    "doi": "",
    "title": "",
    "journal": "",
    "source_feed": "",
    "language": "",
    "context_strategy": "",
    "duplicate_of": "",
    "duplicate_similarity": None,
}


def connect(settings: Settings):
    import clickhouse_connect

    try:
        if settings.clickhouse_dsn.startswith("chdb:"):
            return clickhouse_connect.get_client(dsn=settings.clickhouse_dsn)
        if settings.clickhouse_dsn:  # SCIQAG_CLICKHOUSE_PASSWORD(_FILE), when set, wins over a password in the DSN
            return clickhouse_connect.get_client(dsn=settings.clickhouse_dsn, password=settings.clickhouse_password)
        if settings.clickhouse_host:
            return clickhouse_connect.get_client(
                host=settings.clickhouse_host,
                port=settings.clickhouse_port,
                username=settings.clickhouse_user,
                password=settings.clickhouse_password,
            )
        settings.chdb_path.mkdir(parents=True, exist_ok=True)
        return clickhouse_connect.get_client(dsn=f"chdb://{settings.chdb_path}")
    except Exception as exc:
        raise StoreError(f"cannot connect to ClickHouse: {exc}") from exc


# the orders the review list offers: name -> columns (a stable tie-break by paper and pair follows)
REVIEW_SORTS: dict[str, tuple[str, ...]] = {
    "paper": ("journal", "paper_id"),
    "scored": ("scored_at",),
    "score": ("(" + " + ".join(RACAR_DIMENSIONS) + ")",),
    "grounding": ("grounding",),
    "similarity": ("duplicate_similarity",),
    "reviewed": ("reviewed_at",),
}


@dataclass(frozen=True)
class PairFilter:
    """What the review list shows: every field left at its default lets every pair through."""

    judge: str = ""  # whose scores and acceptance (a judge_id; '' or 'live': qa_pairs' own)
    category: str = ""  # a journal or a subject category
    language: str = ""
    kind: str = ""  # open | mcq
    accepted: bool | None = None  # the judge's acceptance
    scores: tuple[tuple[str, int], ...] = ()  # (RACAR dimension, exact score)
    grounding_min: float | None = None
    grounding_max: float | None = None
    duplicate: bool | None = None  # a near-duplicate of another paper's pair, or not
    verdict: str = ""  # '' any; none: not reviewed; reviewed; accept | reject | edit: the latest verdict
    since: date | None = None  # scored on or after this day (UTC)
    until: date | None = None  # scored on or before this day
    text: str = ""  # in the question or the answer (case-insensitive)

    def where(self) -> tuple[str, dict[str, Any]]:
        """A WHERE clause over the review query's columns, with its bound parameters."""
        conds, params = [], {}

        def add(cond: str, **values: Any) -> None:
            conds.append(cond)
            params.update(values)

        if self.category:
            add("(journal = {category:String} OR has(categories, {category:String}))", category=self.category)
        if self.language:
            add("language = {language:String}", language=self.language)
        if self.kind:
            add("kind = {kind:String}", kind=self.kind)
        if self.accepted is not None:
            add("accepted = {accepted:Bool}", accepted=self.accepted)
        for dim, score in self.scores:
            if dim not in RACAR_DIMENSIONS:
                raise ValueError(f"unknown RACAR dimension {dim!r}")
            add(f"{dim} = {{score_{dim}:UInt8}}", **{f"score_{dim}": int(score)})
        if self.grounding_min is not None:
            add("grounding >= {gmin:Float64}", gmin=float(self.grounding_min))
        if self.grounding_max is not None:
            add("grounding <= {gmax:Float64}", gmax=float(self.grounding_max))
        if self.duplicate is not None:
            conds.append("duplicate_of != ''" if self.duplicate else "duplicate_of = ''")
        if self.verdict == "none":
            conds.append("review_verdict = ''")
        elif self.verdict == "reviewed":
            conds.append("review_verdict != ''")
        elif self.verdict:
            add("review_verdict = {verdict:String}", verdict=self.verdict)
        if self.since is not None:
            add("toDate(scored_at) >= {since:Date}", since=self.since)
        if self.until is not None:
            add("toDate(scored_at) <= {until:Date}", until=self.until)
        if self.text:
            add(
                "(positionCaseInsensitiveUTF8(question, {text:String}) > 0 OR "
                "positionCaseInsensitiveUTF8(answer, {text:String}) > 0)",
                text=self.text,
            )
        return (f"WHERE {' AND '.join(conds)}" if conds else ""), params


class Store:
    def __init__(self, settings: Settings) -> None:
        self.database = settings.clickhouse_database
        self.embedding_dims = settings.embeddings_dims
        self._client = connect(settings)
        self._lock = threading.Lock()

    def ensure_schema(self) -> None:
        for statement in ddl(self.database, self.embedding_dims):
            self.command(statement)

    def command(self, sql: str, parameters: dict | None = None) -> Any:
        with self._lock:
            try:
                return self._client.command(sql, parameters=parameters)
            except Exception as exc:
                raise StoreError(f"ClickHouse command failed: {exc}") from exc

    def query(self, sql: str, parameters: dict | None = None) -> list[dict]:
        with self._lock:
            try:
                result = self._client.query(sql, parameters=parameters)
            except Exception as exc:
                raise StoreError(f"ClickHouse query failed: {exc}") from exc
        return [dict(zip(result.column_names, row)) for row in result.result_rows]

    def insert(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        """Insert rows given as {column: value}; a column left out gets its default."""
        if not rows:
            return
        columns = column_names(table)
        values = [_values(row, columns, table) for row in rows]
        with self._lock:
            try:
                self._client.insert(table, values, column_names=columns, database=self.database)
            except Exception as exc:
                raise StoreError(f"insert of {len(rows)} rows into {table} failed: {exc}") from exc

    def insert_json(self, table: str, lines: Sequence[bytes]) -> None:
        """Insert JSON objects, one a line; ClickHouse parses them (JSON_INPUT_SETTINGS)."""
        if not lines:
            return
        with self._lock:
            try:
                self._client.raw_insert(
                    f"`{self.database}`.{table}",
                    None,
                    insert_block=b"\n".join(lines),
                    fmt="JSONEachRow",
                    settings=JSON_INPUT_SETTINGS,
                )
            except Exception as exc:
                raise StoreError(f"insert of {len(lines)} JSON rows into {table} failed: {exc}") from exc

    def insert_qa_json(self, records: Sequence[bytes]) -> None:
        """Insert QAScored records as they are on the topic (JSON); ClickHouse parses them into qa_pairs rows."""
        self.insert_json(QA_JSON_TABLE, records)

    def insert_judgments_json(self, records: Sequence[bytes]) -> None:
        """Insert QAScored records as they are on the topic; ClickHouse makes one judgments row of each."""
        self.insert_json(JUDGMENTS_JSON_TABLE, records)

    def insert_judgments(self, rows: Sequence[dict[str, Any]]) -> None:
        self.insert(JUDGMENTS_TABLE, rows)

    def judged_qa_ids(self, judge_id: str, paper_ids: Iterable[str]) -> set[str]:
        """The pairs of these papers this judge has scored."""
        rows = self.query(
            f"SELECT DISTINCT qa_id FROM `{self.database}`.{JUDGMENTS_TABLE} "
            "WHERE judge_id = {judge:String} AND paper_id IN {ids:Array(String)}",
            {"judge": judge_id, "ids": list(paper_ids)},
        )
        return {r["qa_id"] for r in rows}

    def judges(self) -> list[dict]:
        """One row per judge in the judgments table (pairs still in qa_pairs only): model, prompt, policy,
        temperature, roles, pairs, accepted, tokens, first and last judgment."""
        db = f"`{self.database}`"
        return self.query(
            "SELECT judge_id, any(judge_model) AS judge_model, "
            "arrayStringConcat(arraySort(groupUniqArray(judge_prompt_version)), ',') AS judge_prompt_versions, "
            "any(acceptance_policy) AS acceptance_policy, any(judge_temperature) AS judge_temperature, "
            "arrayStringConcat(arraySort(groupUniqArray(judge_role)), ',') AS roles, count() AS pairs, "
            "countIf(accepted) AS accepted, sum(judge_prompt_tokens) AS prompt_tokens, "
            "sum(judge_generated_tokens) AS generated_tokens, min(scored_at) AS first_at, max(scored_at) AS last_at "
            f"FROM {db}.{JUDGMENTS_TABLE} FINAL WHERE qa_id IN (SELECT qa_id FROM {db}.{QA_TABLE}) "
            "GROUP BY judge_id ORDER BY min(scored_at), judge_id"
        )

    def _judge_source(self, judge: str, param: str) -> str:
        """A subquery of one judge's scores by qa_id; `live`: qa_pairs' own (no token counts there)."""
        db = f"`{self.database}`"
        dims = ", ".join(RACAR_DIMENSIONS)
        if judge == "live":
            return (
                f"SELECT qa_id, {dims}, accepted, toUInt32(0) AS prompt_tokens, toUInt32(0) AS generated_tokens "
                f"FROM {db}.{QA_TABLE} FINAL"
            )
        return (
            f"SELECT qa_id, {dims}, accepted, judge_prompt_tokens AS prompt_tokens, "
            f"judge_generated_tokens AS generated_tokens FROM {db}.{JUDGMENTS_TABLE} FINAL "
            f"WHERE judge_id = {{{param}:String}} AND qa_id IN (SELECT qa_id FROM {db}.{QA_TABLE})"
        )

    def judged_by_both(self, judge_a: str, judge_b: str) -> list[dict]:
        """The pairs both judges scored: each column of a judge's scores as `<column>_a` / `<column>_b`."""
        cols = [*RACAR_DIMENSIONS, "accepted", "prompt_tokens", "generated_tokens"]
        select = ", ".join(f"{side}.{c} AS {c}_{side}" for side in ("a", "b") for c in cols)
        return self.query(
            f"SELECT a.qa_id AS qa_id, {select} FROM ({self._judge_source(judge_a, 'a')}) AS a "
            f"INNER JOIN ({self._judge_source(judge_b, 'b')}) AS b ON a.qa_id = b.qa_id ORDER BY qa_id",
            {"a": judge_a, "b": judge_b},
        )

    def insert_papers(self, rows: Sequence[dict[str, Any]]) -> None:
        """Papers rows go in as JSON: clickhouse-connect's conversion of these Map/Array/Nullable rows in Python
        cost the sink as much as the insert of ten times as many pairs (benchmarks/sink.py)."""
        self._insert_rows_json(PAPERS_TABLE, rows)

    def insert_paper_texts(self, rows: Sequence[dict[str, Any]]) -> None:
        """Paper texts and contexts go in as JSON too (long strings, one row a paper)."""
        self._insert_rows_json(PAPER_TEXTS_TABLE, rows)

    def insert_paper_contexts(self, rows: Sequence[dict[str, Any]]) -> None:
        self._insert_rows_json(PAPER_CONTEXTS_TABLE, rows)

    def _insert_rows_json(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        columns = column_names(table)
        for row in rows:
            _values(row, columns, table)  # the same check of the column names as insert()
        self.insert_json(table, [_encode_json(row) for row in rows])

    def paper_texts(self, paper_ids: Iterable[str]) -> dict[str, dict]:
        """paper_id -> its paper_texts row (text, sections...), for the papers given."""
        rows = self.query(
            f"SELECT * FROM `{self.database}`.{PAPER_TEXTS_TABLE} FINAL WHERE paper_id IN {{ids:Array(String)}}",
            {"ids": list(paper_ids)},
        )
        return {r["paper_id"]: r for r in rows}

    def nearest_questions(
        self, vector: Sequence[float], kind: str, paper_id: str, k: int, table: str = QA_EMBEDDINGS_TABLE
    ) -> list[dict]:
        """The k stored questions of this kind nearest to `vector` (cosine, through the HNSW index), from papers other
        than `paper_id`: [{qa_id, paper_id, question, similarity}], most similar first."""
        sql = NEAREST_QUESTIONS_SQL.format(database=self.database, table=table)
        params = {"vector": [float(x) for x in vector], "kind": kind, "paper_id": paper_id, "k": k}
        with self._lock:
            try:
                result = self._client.query(sql, parameters=params, settings=NEAREST_SETTINGS)
            except Exception as exc:
                raise StoreError(f"ClickHouse nearest-question query failed: {exc}") from exc
        return [dict(zip(result.column_names, row)) for row in result.result_rows]

    def pair_decisions(self, keys: Sequence[tuple[str, str]]) -> dict[str, dict]:
        """qa_id -> {paper_id, question, duplicate_of, duplicate_similarity, first_stored_at} of the stored pairs
        among these (paper_id, qa_id) keys."""
        if not keys:
            return {}
        rows = self.query(
            "SELECT paper_id, qa_id, question, duplicate_of, duplicate_similarity, first_stored_at "
            f"FROM `{self.database}`.{QA_TABLE} FINAL "
            "WHERE paper_id IN {papers:Array(String)} AND qa_id IN {ids:Array(String)}",
            {"papers": sorted({k[0] for k in keys}), "ids": sorted({k[1] for k in keys})},
        )
        for r in rows:
            r["first_stored_at"] = _utc(r["first_stored_at"])
        return {r["qa_id"]: r for r in rows}

    def replace_embeddings(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert question embeddings, deleting the earlier rows of the same pairs first (a replayed pair whose
        question changed, or a batch stored again after a crash before its pairs were)."""
        if not rows:
            return
        table = f"`{self.database}`.{QA_EMBEDDINGS_TABLE}"
        params = {"papers": sorted({r["paper_id"] for r in rows}), "ids": sorted({r["qa_id"] for r in rows})}
        where = "WHERE paper_id IN {papers:Array(String)} AND qa_id IN {ids:Array(String)}"
        if self.query(f"SELECT count() AS n FROM {table} {where}", params)[0]["n"]:
            self.command(f"DELETE FROM {table} {where}", params)
        self._insert_rows_json(
            QA_EMBEDDINGS_TABLE, [{**r, "embedding": [float(x) for x in r["embedding"]]} for r in rows]
        )

    def server_now(self) -> datetime:
        """The ClickHouse server's clock (the one `qa_embeddings.inserted_at` is written with)."""
        return _utc(self.query("SELECT now64(6) AS t")[0]["t"])

    def embeddings_inserted_since(self, since: datetime, kinds: Sequence[str]) -> list[dict]:
        """The question embeddings inserted at or after `since` (server clock), of these kinds."""
        return self.query(
            "SELECT qa_id, paper_id, kind, question, embedding "
            f"FROM `{self.database}`.{QA_EMBEDDINGS_TABLE} "
            "WHERE inserted_at >= {since:DateTime64(6, 'UTC')} AND kind IN {kinds:Array(String)}",
            {"since": since, "kinds": sorted(set(kinds))},
        )

    def embeddings_of(self, keys: Sequence[tuple[str, str]]) -> dict[str, list[float]]:
        """qa_id -> stored question embedding, for these (paper_id, qa_id) keys."""
        if not keys:
            return {}
        rows = self.query(
            f"SELECT qa_id, embedding FROM `{self.database}`.{QA_EMBEDDINGS_TABLE} "
            "WHERE paper_id IN {papers:Array(String)} AND qa_id IN {ids:Array(String)}",
            {"papers": sorted({k[0] for k in keys}), "ids": sorted({k[1] for k in keys})},
        )
        return {r["qa_id"]: r["embedding"] for r in rows}

    def mark_duplicates(self, marks: dict[tuple[str, str], tuple[str, float]]) -> None:
        """Store pairs again as near-duplicates: (paper_id, qa_id) -> (the canonical qa_id, similarity)."""
        table = f"`{self.database}`.{QA_TABLE}"
        for (paper_id, qa_id), (canonical, similarity) in marks.items():
            self.command(
                f"INSERT INTO {table} SELECT * REPLACE ({{dup:String}} AS duplicate_of, "
                "toNullable(toFloat32({sim:Float64})) AS duplicate_similarity, now64(3) AS inserted_at) "
                f"FROM {table} FINAL WHERE paper_id = {{p:String}} AND qa_id = {{q:String}}",
                {"dup": canonical, "sim": similarity, "p": paper_id, "q": qa_id},
            )

    def insert_qa(self, rows: Sequence[dict[str, Any]]) -> None:
        self.insert(QA_TABLE, rows)

    def insert_dead_letters(self, rows: Sequence[dict[str, Any]]) -> None:
        self.insert(DLQ_TABLE, rows)

    def prune_pairs(self, keep: dict[str, list[str]]) -> int:
        """Delete the stored pairs of these papers that are not in their keep list; returns how many.

        A paper processed twice (re-delivered after a crash, or replayed) is stored under the same
        qa_ids, but the second run may keep fewer pairs, or fail: the pairs only the first run had
        would outlive it. Stale pairs are rare, so this reads first and deletes only when needed
        (lightweight DELETEs are meant to be occasional).
        """
        if not keep:
            return 0
        stored = self.query(
            f"SELECT DISTINCT paper_id, qa_id FROM `{self.database}`.{QA_TABLE} "
            "WHERE paper_id IN {ids:Array(String)}",
            {"ids": list(keep)},
        )
        keep_sets = {paper_id: set(ids) for paper_id, ids in keep.items()}
        stale = [(r["paper_id"], r["qa_id"]) for r in stored if r["qa_id"] not in keep_sets[r["paper_id"]]]
        if not stale:
            return 0
        for table in (QA_TABLE, QA_EMBEDDINGS_TABLE):
            self.command(
                f"DELETE FROM `{self.database}`.{table} "
                "WHERE has({stale:Array(Tuple(String, String))}, (paper_id, qa_id))",
                {"stale": stale},
            )
        return len(stale)

    def papers(self) -> list[dict]:
        return self.query(f"SELECT * FROM `{self.database}`.{PAPERS_TABLE} FINAL ORDER BY paper_id")

    def paper_status(self, paper_ids: Iterable[str]) -> dict[str, dict]:
        ids = list(paper_ids)
        if not ids:
            return {}
        rows = self.query(
            "SELECT paper_id, status, stage, error_kind, error_message, qa_pairs, updated_at, "
            "prefilter_dropped, pairs_requested, pairs_parsed, pairs_not_judged "
            f"FROM `{self.database}`.{PAPERS_TABLE} FINAL "
            "WHERE paper_id IN {ids:Array(String)}",
            {"ids": ids},
        )
        return {r["paper_id"]: r for r in rows}

    def qa_rows(
        self, paper_ids: Iterable[str] | None = None, *, judge: str = "", duplicates: bool = True
    ) -> list[dict]:
        """The stored pairs (of these papers). With `judge` (a judge_id, issue 20) the scores, reasons, acceptance
        and judge model of that judge instead of the live judge's, and only the pairs it scored; empty or `live`:
        qa_pairs as stored. duplicates=False leaves out the near-duplicates of other papers' pairs
        (processors/dedup.py)."""
        conditions, params = [], {}
        if paper_ids is not None:
            conditions.append("q.paper_id IN {ids:Array(String)}")
            params["ids"] = list(paper_ids)
        if not duplicates:
            conditions.append("q.duplicate_of = ''")
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        db = f"`{self.database}`"
        if not judge or judge == "live":
            return self.query(
                f"SELECT * FROM {db}.{QA_TABLE} AS q FINAL {where} ORDER BY paper_id, kind, pair_index", params or None
            )
        params["judge"] = judge
        return self.query(f"{self._scored_pairs_sql(judge)} {where} ORDER BY paper_id, kind, pair_index", params)

    # -- reviewers' verdicts (issue 23): the verdicts table and what `sciqag review` lists ----------------------------

    def insert_verdicts(self, rows: Sequence[dict[str, Any]]) -> None:
        self.insert(VERDICTS_TABLE, rows)

    def _latest_verdicts_sql(self) -> str:
        """One row per reviewed pair: its latest verdict (argMax by decided_at) and how many it has had."""
        # `at`: decided_at under another name, so that the result's own decided_at (the latest) does not shadow it
        latest = ", ".join(
            f"argMax({c}, at) AS {c}" for c in ("reviewer", "verdict", "reason", "edited_question", "edited_answer")
        )
        return (
            f"SELECT paper_id, qa_id, {latest}, max(at) AS decided_at, count() AS verdicts "
            f"FROM (SELECT *, decided_at AS at FROM `{self.database}`.{VERDICTS_TABLE}) GROUP BY paper_id, qa_id"
        )

    def latest_verdicts(self, qa_ids: Iterable[str] | None = None) -> dict[str, dict]:
        """qa_id -> its latest verdict {paper_id, qa_id, reviewer, verdict, reason, edited_question, edited_answer,
        decided_at, verdicts}, for every reviewed pair (or those given)."""
        sql, params = f"SELECT * FROM ({self._latest_verdicts_sql()})", None
        if qa_ids is not None:
            sql, params = sql + " WHERE qa_id IN {ids:Array(String)}", {"ids": list(qa_ids)}
        return {r["qa_id"]: r for r in self.query(sql, params)}

    def verdict_history(self, qa_id: str) -> list[dict]:
        """Every verdict given on a pair, newest first."""
        return self.query(
            f"SELECT * FROM `{self.database}`.{VERDICTS_TABLE} WHERE qa_id = {{qa:String}} ORDER BY decided_at DESC",
            {"qa": qa_id},
        )

    def _scored_pairs_sql(self, judge: str) -> str:
        """The stored pairs with one judge's scores (as qa_rows reads them), with {judge:String} bound."""
        db = f"`{self.database}`"
        if not judge or judge == "live":
            return f"SELECT * FROM {db}.{QA_TABLE} FINAL"
        judged = ", ".join(f"j.{c} AS {c}" for c in JUDGED_COLUMNS)
        return (
            f"SELECT q.* EXCEPT ({', '.join(JUDGED_COLUMNS)}, scored_at), {judged}, j.scored_at AS scored_at, "
            f"j.judge_id AS judge_id FROM {db}.{QA_TABLE} AS q FINAL INNER JOIN "
            f"(SELECT * FROM {db}.{JUDGMENTS_TABLE} FINAL WHERE judge_id = {{judge:String}}) AS j "
            "ON q.qa_id = j.qa_id AND q.paper_id = j.paper_id"
        )

    def _reviewed_pairs_sql(self, judge: str) -> str:
        """The pairs of one judge, each with its latest verdict (review_verdict '' when it has none)."""
        return (
            "SELECT q.*, v.verdict AS review_verdict, v.reviewer AS reviewed_by, v.reason AS review_reason, "
            "v.edited_question AS edited_question, v.edited_answer AS edited_answer, v.decided_at AS reviewed_at, "
            f"v.verdicts AS review_count FROM ({self._scored_pairs_sql(judge)}) AS q "
            f"LEFT JOIN ({self._latest_verdicts_sql()}) AS v ON q.paper_id = v.paper_id AND q.qa_id = v.qa_id"
        )

    def review_pairs(
        self, f: PairFilter, *, sort: str = "paper", descending: bool = False, limit: int = 50, offset: int = 0
    ) -> list[dict]:
        """One page of the pairs that pass the filter, with their latest verdicts, in the order asked (REVIEW_SORTS)."""
        where, params = f.where()
        order = REVIEW_SORTS[sort]
        direction = " DESC" if descending else ""
        order_by = ", ".join(f"{c}{direction}" for c in order) + ", paper_id, kind, pair_index, qa_id"
        params = {**params, "judge": f.judge, "limit": int(limit), "offset": int(offset)}
        return self.query(
            f"SELECT * FROM ({self._reviewed_pairs_sql(f.judge)}) {where} ORDER BY {order_by} "
            "LIMIT {limit:UInt32} OFFSET {offset:UInt32}",
            params,
        )

    def review_counts(self, f: PairFilter) -> dict[str, int]:
        """How many pairs pass the filter, and of those: papers, accepted by the judge, reviewed, rejected by a
        reviewer, edited, near-duplicates."""
        where, params = f.where()
        rows = self.query(
            # n_ names: an alias named like a column (accepted) would replace that column in the WHERE clause
            "SELECT count() AS n_pairs, uniqExact(paper_id) AS n_papers, countIf(accepted) AS n_accepted, "
            "countIf(review_verdict != '') AS n_reviewed, countIf(review_verdict = 'reject') AS n_rejected, "
            "countIf(review_verdict = 'edit') AS n_edited, countIf(duplicate_of != '') AS n_duplicates "
            f"FROM ({self._reviewed_pairs_sql(f.judge)}) {where}",
            {**params, "judge": f.judge},
        )
        return {k.removeprefix("n_"): int(v) for k, v in rows[0].items()}

    def review_facets(self) -> dict[str, list[tuple[str, int]]]:
        """The values the list's filters offer, with the pairs of each: categories (journals and subject
        categories), languages, kinds."""
        table = f"`{self.database}`.{QA_TABLE} FINAL"
        out = {}
        for name, expr in (
            ("category", "arrayJoin(arrayDistinct(arrayFilter(x -> x != '', arrayConcat([journal], categories))))"),
            ("language", "language"),
            ("kind", "kind"),
        ):
            rows = self.query(f"SELECT {expr} AS value, count() AS n FROM {table} GROUP BY value ORDER BY value")
            out[name] = [(str(r["value"]), int(r["n"])) for r in rows]
        return out

    def review_pair(self, qa_id: str, judge: str = "") -> dict | None:
        """One pair with its latest verdict (None: no such pair, or not scored by this judge)."""
        rows = self.query(
            f"SELECT * FROM ({self._reviewed_pairs_sql(judge)}) WHERE qa_id = {{qa:String}} LIMIT 1",
            {"qa": qa_id, "judge": judge},
        )
        return rows[0] if rows else None

    def near_duplicates(self, qa_id: str) -> list[dict]:
        """The pairs marked as near-duplicates of this one: [{qa_id, paper_id, title, question,
        duplicate_similarity}], most similar first."""
        return self.query(
            "SELECT qa_id, paper_id, title, question, duplicate_similarity "
            f"FROM `{self.database}`.{QA_TABLE} FINAL WHERE duplicate_of = {{qa:String}} "
            "ORDER BY duplicate_similarity DESC, qa_id",
            {"qa": qa_id},
        )

    def close(self) -> None:
        with self._lock:
            try:
                self._client.close()
            except Exception:  # closing a broken connection must not mask the real error
                log.debug("closing ClickHouse client failed", exc_info=True)


@contextlib.contextmanager
def open_store(settings: Settings) -> Iterator[Store]:
    """A store with its tables created, closed on exit (for commands that read or write once)."""
    store = Store(settings)
    try:
        store.ensure_schema()
        yield store
    finally:
        store.close()


def now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    """clickhouse-connect returns naive datetimes for some DateTime64 columns: all of ours are UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
