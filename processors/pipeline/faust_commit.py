"""Never commit an offset past a message that is still being processed, and start each assignment afresh.

faust-streaming 0.15.3 works out the offset to commit from the acked offsets of a partition. With agent
concurrency > 1 (the generator and judge run several papers at once), a slow message at the head can still
be in flight while later ones are acked, and Faust then commits past it when it sits exactly one offset
after the last commit (its head-gap check is off by one), or on a group's first commit (no check at all).
A worker killed at that moment never processes the slow message again: a paper is lost. Our crash test
(tests/test_guarantees.py) lost one paper of 50 this way. Upstream: faust-streaming issue #606, open pull
request #707, which caps the commit at the lowest in-flight offset. This module does the same, by hiding
the acked offsets above the lowest in-flight one from Faust's computation until that message is acked.

Second, Faust carries a partition's bookkeeping over a rebalance. It drops a revoked partition's acked and
committed offsets when the revocation starts, but then waits for the messages still in flight (a judge call
can outlast the group's rebalance timeout) and commits their offsets; when that commit fails because the
group has moved on (IllegalGeneration), Faust records the offsets as committed all the same. If the
partition comes back to the same worker and the broker holds no commit for it, nothing replaces that
record: the broker redelivers the message, the worker processes it again, and Faust discards its ack as
below the "committed" offset, so the offset is never committed (the scale-out test's lag of 1). A new
assignment therefore starts from the broker's committed offsets alone: the acked, committed, read and gap
bookkeeping of each assigned partition is forgotten before Faust handles the assignment. (Messages still
unacked are kept and still hold the commit: Faust's revocation waits for them, so none are left by then.)
"""

from __future__ import annotations

import functools

_INSTALLED = "_sciqag_patch"  # set on each method this module wraps


def lowest_in_flight(consumer, tp) -> int | None:
    """The lowest offset of `tp` that a stream has taken and not acked yet."""
    offsets = [m.offset for m in list(consumer._unacked_messages) if m.tp == tp and not m.acked]
    return min(offsets) if offsets else None


def guard_new_offset(new_offset):
    @functools.wraps(new_offset)
    def wrapper(self, tp):
        lowest = lowest_in_flight(self, tp)
        acked = self._acked[tp]
        if lowest is None or not any(offset > lowest for offset in acked):
            return new_offset(self, tp)
        held = [offset for offset in acked if offset > lowest]
        acked[:] = [offset for offset in acked if offset < lowest]
        try:
            return new_offset(self, tp)  # at most `lowest`: only offsets below it are visible
        finally:
            acked.extend(held)
            acked.sort()

    setattr(wrapper, _INSTALLED, True)
    return wrapper


def forget_partitions(consumer, tps) -> None:
    """Drop what Faust's consumer remembers of `tps` from an earlier assignment (the same fields Faust itself
    drops when a revocation starts)."""
    for tp in tps:
        consumer._gap.pop(tp, None)
        consumer._acked.pop(tp, None)
        consumer._acked_index.pop(tp, None)
        consumer._read_offset.pop(tp, None)
        consumer._committed_offset.pop(tp, None)


def fresh_assignment(on_partitions_assigned):
    @functools.wraps(on_partitions_assigned)
    async def wrapper(self, assigned, generation_id: int = 0):
        forget_partitions(self, assigned)
        return await on_partitions_assigned(self, assigned, generation_id)

    setattr(wrapper, _INSTALLED, True)
    return wrapper


def install() -> None:
    """Patch Faust's consumer once per process (idempotent)."""
    from faust.transport.consumer import Consumer

    if not getattr(Consumer._new_offset, _INSTALLED, False):
        Consumer._new_offset = guard_new_offset(Consumer._new_offset)
    if not getattr(Consumer.on_partitions_assigned, _INSTALLED, False):
        Consumer.on_partitions_assigned = fresh_assignment(Consumer.on_partitions_assigned)
