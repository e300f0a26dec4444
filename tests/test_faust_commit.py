"""The commit guard against faust-streaming #606, on Faust's own offset computation (Consumer._new_offset)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from faust.transport.consumer import Consumer
from faust.types import TP
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


def _unguarded():
    new_offset = Consumer._new_offset
    return getattr(new_offset, "__wrapped__", new_offset)


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
