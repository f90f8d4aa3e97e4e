"""A claim that lets the store's clock decide (now=None) reads that clock once it holds the
limits (SQLite: the write lock; PostgreSQL: the limit rows), not before it waits for them.

Why it matters: a claim forgets the starts that have left a rate's window by its own clock.
A claim that read the clock, waited for the lock, and committed after a claim that read a
later clock, counted its window without the starts that claim had just forgotten, and
booked its own starts inside that window: more than the rate started in one window (the
system test's 50/s held for 60 s saw 54 in a second on SQLite). These tests hold the lock
with a connection of their own, in real time, while another store instance claims.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Iterator

import pytest
from tests.windows import busiest

from conveyor.job import ClaimedJob
from conveyor.limits.model import Limit
from conveyor.store.base import Store

from .conftest import POSTGRES_BASE, StoreSetup
from .support import LEASE, new_job

pytestmark = pytest.mark.anyio

HOLD = 0.4  # seconds the limits stay locked while the other claim waits


@contextlib.contextmanager
def limits_locked(setup: StoreSetup, queue: str) -> Iterator[None]:
    """Hold what a limited claim from `queue` must wait for, as another claimer would."""
    if setup.kind == "sqlite-file":
        conn = sqlite3.connect(setup.url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield
            conn.execute("COMMIT")
        finally:
            conn.close()
        return
    import psycopg

    schema = setup.url.split("?schema=", 1)[1]
    with psycopg.connect(POSTGRES_BASE) as held:  # one transaction, committed on exit
        held.execute(f'SELECT 1 FROM "{schema}".conveyor_limits '
                     "WHERE kind = 'queue' AND name = %s FOR UPDATE", (queue,))
        yield


def claim_elsewhere(setup: StoreSetup, limit: int) -> list[ClaimedJob]:
    """A claim of `limit` from "ai" by another store instance, at the store's clock, in a
    thread of its own (it blocks on the lock)."""

    async def claim() -> list[ClaimedJob]:
        other: Store = setup.make()  # type: ignore[misc]
        await other.open()
        try:
            return await other.claim(["ai"], "w-waits", limit, LEASE)
        finally:
            await other.close()

    return asyncio.run(claim())


async def _setup(store_setup: StoreSetup, store: Store, rate: int, period: float) -> None:
    if not store_setup.shared:
        pytest.skip("the in-memory store cannot be shared between store instances")
    await store.set_limit(Limit("queue", "ai", rate=rate, period=period))
    await store.enqueue_many([new_job(queue="ai") for _ in range(10)], now=time.time() - 60)


async def test_a_claim_that_waited_for_the_limits_books_when_it_got_them(
        store_setup: StoreSetup, store: Store) -> None:
    await _setup(store_setup, store, rate=100, period=1.0)
    with limits_locked(store_setup, "ai"):
        waiting = asyncio.create_task(asyncio.to_thread(claim_elsewhere, store_setup, 2))
        await asyncio.sleep(HOLD)  # the claim has read its clock (old code) and waits
        assert not waiting.done()
        released = time.time()
    jobs = await waiting
    assert len(jobs) == 2
    assert all(job.starts_at is not None and job.starts_at >= released for job in jobs), \
        f"booked {[(job.starts_at or 0.0) - released for job in jobs]} s after the release"


async def test_a_claim_that_waited_never_starts_more_than_the_rate_in_a_window(
        store_setup: StoreSetup, store: Store) -> None:
    """4 per second. Four starts leave the window 0.2 s into the hold; a claim waits for the
    lock from the start of the hold; right after the release another claim takes 2 (and
    forgets the four by its clock). The waiting claim, asking for 2, must find the window
    as it is when it runs: in no one-second window more than 4 starts. (Which of the two
    gets the lock first is up to the database; PostgreSQL queues the waiter first, and on
    SQLite the claim after the release wins unless the waiter's busy-wait wakes in the few
    ms between: then the old code passed too.)"""
    await _setup(store_setup, store, rate=4, period=1.0)
    now = time.time()
    old = await store.claim(["ai"], "w-old", 4, LEASE, now=now - 1.0 + 0.2)
    assert len(old) == 4
    with limits_locked(store_setup, "ai"):
        waiting = asyncio.create_task(asyncio.to_thread(claim_elsewhere, store_setup, 2))
        await asyncio.sleep(HOLD)
    after = await store.claim(["ai"], "w-after", 2, LEASE)
    starts = sorted(job.starts_at or 0.0 for job in [*old, *after, *await waiting])
    assert busiest(starts, 1.0) <= 4, [round(at - now, 3) for at in starts]


