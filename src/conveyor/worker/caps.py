"""How a worker claims under a concurrency cap: its slots go to jobs that run, spread across
workers.

A prefetched job is claimed (state running, its lease held) before a slot of this worker is
free to run it: under a queue's or a task's concurrency limit it holds one of the limit's
slots while it waits. With two workers of 10 slots under a limit of 20 (issue 14), the one
that prefetched claimed all 20, re-claimed each freed slot in its next trip, and the other
found the limit full and slept its poll (16,580 jobs against 3,420). So a worker whose
claims answer to a concurrency cap:

- claims only its free slots, no prefetch (Intake.wanted);
- after a claim that filled them, waits for a job of its own to end (a wake-up) rather than
  going round at once, so that the jobs ending together are settled and replaced in one trip;
- after a claim that came back short because a cap answering to it is full (not because the
  queue is empty: it asks the store, Store.limits, in the same trip), retries after a short
  jittered delay (CAPPED_RETRY) rather than its poll: nothing wakes it when another worker
  frees a slot.

Which caps answer to it is read from the store at most every REFRESH seconds, in the claim
loop's own trip to the store.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence

from ..limits.claiming import REFRESH
from ..limits.model import LimitUsage
from ..store.base import Store

log = logging.getLogger("conveyor.worker")

CAPPED_RETRY = 0.02  # seconds (jittered): the next claim after one a full cap cut short


class Caps:
    """What one worker last read of the concurrency caps its claims answer to."""

    def __init__(self, store: Store, queues: Sequence[str] | None) -> None:
        self.store = store
        self.queues = queues
        self.capped = False  # a concurrency cap answers to this worker's claims
        self.full = False  # the last claim came back short with such a cap full
        self.read_at = float("-inf")  # time.monotonic()

    def _answers_to(self, usage: LimitUsage) -> bool:
        limit = usage.limit
        return limit.concurrency is not None and (
            limit.kind != "queue" or self.queues is None or limit.name in self.queues)

    async def _read(self, now: float | None) -> list[LimitUsage] | None:
        self.read_at = time.monotonic()
        try:
            usages = [u for u in await self.store.limits(now) if self._answers_to(u)]
        except Exception as exc:  # keep the last answer: the claim itself stays exact
            log.debug("could not read the limits: %s", exc)
            return None
        self.capped = bool(usages)
        return usages

    async def before_claim(self, now: float | None) -> None:
        """Read the caps again when stale (in the claim loop's trip to the store)."""
        if time.monotonic() - self.read_at >= REFRESH:
            await self._read(now)

    async def after_claim(self, got: int, wanted: int, now: float | None) -> None:
        """After a claim under a cap: was it cut short by a full cap? (same trip)"""
        self.full = False
        if self.capped and got < wanted:
            usages = await self._read(now)
            self.full = any(u.limit.concurrency is not None
                            and u.running >= u.limit.concurrency for u in usages or ())

    def delay(self, poll_delay: float) -> float:
        """How long to wait before the next claim: a short jittered retry when a full cap
        cut the last claim short, else the poll's delay."""
        if self.full:
            return min(poll_delay, CAPPED_RETRY * random.uniform(0.5, 1.5))
        return poll_delay
