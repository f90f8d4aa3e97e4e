"""A worker whose claim a full concurrency cap cut short retries soon, not at its next poll.

Since cap grants (limits/grants.py, worker/grants.py) a worker holding a grant of the cap
claims ahead of it and its prefetched jobs count against no one; what follows is the claim
of a worker without a grant (before its first renewal, a grant of 0, an older release).

Under a queue's or a task's concurrency limit, nothing wakes a worker when another worker
frees one of the limit's slots: a settle is no event it hears. Waiting its poll (about a
second), it lost the race for every freed slot to the worker that freed it, which settles
and claims again in one trip: two workers of 10 slots under a limit of 20 (issue 14) split
a drain 16,580 to 3,420, or 20,000 to 0. So when the store's answer to a claim says a full
cap cut it short (Exchange.cut_short, from Store.settle_and_claim: the store reads it in the
claim's own transaction), the worker claims again after CAPPED_RETRY (jittered) rather than
its poll. A short claim on an empty queue keeps the poll.

Tried and measured against it (bench/results/2026-12-06-limit20.md): no prefetch under a cap
(a prefetched job holds one of the cap's slots before it runs), with each worker then
settling and replacing its jobs in batches of its free slots. It split the drain evenly but
cost ~50 % more worker CPU per job (trips of 10 jobs, not ~15-20), and drained slower; prefetch
stays. What bounds a capped no-op drain is how long each slot is held, from the claim's commit
to the settle's: the settle and the claim for the slots it frees go in one trip
(store/postgres/exchange.py, 2026-12-06-limitpg.md).

At 2 processes the workers still hold the whole cap in turn (2026-12-07-limit2p.md): one
holds its 10 slots and 10 prefetched, and its settle-and-claim takes back what its settle
frees before another worker's claim can. A claim shut out that way used to answer "not full"
8-15 % of the time on PostgreSQL (the cap was read by a second statement, after the settle
had committed), and its worker waited its whole poll; the store now reads the cap's room in
the claim's own statement. Tried and measured against it: sharing a full cap (no prefetch
for 0.25 s after a claim a full cap cut short, 2026-12-07-limit2p-caps-share.patch): an even
split, no faster drain, more worker CPU per job.
"""

from __future__ import annotations

from .. import _rng
from ..store.base import Exchange

CAPPED_RETRY = 0.02  # seconds (jittered): the next claim after one a full cap cut short


class Caps:
    """Whether the store said a full concurrency cap cut this worker's last claim short."""

    def __init__(self) -> None:
        self.full = False  # the last claim came back short with such a cap full

    def after_claim(self, answer: Exchange) -> None:
        """The store's answer to the last settle-and-claim trip."""
        self.full = answer.cut_short

    def delay(self, poll_delay: float) -> float:
        """How long to wait before the next claim: a short jittered retry when a full cap
        cut the last claim short, else the poll's delay."""
        if self.full:
            return min(poll_delay, CAPPED_RETRY * _rng.uniform(0.5, 1.5))
        return poll_delay
