"""`sciqag dataset`: import SciQAG's released pairs as if the stream had produced them, and build benchmarks.

import-sciqag puts each release record (full text + the authors' QA pairs) on
`sciqag.qa.generated` as a QAGenerated record, so the real judge and sink agents
score and store it exactly as they do streamed papers. With --assume-score the
judge is skipped and every dimension is recorded as that score (for releases
that were already judged, e.g. SciQAG-24D's all-3 test split); such rows say so
in judge_model.

build reads the stored open pairs and writes the splits (sciqag/dataset.py decides
them), each file written whole under a temporary name and renamed; a manifest
lets an interrupted build keep the files it finished.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from schemas import DimensionScore, PaperRef, QAGenerated, QAPair, QAScored, Racar, RACAR_DIMENSIONS, encode
from sciqag.context import fit_text
from sciqag.dataset import SHAPES, Split, dataset_card, split_pairs
from sciqag.ids import normalize_doi, paper_id_for, qa_id_for
from sciqag.quality import numeric_support
from sciqag.racar import passes

from .runner import Progress, wait_for_papers
from .settings import Settings
from .stages import PROMPT_OVERHEAD_TOKENS, Stages, paper_row_scored, qa_row
from .store import Store

RELEASE_PROMPT_VERSION = "sciqag-release"
RELEASE_GENERATOR = "SciQAG authors (release)"
RELEASE_FEED = "sciqag-release"


@dataclass
class ReleasePaper:
    ref: PaperRef
    text: str
    keywords: list[str]
    pairs: list[tuple[str, str]]


def read_release(path: Path, limit: int = 0) -> list[ReleasePaper]:
    """SciQAG release records: {doi, journal, keywords, text, qa: [{q, a}]} one per line."""
    papers: list[ReleasePaper] = []
    seen: set[str] = set()
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            text = raw["text"]
            pairs = [(str(p["q"]).strip(), str(p["a"]).strip()) for p in raw["qa"]]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{lineno}: not a SciQAG record (needs text and qa [{{q, a}}]): {exc}") from exc
        doi = normalize_doi(raw.get("doi", ""))
        pid = paper_id_for(doi=doi, content=text.encode())
        if pid in seen:
            continue
        seen.add(pid)
        journal = str(raw.get("journal") or "")
        ref = PaperRef(paper_id=pid, doi=doi, title=str(raw.get("title") or ""), journal=journal,
                       categories=[journal] if journal else [], source_uri=f"{path.name}#{lineno}",
                       source_feed=RELEASE_FEED)
        papers.append(ReleasePaper(ref, text, [str(k) for k in raw.get("keywords") or []],
                                   [(q, a) for q, a in pairs if q and a]))
        if limit and len(papers) >= limit:
            break
    return papers


def release_generated(paper: ReleasePaper, context: str, strategy: str) -> QAGenerated:
    pid = paper.ref.paper_id
    return QAGenerated(
        paper=paper.ref, language="en", keywords=paper.keywords,
        pairs=[QAPair(qa_id=qa_id_for(pid, i, RELEASE_PROMPT_VERSION), index=i, question=q, answer=a)
               for i, (q, a) in enumerate(paper.pairs)],
        context=context, context_strategy=strategy, model=RELEASE_GENERATOR, prompt_version=RELEASE_PROMPT_VERSION,
    )


def assumed_scores(generated: QAGenerated, score: int, policy: str) -> list[QAScored]:
    reason = f"not judged here: imported with --assume-score {score}"
    racar = Racar(**{d: DimensionScore(score=score, reason=reason) for d in RACAR_DIMENSIONS})
    accepted = passes({d: score for d in RACAR_DIMENSIONS}, policy)
    return [
        QAScored(paper=generated.paper, qa_id=p.qa_id, pair_index=p.index, sequence=i, pair_count=len(generated.pairs),
                 language=generated.language, keywords=generated.keywords, question=p.question, answer=p.answer,
                 racar=racar, numeric_support=numeric_support(p.answer, generated.context), accepted=accepted,
                 generator_model=generated.model, judge_model=f"assumed:{score}",
                 prompt_version=generated.prompt_version)
        for i, p in enumerate(generated.pairs)
    ]


def _already_imported(store: Store, papers: list[ReleasePaper]) -> set[str]:
    status = store.paper_status(p.ref.paper_id for p in papers)
    return {pid for pid, s in status.items() if s["status"] == "scored"}


def import_assumed(settings: Settings, papers: list[ReleasePaper], score: int, *, force: bool) -> tuple[int, int, int]:
    """Store the pairs with assumed scores; returns (papers stored, pairs stored, papers skipped as already stored)."""
    store = Store(settings)
    try:
        store.ensure_schema()
        skip = set() if force else _already_imported(store, papers)
        todo = [p for p in papers if p.ref.paper_id not in skip]
        progress = Progress(len(todo))
        started = time.monotonic()
        for done, paper in enumerate(todo, 1):
            scored = assumed_scores(release_generated(paper, paper.text, "full"), score, settings.acceptance_policy)
            if scored:
                store.insert_qa([qa_row(r) for r in scored])
                store.insert_papers([paper_row_scored(scored[-1])])
            progress.update(done, 0, time.monotonic() - started)
        progress.close()
        return len(todo), sum(len(p.pairs) for p in todo), len(skip)
    finally:
        store.close()


def make_import_job(papers: list[ReleasePaper], counts: dict, *, force: bool, timeout_s: float):
    """A worker job (judge and sink agents): publish the records to the judge's topic and wait for them."""
    async def job(app, stages: Stages) -> int:
        loop = asyncio.get_running_loop()
        store = await loop.run_in_executor(None, stages.store)
        skip = set() if force else await loop.run_in_executor(None, _already_imported, store, papers)
        todo = [p for p in papers if p.ref.paper_id not in skip]
        counts.update(skipped=len(skip), papers=len(todo))
        if not todo:
            return 0
        engine = await stages.engine.get()
        s = stages.settings
        # the judge sees the paper as the generator would have: fitted to the window, never cut mid-sentence
        budget = s.max_context_tokens or (engine.max_model_len - s.judge_max_tokens - PROMPT_OVERHEAD_TOKENS)
        submitted, started = time.time(), time.monotonic()
        for paper in todo:
            context, strategy = fit_text(paper.text, [], budget, engine.count_tokens)
            record = release_generated(paper, context, strategy)
            await stages.topics.generated.send(key=paper.ref.paper_id.encode(), value=encode(record))
        print(f"sent {len(todo)} papers to the judge; waiting for them to be scored", file=sys.stderr)
        status, code = await wait_for_papers(stages, store, [p.ref.paper_id for p in todo], submitted=submitted,
                                             started=started, timeout_s=timeout_s)
        counts["scored"] = sum(1 for v in status.values() if v["status"] == "scored")
        counts["failed"] = sum(1 for v in status.values() if v["status"] == "failed")
        return code

    return job


