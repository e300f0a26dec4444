"""Events as Faust hands them to the agents, records as aiokafka hands them to the sink, and topics that record
what a stage sends."""

from __future__ import annotations

from dataclasses import dataclass, field

from processors.pipeline.context import Topics
from schemas import DimensionScore, PaperRef, QAScored, Racar
from schemas import topics as T
from sciqag.ids import qa_id_for


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes


@dataclass
class Event:
    value: bytes
    message: Message


@dataclass
class Record:
    """The fields of an aiokafka ConsumerRecord the sink reads."""

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes


@dataclass
class RecordingTopic:
    name: str
    sent: list[tuple[bytes, bytes]] = field(default_factory=list)

    async def send(self, *, key: bytes, value: bytes) -> None:
        self.sent.append((key, value))


def stage_topics() -> Topics:
    return Topics(
        **{
            role: RecordingTopic(name)
            for role, name in [
                ("papers", T.PAPERS),
                ("extracted", T.EXTRACTED),
                ("generated", T.GENERATED),
                ("scored", T.SCORED),
                ("dlq", T.DLQ),
            ]
        }
    )


def scored_run(paper_id: str, indexes: list[int], *, announce_ids: bool = True) -> list[QAScored]:
    """One run of a paper as the judge sends it: a record per kept pair, the last one completing it."""
    ids = [qa_id_for(paper_id, i, "v-test") for i in indexes]
    score = DimensionScore(score=2, reason="ok")
    racar = Racar(relevance=score, agnosticism=score, completeness=score, accuracy=score, reasonableness=score)
    return [
        QAScored(
            paper=PaperRef(paper_id=paper_id, source_uri="file:///p.pdf"),
            qa_id=qa_id,
            pair_index=index,
            sequence=seq,
            pair_count=len(ids),
            question=f"question {index}?",
            answer=f"answer {index}.",
            racar=racar,
            prompt_version="v-test",
            paper_qa_ids=ids if announce_ids and seq == len(ids) - 1 else [],
        )
        for seq, (index, qa_id) in enumerate(zip(indexes, ids))
    ]


async def sink_batch(pipeline, records: list) -> None:
    """One batch through the sink as its consumer runs it: prepared, then stored."""
    await pipeline.sink.store(await pipeline.sink.prepare(records))
