"""Waking when a rate has room again, rather than at the next poll.

A worker whose claim comes back short sleeps until a wake-up (a notification, a freed slot)
or its jittered poll. Under a rate limit nothing wakes it when the window frees up: a start
leaving the window is no event. Polling blindly, each window's first claims come up to a
poll interval late, and the starts fall short of the rate (50/s for 60 s: 2,900-2,950 of
3,000 in bench/results/2026-12-04-limits.md). So after a short claim the worker asks the
store when a rate it answers to has room again (Store.room_at, in the same trip to the
store) and waits until then if that comes before its next poll, never longer: other queues
still get their polls.

It wakes LEAD before that time: its claim reaches the store before the room time, and the
store books the starts at exactly the room time (limits/claiming.claim_time), so each
window's starts follow the last window's by exactly the period, not by the period plus the
latency of a wake-up, a trip and a claim (which let 50/s for 60 s start 2,833-2,940).

The store answers in its own time (the database's clock on PostgreSQL); the wait is
measured on this host's clock, close to the database's in any sane cluster (NTP). A skew
only moves the wake-up: a claim that comes too early finds no room and asks again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..limits.claiming import BOOK_AHEAD
from ..store.base import Store

# Before the room time: a claim's trip, even on a loaded host (a wake-up, a queue at the
# limit's lock: 50 ms and more seen), reaches the store before it; one that comes later starts
# at its own time, and that window's starts drift by the difference.
LEAD = 0.7 * BOOK_AHEAD

log = logging.getLogger("conveyor.worker")


class Pacing:
    """What one worker knows of when its rates have room again (store time)."""

    def __init__(self, store: Store, queues: Sequence[str] | None) -> None:
        self.store = store
        self.queues = queues
        self.room_at: float | None = None

    async def after_claim(self, got: int, wanted: int, now: float | None,
                          host_now: float) -> None:
        """Called in the worker's trip to the store after a claim of `wanted` got `got`: a
        short claim learns when a rate has room again, unless that is still ahead."""
        if got >= wanted:
            self.room_at = None
        elif self.room_at is None or self.room_at - LEAD <= host_now:
            try:  # never lose the jobs just claimed to this question: the poll stays
                self.room_at = await self.store.room_at(self.queues, now)
            except Exception as exc:
                log.debug("room_at failed, polling: %s", exc)
                self.room_at = None

    def delay(self, poll_delay: float, host_now: float) -> float:
        """How long to wait before the next claim: the poll's delay, or less when a rate
        has room again sooner."""
        if self.room_at is None:
            return poll_delay
        return min(poll_delay, max(self.room_at - LEAD - host_now, 0.0))