# -- build ---------------------------------------------------------------------------------------

def _fingerprint(rows: list[dict], **params) -> str:
    h = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    for r in sorted(rows, key=lambda r: (r["paper_id"], r["qa_id"])):
        h.update(f"{r['qa_id']}|{r['inserted_at']}|".encode())
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

        columns = list(SHAPES[shape]({"question": "", "answer": "", "paper_id": ""}))
        table = pa.table({c: pa.array([r[c] for r in records], type=pa.string()) for c in columns})
        pq.write_table(table, path)
    return write


def build_dataset(rows: list[dict], out: Path, *, per_category: int, seed: int, policy: str,
                  source: str) -> tuple[Split, list[str]]:
    """Write the splits; returns the split and the files written (files kept from an interrupted run are not)."""
    split = split_pairs(rows, per_category=per_category, seed=seed, policy=policy)
    fingerprint = _fingerprint(rows, per_category=per_category, seed=seed, policy=policy)
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
    models = {"generator": sorted({r["generator_model"] for r in rows if r.get("generator_model")}),
              "judge": sorted({r["judge_model"] for r in rows if r.get("judge_model")})}
    card = dataset_card(split, seed=seed, per_category=per_category, policy=policy, models=models,
                        built_at=datetime.now(timezone.utc).strftime("%Y-%m-%d"), source=source)
    done["README.md"] = _write_atomically(out / "README.md", lambda p: p.write_text(card, encoding="utf-8"))
    save_manifest()
    return split, written
