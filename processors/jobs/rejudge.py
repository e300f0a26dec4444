"""`sciqag rejudge`: the stored pairs judged again, by another judge, without extracting or generating anything.

Each selected paper's QAGenerated is rebuilt from storage — its pairs from qa_pairs (ids, questions, answers, options,
evidence, grounding), the context the generator saw from paper_contexts, the evidence passages from paper_texts, the
metadata from papers — and put on `sciqag.qa.rejudge`, which only the `rejudge` agent reads (the live judge never sees
it). That agent runs in a worker of this command's own, on the engine the usual settings choose (--model, --llm-url,
--temperature...), and its records (`judge_role = "rejudge"`) reach the sink, which stores them as judgments only:
qa_pairs, the papers and what readers see stay as they were until SCIQAG_PRIMARY_JUDGE names the new judge.

Resumable: pairs this judge_id already has are not sent again; the selection is deterministic (`--sample` picks papers
by a hash of their id), so a re-run after a crash picks up the same papers and finishes them.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from prometheus_client import REGISTRY

from schemas import RACAR_DIMENSIONS, Evidence, PaperRef, QAGenerated, QAPair
from schemas import topics as T
from schemas.ddl import PAPER_CONTEXTS_TABLE, PAPERS_TABLE
from sciqag.judges import in_share, judge_id

from ..errors import ConfigError
from ..local.model import BUNDLED_MODEL_NAME
from ..pipeline.worker import Job, Running, run_worker
from ..progress import Progress
from ..settings import Settings
from ..store import Store, open_store

POLL_S = 1.0


@dataclass
class Selection:
    generated: list[QAGenerated] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (paper_id, why)
    missing: list[str] = field(default_factory=list)  # requested ids the store does not have

    @property
    def pairs(self) -> int:
        return sum(len(g.pairs) for g in self.generated)


def select_papers(
    store: Store,
    *,
    paper_ids: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    sample: float = 1.0,
) -> tuple[list[dict], list[str]]:
    """The scored papers chosen (by id, by when their latest outcome was stored, a share of them), and the ids asked
    for that are not stored."""
    where, params = ["status = 'scored'"], {}
    if paper_ids is not None:
        where.append("paper_id IN {ids:Array(String)}")
        params["ids"] = list(paper_ids)
    if since is not None:
        where.append("updated_at >= {since:DateTime64(3, 'UTC')}")
        params["since"] = since
    if until is not None:
        where.append("updated_at < {until:DateTime64(3, 'UTC')}")
        params["until"] = until
    rows = store.query(
        f"SELECT * FROM `{store.database}`.{PAPERS_TABLE} FINAL WHERE {' AND '.join(where)} ORDER BY paper_id",
        params or None,
    )
    missing = []
    if paper_ids is not None:
        found = {r["paper_id"] for r in rows}
        missing = [p for p in dict.fromkeys(paper_ids) if p not in found]
    if sample < 1.0:
        rows = [r for r in rows if in_share(r["paper_id"], sample)]
    return rows, missing


def rebuild(store: Store, papers: list[dict]) -> Selection:
    """Each paper's generated record as the judge saw it, from what the store keeps."""
    selection = Selection()
    if not papers:
        return selection
    ids = [p["paper_id"] for p in papers]
    pairs_by_paper: dict[str, list[dict]] = {}
    for row in store.qa_rows(ids):
        pairs_by_paper.setdefault(row["paper_id"], []).append(row)
    contexts = {
        r["paper_id"]: r
        for r in store.query(
            f"SELECT paper_id, context, context_strategy FROM `{store.database}`.{PAPER_CONTEXTS_TABLE} FINAL "
            "WHERE paper_id IN {ids:Array(String)}",
            {"ids": ids},
        )
    }
    texts = store.paper_texts(ids)
    for paper in papers:
        pid = paper["paper_id"]
        rows = pairs_by_paper.get(pid, [])
        if not rows:
            selection.skipped.append((pid, "no stored pairs"))
            continue
        if pid not in contexts:
            selection.skipped.append((pid, "the context the generator saw is not stored (stored before issue 18)"))
            continue
        text = texts.get(pid, {}).get("text", "")
        ref = PaperRef(
            paper_id=pid,
            doi=paper["doi"],
            title=paper["title"],
            journal=paper["journal"],
            categories=list(paper["categories"]),
            source_uri=paper["source_uri"],
            source_feed=paper["source_feed"],
        )
        selection.generated.append(
            QAGenerated(
                paper=ref,
                language=rows[0]["language"],
                keywords=list(rows[0]["keywords"]),
                pairs=[_pair(r, text) for r in rows],
                context=contexts[pid]["context"],
                context_strategy=contexts[pid]["context_strategy"],
                model=rows[0]["generator_model"],
                prompt_version=rows[0]["prompt_version"],
            )
        )
    return selection


