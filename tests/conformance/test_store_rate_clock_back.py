"""A rate's starts are forgotten a margin after they leave the window, not the moment a
claim's clock says so: a claim whose clock reads earlier than the last claim's (a host clock
stepped back, another host's SQLite claim of the same file, a caller's `now`) must still
count every start of its own window, or it books more than the rate into it."""

from __future__ import annotations

import pytest
from tests.windows import busiest

from conveyor.limits.model import Limit
from conveyor.store.base import Store

from .support import LEASE, new_job

pytestmark = pytest.mark.anyio

T = 1_900_000_000.0


async def test_a_claim_whose_clock_steps_back_still_counts_its_window(store: Store) -> None:
    """3 per 10 s. Two start at T; one at T + 15 (a clock that ran ahead: its claim forgets
    the starts up to T + 5, on the old code the two at T). Then a claim at T + 1: its window
    (T - 9, T + 1] holds the two starts at T, so it may take one at most, not two (a claim
    also counts the starts logged after its time: this one counts three, and takes none)."""
    await store.set_limit(Limit("queue", "ai", rate=3, period=10.0))
    await store.enqueue_many([new_job(queue="ai") for _ in range(10)], now=T - 60)
    first = await store.claim(["ai"], "w-1", 2, LEASE, now=T)
    ahead = await store.claim(["ai"], "w-2", 1, LEASE, now=T + 15)
    back = await store.claim(["ai"], "w-3", 2, LEASE, now=T + 1)
    assert (len(first), len(ahead)) == (2, 1)
    starts = sorted(job.starts_at or 0.0 for job in [*first, *ahead, *back])
    assert busiest(starts, 10.0) <= 3, [at - T for at in starts]
    assert len(back) == 0


async def test_starts_well_past_their_window_are_still_forgotten(store: Store) -> None:
    """The margin keeps starts a while longer, not for ever: an hour on, a full window of
    new starts is allowed and the old ones are gone from the window's count."""
    await store.set_limit(Limit("queue", "ai", rate=3, period=10.0))
    await store.enqueue_many([new_job(queue="ai") for _ in range(10)], now=T - 60)
    assert len(await store.claim(["ai"], "w-1", 3, LEASE, now=T)) == 3
    assert len(await store.claim(["ai"], "w-1", 3, LEASE, now=T + 5)) == 0
    assert len(await store.claim(["ai"], "w-2", 3, LEASE, now=T + 3600)) == 3
