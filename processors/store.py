"""ClickHouse access through clickhouse-connect: chDB in-process by default, a server over HTTP when configured.

clickhouse-connect is synchronous; the agents call it through `run_in_executor`,
and a lock keeps the chDB session single-threaded.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

import msgspec

from schemas.ddl import (
    DLQ_TABLE,
    PAPERS_TABLE,
    JSON_INPUT_SETTINGS,
    QA_JSON_TABLE,
    QA_TABLE,
    column_names,
    ddl,
)

from .settings import Settings

log = logging.getLogger(__name__)

PAPER_COLUMNS = column_names(PAPERS_TABLE)
QA_COLUMNS = column_names(QA_TABLE)
DLQ_COLUMNS = column_names(DLQ_TABLE)


_encode_json = msgspec.json.Encoder().encode


class StoreError(Exception):
    """ClickHouse could not be reached or refused a statement."""


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


class Store:
    def __init__(self, settings: Settings) -> None:
        self.database = settings.clickhouse_database
        self._client = connect(settings)
        self._lock = threading.Lock()

    def ensure_schema(self) -> None:
        for statement in ddl(self.database):
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

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: list[str]) -> None:
        if not rows:
            return
        with self._lock:
            try:
                self._client.insert(table, list(rows), column_names=columns, database=self.database)
            except Exception as exc:
                raise StoreError(f"insert of {len(rows)} rows into {table} failed: {exc}") from exc

    def insert_qa_json(self, records: Sequence[bytes]) -> None:
        """Insert QAScored records as they are on the topic (JSON); ClickHouse parses them into qa_pairs rows."""
        if not records:
            return
        with self._lock:
            try:
                self._client.raw_insert(f"`{self.database}`.{QA_JSON_TABLE}", None, insert_block=b"\n".join(records),
                                        fmt="JSONEachRow", settings=JSON_INPUT_SETTINGS)
            except Exception as exc:
                raise StoreError(f"insert of {len(records)} JSON records into {QA_JSON_TABLE} failed: {exc}") from exc

    def insert_papers(self, rows: Sequence[Sequence[Any]]) -> None:
        """Papers rows go in as JSON: clickhouse-connect's conversion of these Map/Array/Nullable rows in Python
        cost the sink as much as the insert of ten times as many pairs (benchmarks/sink.py)."""
        if not rows:
            return
        lines = [_encode_json(dict(zip(PAPER_COLUMNS, row))) for row in rows]
        with self._lock:
            try:
                self._client.raw_insert(f"`{self.database}`.{PAPERS_TABLE}", None, insert_block=b"\n".join(lines),
                                        fmt="JSONEachRow", settings=JSON_INPUT_SETTINGS)
            except Exception as exc:
                raise StoreError(f"insert of {len(rows)} rows into {PAPERS_TABLE} failed: {exc}") from exc

    def insert_qa(self, rows: Sequence[Sequence[Any]]) -> None:
        self.insert(QA_TABLE, rows, QA_COLUMNS)

    def insert_dead_letters(self, rows: Sequence[Sequence[Any]]) -> None:
        self.insert(DLQ_TABLE, rows, DLQ_COLUMNS)

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
            f"SELECT DISTINCT paper_id, qa_id FROM `{self.database}`.{QA_TABLE} WHERE paper_id IN {{ids:Array(String)}}",
            {"ids": list(keep)},
        )
        keep_sets = {paper_id: set(ids) for paper_id, ids in keep.items()}
        stale = [(r["paper_id"], r["qa_id"]) for r in stored if r["qa_id"] not in keep_sets[r["paper_id"]]]
        if not stale:
            return 0
        self.command(
            f"DELETE FROM `{self.database}`.{QA_TABLE} WHERE has({{stale:Array(Tuple(String, String))}}, (paper_id, qa_id))",
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
            f"SELECT paper_id, status, stage, error_kind, error_message, qa_pairs, updated_at FROM `{self.database}`.{PAPERS_TABLE} FINAL "
            "WHERE paper_id IN {ids:Array(String)}",
            {"ids": ids},
        )
        return {r["paper_id"]: r for r in rows}

    def qa_rows(self, paper_ids: Iterable[str] | None = None) -> list[dict]:
        where, params = "", None
        if paper_ids is not None:
            where, params = "WHERE paper_id IN {ids:Array(String)}", {"ids": list(paper_ids)}
        return self.query(
            f"SELECT * FROM `{self.database}`.{QA_TABLE} FINAL {where} ORDER BY paper_id, kind, pair_index", params
        )

    def close(self) -> None:
        with self._lock:
            try:
                self._client.close()
            except Exception:  # closing a broken connection must not mask the real error
                log.debug("closing ClickHouse client failed", exc_info=True)


def now() -> datetime:
    return datetime.now(timezone.utc)
