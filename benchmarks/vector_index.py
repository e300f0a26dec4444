"""The near-duplicate vector index (issue 19): insert rate, lookup latency and recall@10 of the `qa_embeddings` HNSW
index in embedded chDB, as the table grows to 10k, 100k and 1M stored vectors.

- Table and query: exactly those of the stream, `schemas.ddl.embeddings_table_ddl` (created by `open_store`) and
  `Store.nearest_questions` (`NEAREST_QUESTIONS_SQL` with `NEAREST_SETTINGS`: the k nearest questions of one kind,
  other papers only). The baseline is the same table without the INDEX line, queried the same way: a brute-force
  `ORDER BY cosineDistance` scan, in the same process, at the same size.
- Vectors: synthetic unit vectors of 384 dims, clustered (3,000 random centres plus Gaussian noise: two questions
  of one cluster have cosine ~0.74, of two clusters ~0.0), 10 open pairs and 4 multiple-choice items per paper.
- Inserts: batches of 2,000 rows (a sink batch) in ClickHouse's Native format built from the numpy arrays
  (`native_block`; 25k rows/s into the table without the index here, 3-5x the clickhouse-connect row or column
  inserts and JSONEachRow, whose float parsing costs about as much as the HNSW build). The rate counts the wait for
  the background merges to settle (no merge running and the same parts for 20 s; a merge rebuilds the HNSW graph of
  the merged part); the CPU per vector is the whole process's (chDB runs in it), inserts and merges. How many parts
  a kind the merges leave varies from run to run (at 1M: 1 to 13), and a lookup costs per part: each lookup row
  says the parts it searched.
- Lookups: queries near stored points (a stored vector plus noise, cosine ~0.98 to it), of its kind; half from its
  own paper (a re-delivered paper: its own rows must not come back), half from a new paper. Latency of
  `Store.nearest_questions(k=10)` after the merges settled and one warm-up query (it loads the graphs), p50/p99,
  the process CPU per lookup, and from ClickHouse's counters (system.events) what a lookup read: rows of the granules
  read, bytes decompressed, HNSW searches (one per part of the kind).
- Recall@10: against exact search in numpy over the same vectors with the same filters, in the same run.
- `--stream-batches N`: the state the stream leaves, which a bulk load does not: at the largest size, after the
  merges settled, N inserts of STREAM_BATCH rows (a sink batch), the lookups at once among the small parts they
  left (merges running), and again once those settled.

    .venv/bin/python -m benchmarks.vector_index [--sizes 10000,100000,1000000 --queries 200]
    .venv/bin/python -m benchmarks.vector_index --sizes 100k --table-settings none  # MergeTree's default granules
    .venv/bin/python -m benchmarks.vector_index --sizes 1M --stream-batches 20  # and 20 sink batches after
    .venv/bin/python -m benchmarks --only vector_index --vector-sizes 10000,100000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .common import Row, format_table

DIMS = 384
CENTRES = 3000
NOISE = 0.6  # cluster spread: |noise| / |centre|
QUERY_NOISE = 0.2
OPEN, MCQ = 10, 4  # pairs per paper of each kind
BATCH = 2000
STREAM_BATCH = 140  # a sink batch of 10 papers' pairs
K = 10
P99_TARGET_MS = 20.0
RECALL_TARGET = 0.95
FLAT_TABLE = "qa_embeddings_flat"  # the same table without the index: the brute-force baseline


def clustered_vectors(n: int, seed: int = 19) -> np.ndarray:
    """n unit vectors around CENTRES random unit centres (float32)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((CENTRES, DIMS), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, DIMS), dtype=np.float32)
    for lo in range(0, n, 100_000):  # in chunks: the noise of 1M vectors at once would double the peak memory
        hi = min(n, lo + 100_000)
        chunk = centres[rng.integers(0, CENTRES, hi - lo)]
        chunk += NOISE / np.sqrt(DIMS) * rng.standard_normal((hi - lo, DIMS), dtype=np.float32)
        out[lo:hi] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    return out


