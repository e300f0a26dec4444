"""Never commit an offset past a message that is still being processed.

faust-streaming 0.15.3 works out the offset to commit from the acked offsets of a partition. With agent
concurrency > 1 (the generator and judge run several papers at once), a slow message at the head can still
be in flight while later ones are acked, and Faust then commits past it when it sits exactly one offset
after the last commit (its head-gap check is off by one), or on a group's first commit (no check at all).
A worker killed at that moment never processes the slow message again: a paper is lost. Our crash test
(tests/test_guarantees.py) lost one paper of 50 this way. Upstream: faust-streaming issue #606, open pull
request #707, which caps the commit at the lowest in-flight offset. This module does the same, by hiding
the acked offsets above the lowest in-flight one from Faust's computation until that message is acked.
"""

from __future__ import annotations

import functools

_INSTALLED = "_sciqag_in_flight_guard"


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


def install() -> None:
    """Patch Faust's consumer once per process (idempotent)."""
    from faust.transport.consumer import Consumer

    if not getattr(Consumer._new_offset, _INSTALLED, False):
        Consumer._new_offset = guard_new_offset(Consumer._new_offset)
