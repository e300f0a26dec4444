"""Corpus-wide near-duplicate questions: the decision made for each scored pair before it is stored.

A pair is a near-duplicate when the question of an earlier *canonical* pair of another paper, of the same kind (open
pairs with open pairs, multiple-choice items with multiple-choice items), has a cosine similarity of at least the
threshold to its question; it then records that pair's qa_id (`duplicate_of`) and the similarity. The rules:

- the order is the time a pair was first stored (`first_stored_at`, then qa_id): the first stored occurrence stays
  canonical, and duplicates point at the canonical pair, never at another duplicate;
- a pair is never compared with its own paper's pairs, so a paper re-delivered or replayed never repeats itself; a
  pair stored before keeps its decision and its embedding (computed once) as long as its question is unchanged;
- within a batch, pairs are decided in batch order against the stored pairs and the batch's earlier pairs;
- several sink members store batches at the same time, each unaware of the other's batch: after its insert each
  member looks again at the neighbours of the pairs it stored as canonical (`recheck`) and applies the same rule to
  what it finds, marking the later of two similar canonical pairs as the duplicate, whichever member stored it. The
  later of the two members' rechecks sees both pairs, so exactly one stays canonical whatever the interleaving.

Embeddings: sciqag.embeddings (all-MiniLM-L6-v2 by default, SCIQAG_EMBEDDINGS_MODEL for another local
sentence-transformers folder) in the table `qa_embeddings` under an HNSW index (schemas/ddl.py).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec
import numpy as np

from sciqag.near_duplicates import question_specifics, question_text_for_embedding, threshold_for

from . import metrics
from .settings import Settings
from .store import Store, now

log = logging.getLogger("sciqag.dedup")

NEIGHBOURS = 10  # nearest stored questions looked at per pair
# the recheck reads what was inserted from this long before the decision's lookups on: an insert's rows get their
# time when it starts and are seen when it ends
RECHECK_MARGIN = timedelta(seconds=30)


class PairView(msgspec.Struct, gc=False, kw_only=True):
    """What the decision reads of a scored pair: the sink has it from the record's check (schemas QAScoredCheck)."""

    paper_id: str
    qa_id: str
    question: str
    kind: str = "open"
    language: str = "en"
    options: list[str] = []

    @property
    def embedded_text(self) -> str:
        """What is embedded: the question, with its options for a multiple-choice item (sciqag/near_duplicates.py)."""
        return question_text_for_embedding(self.question, self.options if self.kind == "mcq" else None)

    @classmethod
    def of(cls, record) -> PairView:
        """From a QAScored record, or its QAScoredCheck."""
        return cls(
            paper_id=record.paper.paper_id,
            qa_id=record.qa_id,
            question=record.question,
            kind=record.kind,
            language=record.language,
            options=list(record.options),
        )


@dataclass
class Decision:
    duplicate_of: str = ""
    similarity: float | None = None  # to the nearest earlier canonical question of another paper; None: not checked
    first_stored_at: datetime | None = None
    reused: bool = False  # the pair was stored before with this question: its earlier decision stands
    vector: np.ndarray | None = None  # the question's embedding, when computed for this batch
    looked_since: datetime | None = None  # the recheck reads what was inserted from then on (server clock)

    def json_fields(self) -> bytes:
        """The decision as the first fields of a JSON object (the sink puts them in front of the record's own)."""
        return _encode(
            {
                "duplicate_of": self.duplicate_of,
                "duplicate_similarity": self.similarity,
                "first_stored_at": self.first_stored_at,
            }
        )[:-1]


_encode = msgspec.json.Encoder().encode
UNCHECKED = Decision()


def with_decision(payload: bytes, decision: Decision) -> bytes:
    """A QAScored record (JSON) with the decision's fields added, for the sink's JSON insert."""
    body = payload.lstrip()
    if not body.startswith(b"{") or decision.first_stored_at is None:
        return payload
    return decision.json_fields() + b"," + body[1:]


