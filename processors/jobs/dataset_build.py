"""`sciqag dataset build`: a SciQAG-24D-style benchmark from the stored open pairs (sciqag/splits.py decides the
splits), each file written whole under a temporary name and renamed; a manifest lets an interrupted build keep the
files it finished."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from sciqag.splits import SHAPES, Split, dataset_card, remove_contamination, split_pairs
from sciqag.verdicts import apply_verdicts, rejected_by_reviewers

from ..settings import Settings
from ..store import Store, open_store


def question_vectors(store: Store, rows: list[dict], model: str) -> dict[str, np.ndarray]:
    """qa_id -> the question's embedding: as stored by the sink (qa_embeddings), computed for pairs without one (and
    for pairs whose question a reviewer edited)."""
    stored = store.embeddings_of([(r["paper_id"], r["qa_id"]) for r in rows])
    vectors = {qa_id: np.asarray(v, dtype=np.float32) for qa_id, v in stored.items()}
    missing = [r for r in rows if r["qa_id"] not in vectors or r.get("edited")]  # a reviewer's edit: its own text
    if missing:
        from sciqag.embeddings import embed

        for r, v in zip(missing, embed([r["question"] for r in missing], model), strict=True):
            vectors[r["qa_id"]] = v
    return vectors


def build_from_store(
    settings: Settings,
    out: Path,
    *,
    per_category: int,
    seed: int,
    policy: str,
    min_grounding: float = 0.0,
    with_duplicates: bool = False,
) -> int:
    """Read the stored pairs, write the splits and print what went where; returns the exit code.

    min_grounding > 0 keeps only pairs whose located evidence covers that share of the answer (pairs without
    quotes are left out too). Near-duplicates of other papers' pairs are left out unless with_duplicates; test
    pairs whose question near-duplicates a train question are removed in any case."""
    with open_store(settings) as store:
        rows = store.qa_rows(judge=settings.primary_judge)  # the primary judge's scores, or --judge's
        verdicts = store.latest_verdicts()  # reviewers' verdicts win over the judge's (sciqag/verdicts.py)
        rejected = rejected_by_reviewers(rows, verdicts)
        rows = apply_verdicts(rows, verdicts)
        open_rows = [r for r in rows if r.get("kind", "open") == "open"]
        vectors = question_vectors(store, open_rows, settings.embeddings_model) if open_rows else {}
    if not rows:
        raise ValueError(f"no pairs stored under {settings.data_dir} (run the pipeline or `dataset import-sciqag`)")
    if rejected:
        print(f"{rejected} pairs rejected by reviewers left out", file=sys.stderr)
    duplicates = 0
    if not with_duplicates:
        duplicates = sum(1 for r in rows if r["duplicate_of"])
        rows = [r for r in rows if not r["duplicate_of"]]
        if duplicates:
            print(f"{duplicates} near-duplicates of other papers' pairs left out", file=sys.stderr)
    if min_grounding > 0:
        kept = [r for r in rows if r.get("grounding") is not None and r["grounding"] >= min_grounding]
        print(f"--min-grounding {min_grounding}: {len(kept)} of {len(rows)} pairs kept", file=sys.stderr)
        rows = kept
    split, written = build_dataset(
        rows,
        out,
        per_category=per_category,
        seed=seed,
        policy=policy,
        vectors=vectors,
        threshold=settings.duplicate_threshold,
        duplicates_left_out=duplicates,
        rejected_by_reviewers=rejected,
        source=f"ClickHouse database '{settings.clickhouse_database}'"
        + (f", pairs with grounding >= {min_grounding}" if min_grounding > 0 else ""),
    )
    for cat, by_split in split.counts().items():
        tp, tq = by_split.get("test", (0, 0))
        rp, rq = by_split.get("train", (0, 0))
        print(f"{cat}: test {tp} papers / {tq} pairs, train {rp} papers / {rq} pairs")
    print(
        f"test {len(split.papers('test'))} papers / {len(split.test)} pairs; train {len(split.papers('train'))} "
        f"papers / {len(split.train)} pairs; {len(written)} files written, card {out / 'README.md'}"
    )
    if split.contamination:
        print(
            f"{len(split.contamination)} test pairs removed: their question near-duplicates a train question "
            f"(cosine >= {settings.duplicate_threshold})"
        )
    return 0


def _fingerprint(rows: list[dict], **params) -> str:
    h = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    for r in sorted(rows, key=lambda r: (r["paper_id"], r["qa_id"])):
        review = r.get("review") or {}
        h.update(f"{r['qa_id']}|{r['inserted_at']}|{review.get('decided_at', '')}|".encode())
    return h.hexdigest()


def _write_atomically(path: Path, write) -> str:
    tmp = path.with_name(path.name + ".partial")
    write(tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    os.replace(tmp, path)
    return digest


def _write_jsonl(records: list[dict]):
    def write(path: Path) -> None:
        with path.open("w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")

    return write


def _write_parquet(records: list[dict], shape: str):
    def write(path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        probe = SHAPES[shape]({"question": "", "answer": "", "paper_id": ""})
        types = {c: pa.bool_() if isinstance(v, bool) else pa.string() for c, v in probe.items()}
        table = pa.table({c: pa.array([r[c] for r in records], type=t) for c, t in types.items()})
        pq.write_table(table, path)

    return write


def build_dataset(
    rows: list[dict],
    out: Path,
    *,
    per_category: int,
    seed: int,
    policy: str,
    source: str,
    vectors: dict[str, np.ndarray] | None = None,
    threshold: float = 0.0,
    duplicates_left_out: int = 0,
    rejected_by_reviewers: int = 0,
) -> tuple[Split, list[str]]:
    """Write the splits; returns the split and the files written (files kept from an interrupted run are not).
    `vectors`: each open pair's question embedding, for the train/test contamination check (None: not checked)."""
    split = split_pairs(rows, per_category=per_category, seed=seed, policy=policy)
    split.duplicates_left_out = duplicates_left_out
    split.rejected_by_reviewers = rejected_by_reviewers
    if vectors is not None:
        remove_contamination(split, vectors, threshold)
    fingerprint = _fingerprint(rows, per_category=per_category, seed=seed, policy=policy, threshold=threshold)
    manifest_path = out / ".build-manifest.json"
    manifest = {}
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("fingerprint") != fingerprint:
            manifest = {}
    done: dict[str, str] = manifest.get("files", {})
    written: list[str] = []

    def save_manifest() -> None:
        manifest_path.write_text(json.dumps({"fingerprint": fingerprint, "files": done}, indent=1))

    out.mkdir(parents=True, exist_ok=True)
    for name in ("test", "train"):
        (out / name).mkdir(exist_ok=True)
        split_rows = getattr(split, name)
        for shape, convert in SHAPES.items():
            records = [convert(r) for r in split_rows]
            for ext, writer in (("jsonl", _write_jsonl(records)), ("parquet", _write_parquet(records, shape))):
                rel = f"{name}/{shape}.{ext}"
                target = out / rel
                if rel in done and target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == done[rel]:
                    continue
                done[rel] = _write_atomically(target, writer)
                save_manifest()
                written.append(rel)
                print(f"  wrote {rel} ({len(records)} rows)", file=sys.stderr, flush=True)
    models = {
        "generator": sorted({r["generator_model"] for r in rows if r.get("generator_model")}),
        "judge": sorted({r["judge_model"] for r in rows if r.get("judge_model")}),
    }
    card = dataset_card(
        split,
        seed=seed,
        per_category=per_category,
        policy=policy,
        models=models,
        built_at=datetime.now(UTC).strftime("%Y-%m-%d"),
        source=source,
    )
    done["README.md"] = _write_atomically(out / "README.md", lambda p: p.write_text(card, encoding="utf-8"))
    save_manifest()
    return split, written