def _pair(row: dict, text: str) -> QAPair:
    evidence = []
    for e in row["evidence"]:
        located = bool(e["located"])
        passage = text[e["start"] : e["end"]] if located and text else ""
        evidence.append(
            Evidence(
                quote=e["quote"], start=e["start"], end=e["end"], ratio=e["ratio"], located=located, passage=passage
            )
        )
    return QAPair(
        qa_id=row["qa_id"],
        index=row["pair_index"],
        question=row["question"],
        answer=row["answer"],
        kind=row["kind"],
        options=list(row["options"]),
        correct_option=row["correct_option"],
        evidence=evidence,
        grounding=row["grounding"],
    )


def without_judged(selection: Selection, judged: set[str]) -> Selection:
    """The selection less the pairs this judge already has (a paper with none left is dropped)."""
    import msgspec

    left = Selection(skipped=selection.skipped, missing=selection.missing)
    for g in selection.generated:
        pairs = [p for p in g.pairs if p.qa_id not in judged]
        if pairs:
            left.generated.append(msgspec.structs.replace(g, pairs=pairs))
    return left


def the_judge_id(settings: Settings, model_name: str) -> str:
    """The id the rejudge agent's records will carry (processors/pipeline/judge.py Judge.judge_id)."""
    return judge_id(
        model_name,
        policy=settings.acceptance_policy,
        temperature=settings.temperature,
        min_grounding=settings.min_grounding,
    )


@dataclass
class Outcome:
    judge_id: str = ""
    selected_pairs: int = 0
    already: int = 0  # pairs this judge had before this run
    sent: int = 0
    stored: int = 0
    failed: int = 0
    papers: int = 0
    llm_requests: dict[str, float] = field(default_factory=dict)  # this process's LLM requests by role


def _failed_here() -> int:
    return int(REGISTRY.get_sample_value("sciqag_judge_pairs_total", {"role": "rejudge", "outcome": "failed"}) or 0)


def _requests_by_role() -> dict[str, float]:
    found = {}
    for family in REGISTRY.collect():
        if family.name == "sciqag_llm_request_duration_seconds":
            for s in family.samples:
                if s.name.endswith("_count"):
                    found[s.labels["role"]] = s.value
    return found


def make_rejudge_job(selection_args: dict, outcome: Outcome, *, timeout_s: float) -> Job:
    async def job(worker: Running) -> int:
        loop = asyncio.get_running_loop()
        store = await worker.store()
        engine = await worker.llm()
        outcome.judge_id = the_judge_id(worker.settings, engine.model_name)
        papers, _ = await loop.run_in_executor(None, lambda: select_papers(store, **selection_args))
        selection = await loop.run_in_executor(None, rebuild, store, papers)
        ids = [g.paper.paper_id for g in selection.generated]
        judged = await loop.run_in_executor(None, store.judged_qa_ids, outcome.judge_id, ids)
        todo = without_judged(selection, judged)
        outcome.selected_pairs, outcome.papers = selection.pairs, len(selection.generated)
        outcome.already = selection.pairs - todo.pairs
        for pid, why in selection.skipped:
            print(f"skipped {pid}: {why}", file=sys.stderr)
        print(
            f"judge {outcome.judge_id}: {todo.pairs} pairs of {len(todo.generated)} papers to judge "
            f"({outcome.already} already judged)",
            file=sys.stderr,
        )
        if not todo.generated:
            return 0
        wanted = {p.qa_id for g in todo.generated for p in g.pairs}
        failed_before = _failed_here()
        for g in todo.generated:
            await worker.send(T.REJUDGE, g.paper.paper_id, g)
        outcome.sent = len(wanted)
        progress = Progress(len(wanted), "pairs")
        deadline = time.monotonic() + timeout_s
        while True:
            await asyncio.sleep(POLL_S)
            have = await loop.run_in_executor(None, store.judged_qa_ids, outcome.judge_id, ids)
            outcome.stored = len(wanted & have)
            outcome.failed = _failed_here() - failed_before
            progress.update(
                min(len(wanted), outcome.stored + outcome.failed), f"{outcome.stored} stored, {outcome.failed} failed"
            )
            if outcome.stored + outcome.failed >= len(wanted):
                break
            if (failure := worker.llm_failure()) is not None:
                progress.close()
                print(f"the judge's engine is gone: {failure}", file=sys.stderr)
                return 1
            if time.monotonic() > deadline:
                progress.close()
                print(
                    f"timed out after {timeout_s:.0f} s; run again to finish (judged pairs are kept)", file=sys.stderr
                )
                return 1
        progress.close()
        outcome.llm_requests = _requests_by_role()
        return 0

    return job