class NearDuplicates:
    """Decides, stores the embeddings of, and rechecks a batch's pairs (synchronous: run it in an executor)."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.threshold = settings.duplicate_threshold
        self.model = settings.embeddings_model

    def _embed(self, texts: list[str]) -> np.ndarray:
        from sciqag.embeddings import embed

        return np.asarray(embed(texts, self.model), dtype=np.float32)

    def decide(self, pairs: list[PairView]) -> list[Decision]:
        """One decision per pair, in order; stores the embeddings of the pairs not stored before."""
        if not pairs:
            return []
        started = time.perf_counter()
        looked_since = self.store.server_now() - RECHECK_MARGIN
        stored = self.store.pair_decisions([(p.paper_id, p.qa_id) for p in pairs])
        decisions: list[Decision | None] = [None] * len(pairs)
        new: list[int] = []
        for i, p in enumerate(pairs):
            before = stored.get(p.qa_id)
            if before is not None and before["question"] == p.question and before["duplicate_similarity"] is not None:
                decisions[i] = Decision(
                    before["duplicate_of"], before["duplicate_similarity"], before["first_stored_at"], reused=True
                )
            else:
                new.append(i)
        # a pair seen twice in one batch (a re-delivery inside the batch) is decided once, at its first place
        first_of: dict[str, int] = {}
        for i in list(new):
            if pairs[i].qa_id in first_of:
                new.remove(i)
            else:
                first_of[pairs[i].qa_id] = i
        if new:
            vectors = self._embed([pairs[i].embedded_text for i in new])
            self._decide_new(pairs, new, vectors, decisions)
            for j, i in enumerate(new):
                decisions[i].vector, decisions[i].looked_since = vectors[j], looked_since
            self.store.replace_embeddings(
                [
                    {
                        "qa_id": pairs[i].qa_id,
                        "paper_id": pairs[i].paper_id,
                        "kind": pairs[i].kind,
                        "language": pairs[i].language,
                        "question": pairs[i].question,
                        "model": self.model_label,
                        "embedding": vectors[j],
                        "first_stored_at": decisions[i].first_stored_at,
                    }
                    for j, i in enumerate(new)
                ]
            )
        for i, p in enumerate(pairs):
            if decisions[i] is None:  # the second copy of a pair in the batch
                decisions[i] = decisions[first_of[p.qa_id]]
        for i in new:
            labels = (pairs[i].kind, pairs[i].language)
            metrics.NEAR_DUPLICATE_CHECKED.labels(*labels).inc()
            if decisions[i].duplicate_of:
                metrics.NEAR_DUPLICATES.labels(*labels).inc()
        metrics.NEAR_DUPLICATE_SECONDS.observe(time.perf_counter() - started)
        return decisions

    @property
    def model_label(self) -> str:
        return self.model or "all-MiniLM-L6-v2"

    def _decide_new(self, pairs: list[PairView], new: list[int], vectors: np.ndarray, decisions: list) -> None:
        # the stored neighbours of every new pair (index lookups), then which of them are canonical (one query)
        neighbours = {
            i: self.store.nearest_questions(vectors[j], pairs[i].kind, pairs[i].paper_id, NEIGHBOURS)
            for j, i in enumerate(new)
        }
        candidates = {(n["paper_id"], n["qa_id"]) for ns in neighbours.values() for n in ns}
        states = self.store.pair_decisions(sorted(candidates))
        start = now()
        specifics = [question_specifics(pairs[i].question) for i in new]
        batch_canonical: list[int] = []  # positions in `new` of the batch's pairs decided canonical so far
        for j, i in enumerate(new):
            p = pairs[i]
            stamp = start + timedelta(microseconds=j)  # the batch's order, strictly increasing
            best: tuple[float, str] | None = None  # the most similar earlier canonical question of another paper
            for n in neighbours[i]:
                state = states.get(n["qa_id"])
                # a neighbour counts if its pair is still stored, canonical, stored before this one, and asks about
                # the same numbers and formulas (an embedding blurs CdSe and CdS)
                if state is None or state["duplicate_of"] or state["first_stored_at"] >= stamp:
                    continue
                if best is not None and n["similarity"] <= best[0]:
                    continue
                if question_specifics(n["question"]) == specifics[j]:
                    best = (float(n["similarity"]), n["qa_id"])
            if batch_canonical:  # the batch's earlier canonical pairs, most similar first
                sims = vectors[batch_canonical] @ vectors[j]
                for at in np.argsort(-sims):
                    sim, jj = float(sims[at]), batch_canonical[at]
                    if best is not None and sim <= best[0]:
                        break
                    q = pairs[new[jj]]
                    if q.kind == p.kind and q.paper_id != p.paper_id and specifics[jj] == specifics[j]:
                        best = (sim, q.qa_id)
                        break
            if best is not None and best[0] >= threshold_for(p.language, self.threshold):
                decisions[i] = Decision(best[1], round(best[0], 4), stamp)
            else:
                decisions[i] = Decision("", round(best[0], 4) if best else 0.0, stamp)
                batch_canonical.append(j)

    def recheck(self, pairs: list[PairView], decisions: list[Decision]) -> int:
        """After the batch is stored: its canonical pairs against the embeddings other sink members inserted since
        this batch's lookups (one query, compared here), under the same rule. Returns how many pairs were marked as
        duplicates (this batch's or another member's)."""
        fresh = [(p, d) for p, d in zip(pairs, decisions, strict=True) if d.vector is not None and not d.duplicate_of]
        if not fresh:
            return 0
        mine = {p.qa_id for p, _ in fresh} | {p.qa_id for p in pairs}
        others = [
            r
            for r in self.store.embeddings_inserted_since(
                min(d.looked_since for _, d in fresh), [p.kind for p, _ in fresh]
            )
            if r["qa_id"] not in mine
        ]
        if not others:  # the common case: nobody else stored anything meanwhile
            return 0
        other_vectors = np.asarray([r["embedding"] for r in others], dtype=np.float32)
        marks: dict[tuple[str, str], tuple[str, float]] = {}  # (paper_id, qa_id) -> (canonical qa_id, similarity)
        for p, d in fresh:
            limit, specifics = threshold_for(p.language, self.threshold), question_specifics(p.question)
            sims = other_vectors @ d.vector
            similar = [
                {**r, "similarity": float(sim)}
                for r, sim in zip(others, sims, strict=True)
                if sim >= limit
                and r["kind"] == p.kind
                and r["paper_id"] != p.paper_id
                and question_specifics(r["question"]) == specifics
            ]
            if not similar:
                continue
            states = self.store.pair_decisions([(n["paper_id"], n["qa_id"]) for n in similar])
            order = (d.first_stored_at, p.qa_id)
            canonical = [n for n in similar if (s := states.get(n["qa_id"])) and not s["duplicate_of"]]
            earlier = [n for n in canonical if (states[n["qa_id"]]["first_stored_at"], n["qa_id"]) < order]
            if earlier:
                best = max(earlier, key=lambda n: n["similarity"])
                marks[(p.paper_id, p.qa_id)] = (best["qa_id"], best["similarity"])
                continue
            for n in canonical:  # stored after this one, by another member: they repeat this one
                marks[(n["paper_id"], n["qa_id"])] = (p.qa_id, n["similarity"])
        if marks:
            log.info("near-duplicates: %d pairs stored beside a similar pair marked as duplicates", len(marks))
            self.store.mark_duplicates({k: (dup, round(sim, 4)) for k, (dup, sim) in marks.items()})
        return len(marks)
