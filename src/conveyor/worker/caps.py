"""A worker whose claim a full concurrency cap cut short retries soon, not at its next poll.

Under a queue's or a task's concurrency limit, nothing wakes a worker when another worker
frees one of the limit's slots: a settle is no event it hears. Waiting its poll (about a
second), it lost the race for every freed slot to the worker that freed it, which settles
and claims again in one trip: two workers of 10 slots under a limit of 20 (issue 14) split
a drain 16,580 to 3,420, or 20,000 to 0. So after a claim that came back short, a worker
whose claims answer to a concurrency cap asks the store (Store.limits, in the same trip)
whether such a cap is full, and if so claims again after CAPPED_RETRY (jittered) rather than
its poll. A short claim on an empty queue keeps the poll.

Tried and measured against it (bench/results/2026-12-06-limit20.md): no prefetch under a cap
(a prefetched job holds one of the cap's slots before it runs), with each worker then
settling and replacing its jobs in batches of its free slots. It split the drain evenly but
cost ~50 % more worker CPU per job (trips of 10 jobs, not ~15-20), and drained slower; prefetch
stays. Neither moves the no-op drain on an idle PostgreSQL much: it is bound by how long each
of the 20 slots is held, from the claim's commit to the settle's, not by the split.

Which caps answer to the worker is read from the store at most every REFRESH seconds (and
when it starts), in the claim loop's own trip to the store.
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