def summary(store: Store, judge: str, paper_ids: list[str]) -> str:
    """Pairs re-judged, per-dimension mean of the live judge's scores against this judge's, acceptance changes."""
    old = {r["qa_id"]: r for r in store.qa_rows(paper_ids)}
    new = {r["qa_id"]: r for r in store.qa_rows(paper_ids, judge=judge)}
    both = sorted(set(old) & set(new))
    lines = [f"rejudge summary: judge {judge}, {len(both)} pairs judged by it of {len(old)} stored", ""]
    if not both:
        return "\n".join(lines)
    lines.append(f"{'dimension':<16}{'mean live':>10}{'mean new':>10}{'new - live':>12}")
    for d in RACAR_DIMENSIONS:
        mo = sum(old[q][d] for q in both) / len(both)
        mn = sum(new[q][d] for q in both) / len(both)
        lines.append(f"{d:<16}{mo:>10.3f}{mn:>10.3f}{mn - mo:>+12.3f}")
    gained = sum(1 for q in both if new[q]["accepted"] and not old[q]["accepted"])
    lost = sum(1 for q in both if old[q]["accepted"] and not new[q]["accepted"])
    acc_old = sum(1 for q in both if old[q]["accepted"])
    acc_new = sum(1 for q in both if new[q]["accepted"])
    lines += [
        "",
        f"accepted: {acc_old} by the live judge, {acc_new} by {judge}; {gained} newly accepted, {lost} no longer",
    ]
    return "\n".join(lines)


def expected_model_name(settings: Settings) -> str:
    """The model name the engine will report, where it can be known without starting it (--dry-run)."""
    if settings.model:
        return settings.model.rstrip("/").rsplit("/", 1)[-1] if not settings.llm_url else settings.model
    return "" if settings.llm_url else BUNDLED_MODEL_NAME


def rejudge(
    settings: Settings,
    *,
    paper_ids: list[str],
    since: datetime | None,
    until: datetime | None,
    every: bool,
    sample: float,
    dry_run: bool,
    timeout_s: float,
    summary_json: Path | None = None,
) -> int:
    """`sciqag rejudge`. Returns the exit code: 1 when a requested paper is not stored or pairs were left unjudged."""
    if not (paper_ids or since or until or every):
        raise ConfigError("choose the papers: --paper-id/--ids-file, --since/--until, or --all")
    if not 0 < sample <= 1:
        raise ConfigError("--sample is a fraction of the papers, in (0, 1]")
    selection_args = dict(paper_ids=paper_ids or None, since=since, until=until, sample=sample)
    if dry_run:
        with open_store(settings) as store:
            papers, missing = select_papers(store, **selection_args)
            selection = rebuild(store, papers)
            name = expected_model_name(settings)
            jid = the_judge_id(settings, name) if name else ""
            judged = store.judged_qa_ids(jid, [g.paper.paper_id for g in selection.generated]) if jid else set()
        for pid, why in selection.skipped:
            print(f"skipped {pid}: {why}", file=sys.stderr)
        for pid in missing:
            print(f"not found: {pid} is not a scored paper in the papers table", file=sys.stderr)
        for g in selection.generated:
            left = sum(1 for p in g.pairs if p.qa_id not in judged)
            print(f"{g.paper.paper_id}\t{len(g.pairs)} pairs\t{left} to judge")
        left = without_judged(selection, judged).pairs
        print(
            f"would re-judge {left} of {selection.pairs} pairs of {len(selection.generated)} papers as judge "
            f"{jid or '(known once the server answers)'}",
            file=sys.stderr,
        )
        return 1 if missing else 0
    outcome = Outcome()
    code = run_worker(
        settings.with_overrides(agents=["rejudge", "sink"]),
        make_rejudge_job(selection_args, outcome, timeout_s=timeout_s),
    )
    if outcome.judge_id:
        with open_store(settings) as store:
            papers, missing = select_papers(store, **selection_args)
            print(summary(store, outcome.judge_id, [p["paper_id"] for p in papers]))
        for pid in missing:
            print(f"not found: {pid} is not a scored paper in the papers table", file=sys.stderr)
        print(
            f"\n{outcome.stored} pairs judged and stored now, {outcome.already} judged before, {outcome.failed} failed"
        )
        if missing:
            code = code or 1
    if summary_json is not None:
        summary_json.write_text(json.dumps(outcome.__dict__, indent=2) + "\n")
    return code
