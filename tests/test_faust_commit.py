"""The commit guard against faust-streaming #606, on Faust's own offset computation (Consumer._new_offset), and the
fresh start of each assignment, on Faust's real consumer through a rebalance."""

from __future__ import annotations

import asyncio
import types
from collections import defaultdict
from dataclasses import dataclass, field

import faust
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP, Message
from intervaltree import IntervalTree

from processors.pipeline.faust_commit import guard_new_offset, install

TP0 = TP("sciqag.extracted", 0)


@dataclass(eq=False)
class InFlight:
    offset: int
    tp: TP = TP0
    acked: bool = False


@dataclass
class ConsumerState:
    """The attributes Consumer._new_offset reads and updates."""

    committed: int | None
    acked: list[int]
    in_flight: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._committed_offset = defaultdict(lambda: None, {TP0: self.committed})
        self._acked = defaultdict(list, {TP0: list(self.acked)})
        self._acked_index = defaultdict(set, {TP0: set(self.acked)})
        self._gap = defaultdict(IntervalTree)
        self._messages = [InFlight(o) for o in self.in_flight]  # kept alive: the real set is weak
        self._unacked_messages = set(self._messages)


def _unpatched(method):
    """Faust's own method under our patch (Faust decorates some of its methods with functools.wraps too)."""
    return method.__wrapped__ if getattr(method, "_sciqag_patch", False) else method


def _unguarded():
    return _unpatched(Consumer._new_offset)


def test_faust_alone_commits_past_a_message_still_in_flight():
    # the upstream bug this guard exists for; when Faust fixes it, this fails and the guard can go
    assert _unguarded()(ConsumerState(committed=10, acked=[11, 12, 13], in_flight=[10]), TP0) == 14
    assert _unguarded()(ConsumerState(committed=None, acked=[1, 2], in_flight=[0]), TP0) == 3


def test_the_guard_never_commits_past_the_lowest_message_in_flight():
    new_offset = guard_new_offset(_unguarded())
    state = ConsumerState(committed=10, acked=[11, 12, 13], in_flight=[10])
    assert new_offset(state, TP0) is None
    assert state._acked[TP0] == [11, 12, 13]  # kept for later
    state._messages[0].acked = True  # the slow one finishes
    state._acked[TP0].insert(0, 10)
    assert new_offset(state, TP0) == 14

    assert new_offset(ConsumerState(committed=None, acked=[1, 2], in_flight=[0]), TP0) is None
    assert new_offset(ConsumerState(committed=None, acked=[0, 1, 2, 3, 4, 6, 7], in_flight=[5]), TP0) == 5
    assert new_offset(ConsumerState(committed=20, acked=[20, 21, 22]), TP0) == 23  # nothing in flight: as before
    other = ConsumerState(committed=10, acked=[10, 11])
    other._unacked_messages = {InFlight(3, tp=TP("sciqag.extracted", 1))}  # another partition does not hold it
    assert new_offset(other, TP0) == 12


def test_install_is_idempotent_and_applies_to_the_consumer():
    install()
    once = Consumer._new_offset
    install()
    assert Consumer._new_offset is once
    assert Consumer._new_offset(ConsumerState(committed=10, acked=[11, 12], in_flight=[10]), TP0) is None


async def _rebalance_after_a_failed_commit(patched: bool) -> tuple[bool, list]:
    """A worker's rebalance as the real-engine scale-out test saw it (faust-streaming 0.15.3 on aiokafka): offset 0
    of a partition the broker holds no commit for is in flight when the revocation starts; Faust's revocation waits
    for it, it is acked, and the commit fails because the group has moved on (IllegalGeneration: aiokafka's "already
    rebalanced"). The worker rejoins, gets the partition back, seeks to the broker's committed offset (none), and
    the message comes again and is processed again. Returns whether Faust took that second ack, and every commit
    sent (offsets, whether the broker took it)."""
    app = faust.App("sciqag-commit-test", broker="kafka://127.0.0.1:1", store="memory://", web_enabled=False)
    app.topics.add(app.topic(TP0.topic))  # a stream's topic: acks enabled
    await app.topics._update_indices()
    consumer = app.consumer  # Faust's aiokafka consumer, not started: the broker side is replaced below
    if not patched:
        consumer.on_partitions_assigned = types.MethodType(_unpatched(Consumer.on_partitions_assigned), consumer)
    broker_takes_commits = False
    commits = []

    async def commit(offsets):
        commits.append((dict(offsets), broker_takes_commits))
        return broker_takes_commits

    async def committed_on_the_broker():
        return {TP0: None}  # aiokafka's seek_to_committed: no commit yet

    class Producer:
        async def flush(self) -> None:
            pass

    def message() -> Message:
        return Message(TP0.topic, TP0.partition, 0, 0.0, 0, None, b"paper", b"record", None)

    in_flight = message()

    async def app_revoked(revoked):  # app._on_partitions_revoked: wait for the streams, commit
        consumer.ack(in_flight)
        await consumer.commit()

    async def app_assigned(assigned, generation_id=0):  # app._on_partitions_assigned, down to the recovery's seek
        await consumer.perform_seek()

    app._producer = Producer()
    consumer._commit = commit
    consumer.assignment = lambda: {TP0}
    consumer.seek_to_committed = committed_on_the_broker
    consumer._on_partitions_revoked = app_revoked
    consumer._on_partitions_assigned = app_assigned

    consumer.track_message(in_flight)
    await consumer.on_partitions_revoked({TP0})
    await consumer.on_partitions_assigned({TP0})
    broker_takes_commits = True
    again = message()  # redelivered from the broker's committed offset
    consumer.track_message(again)
    taken = consumer.ack(again)
    await consumer.commit()
    return taken, commits


def test_faust_alone_never_commits_a_message_redelivered_after_a_failed_commit_on_revoke():
    # the upstream bug the fresh assignment exists for; when Faust fixes it, this fails and that patch can go
    install()
    taken, commits = asyncio.run(_rebalance_after_a_failed_commit(patched=False))
    assert not taken
    assert commits == [({TP0: 1}, False)]  # the lag stays at 1


def test_each_assignment_starts_from_the_brokers_commits():
    install()
    taken, commits = asyncio.run(_rebalance_after_a_failed_commit(patched=True))
    assert taken
    assert commits == [({TP0: 1}, False), ({TP0: 1}, True)]
    once = Consumer.on_partitions_assigned  # on the class every transport's consumer inherits it from
    install()
    assert Consumer.on_partitions_assigned is once
    assert AIOKafkaConsumer.on_partitions_assigned is once