def layout(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(paper number, is-mcq) of each row: OPEN open pairs then MCQ items per paper."""
    i = np.arange(n)
    return i // (OPEN + MCQ), i % (OPEN + MCQ) >= OPEN


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _strings(values) -> bytes:
    return b"".join(_varint(len(b)) + b for b in (v.encode() for v in values))


def native_block(columns: list[tuple[str, str, object]]) -> bytes:
    """A ClickHouse Native-format block of (name, type, values) columns: String (also inserted into LowCardinality
    columns), Array(Float32) from a 2-D float32 array, DateTime64(6) from microseconds."""
    rows = len(columns[0][2])
    out = [_varint(len(columns)), _varint(rows)]
    for name, type_, values in columns:
        out += [_strings([name]), _strings([type_])]
        if type_ == "String":
            out.append(_strings(values))
        elif type_ == "Array(Float32)":
            out.append((np.arange(1, rows + 1, dtype="<u8") * values.shape[1]).tobytes())  # offsets
            out.append(np.ascontiguousarray(values, dtype="<f4").tobytes())
        elif type_.startswith("DateTime64(6"):
            out.append(np.asarray(values, dtype="<i8").tobytes())
        else:
            raise ValueError(f"no Native writer for {type_}")
    return b"".join(out)


def _rows_block(x: np.ndarray, lo: int, hi: int) -> bytes:
    paper, mcq = layout(hi)
    ids = range(lo, hi)
    stored_at = int(time.time() * 1e6)
    return native_block(
        [
            ("qa_id", "String", [f"q{i:08d}" for i in ids]),
            ("paper_id", "String", [f"pbench{p:07d}" for p in paper[lo:hi]]),
            ("kind", "String", ["mcq" if m else "open" for m in mcq[lo:hi]]),
            ("language", "String", ["en"] * (hi - lo)),
            ("question", "String", [f"benchmark question {i}" for i in ids]),
            ("model", "String", ["bench"] * (hi - lo)),
            ("embedding", "Array(Float32)", x[lo:hi]),
            ("first_stored_at", "DateTime64(6, 'UTC')", [stored_at] * (hi - lo)),
        ]
    )


def with_table_settings(ddl: str, table_settings: str | None) -> str:
    """The DDL with its SETTINGS clause replaced by this one (None: unchanged; "none": no SETTINGS clause, i.e.
    MergeTree's defaults, the table of the first version)."""
    if table_settings is None:
        return ddl
    ddl = re.sub(r"\s+SETTINGS .*$", "", ddl, flags=re.S)
    return ddl if table_settings.strip().lower() in ("", "none") else f"{ddl} SETTINGS {table_settings}"


def flat_ddl(database: str, table_settings: str | None = None) -> str:
    """The stream's embeddings DDL without its vector index, for FLAT_TABLE."""
    from schemas.ddl import embeddings_table_ddl

    ddl = with_table_settings(embeddings_table_ddl(database, table=FLAT_TABLE), table_settings)
    flat, removed = re.subn(r",\n\s*INDEX \w+ embedding TYPE vector_similarity\([^)]*\)", "", ddl)
    if removed != 1:
        raise ValueError(f"no vector_similarity INDEX line in the embeddings DDL:\n{ddl}")
    return flat


def _settle(store, timeout_s: float, quiet_s: float) -> float:
    """Wait until, for quiet_s in a row, no merge runs on our tables and their active parts stay the same (or the
    timeout); the seconds waited. A short quiet spell is not the end: between two merges the merge selector can sleep
    for seconds (merge_selecting_sleep_ms; longer when it backs off), and a 2 s window once ended a 1M run with 13
    parts a kind, still merging during its lookups."""
    started = time.perf_counter()
    quiet_since, parts_then = None, None
    sql = (
        "SELECT (SELECT count() FROM system.merges WHERE database = {db:String}) AS merging, "
        "(SELECT count() FROM system.parts WHERE database = {db:String} AND active) AS parts"
    )
    while time.perf_counter() - started < timeout_s:
        (state,) = store.query(sql, {"db": store.database})
        now = time.perf_counter()
        if state["merging"] or state["parts"] != parts_then:
            quiet_since, parts_then = None, state["parts"]
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= quiet_s:
            return quiet_since - started
        time.sleep(0.25)
    return time.perf_counter() - started


def _parts(store, table: str) -> dict[str, int]:
    rows = store.query(
        "SELECT partition, count() AS n FROM system.parts WHERE database = {db:String} AND table = {t:String} "
        "AND active GROUP BY partition ORDER BY partition",
        {"db": store.database, "t": table},
    )
    return {r["partition"]: int(r["n"]) for r in rows}


def _exact(x: np.ndarray, paper: np.ndarray, mcq: np.ndarray, queries: list[tuple]) -> list[set[int]]:
    """The true k nearest stored rows of each query (cosine on unit vectors: dot product), same filters."""
    truth = []
    for vector, is_mcq, own_paper in queries:
        sims = x @ vector
        sims[(mcq != is_mcq) | (paper == own_paper)] = -np.inf
        top = np.argpartition(-sims, K)[:K]
        truth.append(set(top.tolist()))
    return truth


# ClickHouse's own counters (system.events) per lookup: rows of the granules read, bytes decompressed, HNSW searches
# (one per part of the kind), CPU of the query threads
_EVENTS = {
    "SelectedRows": "rows",
    "CompressedReadBufferBytes": "bytes",
    "USearchSearchCount": "searches",
    "OSCPUVirtualTimeMicroseconds": "ch_cpu_us",
}


def _events(store) -> dict[str, int]:
    names = list(_EVENTS)
    rows = store.query("SELECT event, value FROM system.events WHERE event IN {names:Array(String)}", {"names": names})
    return {r["event"]: int(r["value"]) for r in rows}


def _lookups(store, table: str, queries: list[tuple], truth: list[set[int]]) -> dict:
    """Latencies (ms) of nearest_questions over the queries, recall@K against the truth, rule violations, and what
    ClickHouse read per lookup."""
    from processors import store as store_module

    sql = store_module.NEAREST_QUESTIONS_SQL.format(database=store.database, table=table)
    params = {"vector": queries[0][0].tolist(), "kind": "open", "paper_id": "pbench-warmup", "k": K}
    plan = store._client.query(f"EXPLAIN indexes = 1 {sql}", parameters=params, settings=store_module.NEAREST_SETTINGS)
    # with the index, the distances come from it (the _distance column); without, the query computes them
    index_used = any("_distance" in line for (line,) in plan.result_rows)
    for kind in ("open", "mcq"):  # the first query of a kind loads its graphs into the index cache
        store.nearest_questions(queries[0][0], kind, "pbench-warmup", K, table=table)
    latencies, cpu, recalls, short, own = [], [], [], 0, 0
    events_before = _events(store)
    for (vector, is_mcq, own_paper), true in zip(queries, truth):
        paper_id = f"pbench{own_paper:07d}" if own_paper >= 0 else "pbench-new"
        started, cpu_started = time.perf_counter(), time.process_time()
        found = store.nearest_questions(vector, "mcq" if is_mcq else "open", paper_id, K, table=table)
        latencies.append(1000 * (time.perf_counter() - started))
        cpu.append(1000 * (time.process_time() - cpu_started))  # all threads: chDB runs in this process
        got = {int(r["qa_id"][1:]) for r in found}
        recalls.append(len(got & true) / K)
        short += len(found) < K
        own += any(r["paper_id"] == paper_id for r in found)
    events_after = _events(store)
    per_lookup = {
        key: (events_after.get(event, 0) - events_before.get(event, 0)) / len(queries) for event, key in _EVENTS.items()
    }
    return {
        **per_lookup,
        "p50": float(np.percentile(latencies, 50)),
        "p99": float(np.percentile(latencies, 99)),
        "cpu_p50": float(np.percentile(cpu, 50)),
        "recall": float(np.mean(recalls)),
        "short": short,
        "own": own,
        "n": len(queries),
        "index_used": index_used,
    }


def run(
    sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000),
    queries: int = 200,
    brute_queries: int = 0,
    batch: int = BATCH,
    optimize: bool = False,
    compare_settings: dict | list[dict] | None = None,
    index: str = "",
    table_settings: str | None = None,
    settle_timeout_s: float = 3600,
    settle_quiet_s: float = 20,
    stream_batches: int = 0,
    seed: int = 19,
) -> list[Row]:
    """Rows per size: insert rate, lookup p99 and recall@10. brute_queries=0: all the queries up to 100k vectors,
    a tenth (at least 20) above (the scan takes about a second at 1M). compare_settings: the lookups measured
    again with these added to NEAREST_SETTINGS, on the same table (a list: again for each); optimize: at the
    largest size, OPTIMIZE TABLE ... FINAL and the lookups again; index: another `vector_similarity(...)` definition
    (the tuning in BENCHMARKS.md); table_settings: another SETTINGS clause for both tables ("none": MergeTree's
    defaults); stream_batches: at the largest size, that many sink-sized inserts (STREAM_BATCH rows) after the
    merges settled, and the lookups again at once, among the parts they left, then once those settled."""
    from processors.settings import Settings
    from processors.store import open_store
    from schemas.ddl import QA_EMBEDDINGS_TABLE, embeddings_table_ddl

    sizes = tuple(sorted(sizes))
    compared = [compare_settings] if isinstance(compare_settings, dict) else list(compare_settings or [])
    streamed = stream_batches * STREAM_BATCH
    x = clustered_vectors(sizes[-1] + streamed, seed)
    paper, mcq = layout(sizes[-1] + streamed)
    rng = np.random.default_rng(seed + 1)
    rows: list[Row] = []

    def insert(store, table: str, lo: int, hi: int, step: int) -> None:
        for start in range(lo, hi, step):
            block = _rows_block(x, start, min(hi, start + step))
            store._client.raw_insert(f"`{store.database}`.{table}", None, insert_block=block, fmt="Native")

    def queries_at(n: int) -> tuple[list[tuple], list[set[int]]]:
        """Queries near stored points of the first n, half from their own paper, and their true neighbours."""
        src = rng.integers(0, n, queries)
        vectors = x[src] + QUERY_NOISE / np.sqrt(DIMS) * rng.standard_normal((queries, DIMS), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        qs = [(vectors[i], bool(mcq[s]), int(paper[s]) if i % 2 == 0 else -1) for i, s in enumerate(src.tolist())]
        return qs, _exact(x[:n], paper[:n], mcq[:n], qs)

    def measure(store, n: int, qs, truth, flat: dict | None, state: str) -> dict:
        """The index lookups in this state (with each compared setting), then the scan's when flat is None."""
        parts = _parts(store, QA_EMBEDDINGS_TABLE)
        measured = []
        for extra in [None, *compared]:
            with _query_settings(extra):
                measured.append((extra, _lookups(store, QA_EMBEDDINGS_TABLE, qs, truth)))
        if flat is None:
            nb = brute_queries or max(20, queries // 10)
            flat = _lookups(store, FLAT_TABLE, qs[:nb], truth[:nb])
        for extra, idx in measured:
            label = ", ".join(t for t in (state, _describe(extra)) if t)
            rows.extend(map(_progress, _lookup_rows(n, idx, flat, parts, label)))
        return flat

    with tempfile.TemporaryDirectory() as tmp, open_store(Settings(data_dir=Path(tmp), log_level="WARNING")) as st:
        if index or table_settings is not None:  # the stream's table dropped and created again with these
            ddl = with_table_settings(embeddings_table_ddl(st.database), table_settings)
            st.command(f"DROP TABLE `{st.database}`.{QA_EMBEDDINGS_TABLE}")
            st.command(re.sub(r"vector_similarity\([^)]*\)", index, ddl) if index else ddl)
        st.command(flat_ddl(st.database, table_settings))
        stored = 0
        for n in sizes:
            timing = {}
            for table in (QA_EMBEDDINGS_TABLE, FLAT_TABLE):
                cpu, started = time.process_time(), time.perf_counter()
                insert(st, table, stored, n, batch)
                insert_s = time.perf_counter() - started
                settle_s = _settle(st, settle_timeout_s, settle_quiet_s)
                timing[table] = {
                    "insert_s": insert_s,
                    "settle_s": settle_s,
                    "cpu_s": time.process_time() - cpu,
                    "parts": _parts(st, table),
                }
            added, stored = n - stored, n
            rows.append(_progress(_insert_row(n, added, batch, timing[QA_EMBEDDINGS_TABLE], timing[FLAT_TABLE])))

            qs, truth = queries_at(n)
            nb = brute_queries or (queries if n <= 100_000 else max(20, queries // 10))
            flat = _lookups(st, FLAT_TABLE, qs[:nb], truth[:nb])
            states = [("", None)]
            if optimize and n == sizes[-1]:
                states.append(("after OPTIMIZE FINAL", QA_EMBEDDINGS_TABLE))
            for state, to_optimize in states:
                if to_optimize:
                    started = time.perf_counter()
                    st.command(f"OPTIMIZE TABLE `{st.database}`.{to_optimize} FINAL")
                    state += f" ({time.perf_counter() - started:.0f} s)"
                measure(st, n, qs, truth, flat, state)
        if stream_batches:  # what the stream leaves: small parts beside the settled ones, merging
            n = stored + streamed
            qs, truth = queries_at(n)
            insert(st, FLAT_TABLE, stored, n, STREAM_BATCH)
            started = time.perf_counter()
            insert(st, QA_EMBEDDINGS_TABLE, stored, n, STREAM_BATCH)  # last: the lookups follow it at once
            state = f"{stream_batches} stream inserts of {STREAM_BATCH} in {time.perf_counter() - started:.0f} s"
            flat = measure(st, n, qs, truth, None, state)
            settle_s = _settle(st, settle_timeout_s, settle_quiet_s)
            measure(st, n, qs, truth, flat, f"{state}, then settled in {settle_s:.0f} s")
    return rows


def _progress(row: Row) -> Row:
    """Each row on stderr as soon as it is measured (the 1M run takes most of an hour)."""
    print(
        f"{time.strftime('%H:%M:%S')} {row.measured}: {row.value:.2f} ({row.baseline_name} {row.baseline:.2f}); "
        f"{row.note}",
        file=sys.stderr,
        flush=True,
    )
    return row


@contextlib.contextmanager
def _query_settings(extra: dict | None):
    """NEAREST_SETTINGS with these added, for the lookups inside."""
    from processors import store as store_module

    saved = dict(store_module.NEAREST_SETTINGS)
    store_module.NEAREST_SETTINGS.update(extra or {})
    try:
        yield
    finally:
        store_module.NEAREST_SETTINGS.clear()
        store_module.NEAREST_SETTINGS.update(saved)


def _describe(settings: dict | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in (settings or {}).items())


def _size(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n / 1e3:g}k"


def _insert_row(n: int, added: int, batch: int, ti: dict, tf: dict) -> Row:
    def rate(t: dict) -> float:
        return added / (t["insert_s"] + t["settle_s"])

    parts = ", ".join(f"{k} {v}" for k, v in ti["parts"].items())
    return Row(
        "vector_index",
        f"insert vectors/s to {_size(n)} stored",
        rate(ti),
        "the same inserts, no index, vectors/s",
        rate(tf),
        note=f"{added:,} vectors in {batch}-row Native inserts: {ti['insert_s']:.0f} s inserting + "
        f"{ti['settle_s']:.0f} s until the merges settled; CPU {1000 * ti['cpu_s'] / added:.2f} ms per vector, "
        f"merges included (no index: {1000 * tf['cpu_s'] / added:.2f}); parts after: {parts}",
    )


def _lookup_rows(n: int, idx: dict, flat: dict, parts: dict, label: str) -> list[Row]:
    size = _size(n) + (f" ({label})" if label else "")
    p99_ok = "ok" if idx["p99"] < P99_TARGET_MS else "MISSED"
    parts_text = ", ".join(f"{k} {v}" for k, v in parts.items())
    return [
        Row(
            "vector_index",
            f"lookup p99 ms at {size}",
            idx["p99"],
            "brute-force scan (no index) p99 ms",
            flat["p99"],
            note=f"Store.nearest_questions k={K}: p50 {idx['p50']:.1f} ms, CPU p50 {idx['cpu_p50']:.1f} ms over "
            f"{idx['n']} queries (scan: p50 {flat['p50']:.1f} ms, CPU {flat['cpu_p50']:.1f} ms over {flat['n']}); "
            f"read per lookup: {idx['rows']:,.0f} rows of granules, {idx['bytes'] / 1e6:.2f} MB decompressed, "
            f"{idx['searches']:.1f} HNSW searches, ClickHouse CPU {idx['ch_cpu_us'] / 1000:.1f} ms; "
            f"index used: {'yes' if idx['index_used'] else 'NO'}; parts: {parts_text}; target p99 < "
            f"{P99_TARGET_MS:g} ms: {p99_ok}; fewer than {K} found: {idx['short']}; own paper returned: "
            f"{idx['own']}; load average {os.getloadavg()[0]:.1f}",
        ),
        Row(
            "vector_index",
            f"recall@{K} at {size}",
            idx["recall"],
            f"exact scan (no index) recall@{K}",
            flat["recall"],
            target=RECALL_TARGET,
            note="both against exact numpy search over the same vectors and filters (kind, other papers)",
        ),
    ]


def parse_sizes(text: str) -> tuple[int, ...]:
    return tuple(int(float(s.lower().replace("k", "e3").replace("m", "e6"))) for s in text.split(","))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10k,100k,1M", help="stored vectors to grow the table to, e.g. 10k,100k")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--brute-queries", type=int, default=0, help="0: all up to 100k, a tenth (>= 20) above")
    parser.add_argument("--optimize", action="store_true", help="at the largest size, OPTIMIZE FINAL and again")
    parser.add_argument(
        "--compare-settings",
        default="",
        help="JSON: the lookups again with these query settings, e.g. '{\"a\": 1}', or a list of such: again for each",
    )
    parser.add_argument("--index", default="", help="another index, e.g. \"vector_similarity('hnsw', ...)\"")
    parser.add_argument(
        "--table-settings",
        default=None,
        help="another SETTINGS clause for the table, e.g. 'index_granularity = 1024'; 'none': MergeTree's defaults",
    )
    parser.add_argument(
        "--stream-batches",
        type=int,
        default=0,
        help=f"at the largest size, that many {STREAM_BATCH}-row inserts, then the lookups again (merges running)",
    )
    parser.add_argument("--settle-quiet-s", type=float, default=20, help="seconds with no merge that count as settled")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    started = time.time()
    rows = run(
        parse_sizes(args.sizes),
        queries=args.queries,
        brute_queries=args.brute_queries,
        optimize=args.optimize,
        compare_settings=json.loads(args.compare_settings) if args.compare_settings else None,
        index=args.index,
        table_settings=args.table_settings,
        settle_quiet_s=args.settle_quiet_s,
        stream_batches=args.stream_batches,
    )
    print(f"vector index benchmark: {time.time() - started:.0f} s\n")
    print(format_table(rows))
    if args.json:
        from .common import save

        save(rows, args.json)


if __name__ == "__main__":
    main()
