"""A worker's grant renewal on PostgreSQL (store/postgres/grants.py) holds the caps' limit
rows locked for two round trips, however many caps: BEGIN, the lock and the read of every
cap with it; then the bookings with the COMMIT. Every capped claim waits for that lock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from conveyor.limits.grants import GrantAsk
from conveyor.limits.model import Limit
from conveyor.store.postgres.store import PostgresStore

from .exchanges import lone_store
from .test_trip import syncs

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


@pytest.fixture
async def lone(url: str) -> AsyncIterator[PostgresStore]:
    async for store in lone_store(url, 0, Limit("queue", "q", concurrency=20)):
        await store.set_limit(Limit("task", "t", concurrency=6))
        await store.set_limit(Limit("queue", "old", concurrency=5))
        yield store


async def test_a_renewal_is_two_round_trips_under_the_lock(lone: PostgresStore) -> None:
    """It was LOCK_CAPPED, CLOCK, then READ and BOOK for each cap, DROP_OTHERS and COMMIT,
    each a trip: 8 for two caps (~5 for one), the caps' claims waiting behind each."""
    await lone.renew_grants("other", ["q"], 10, [], 30.0, tasks=["t"])
    await lone.renew_grants("gone", ["q"], 4, [], 30.0, now=1.0)  # expired: forgotten
    first = await lone.renew_grants("w", ["q", "old"], 10, [], 30.0, tasks=["t"])
    asks = [GrantAsk(g.kind, g.name, g.slots, 0) for g in first if g.name != "old"]
    async with lone.pools.connection() as conn:
        pass
    renewed = []

    async def renew() -> None:
        renewed.append(await lone.renew_grants("w", ["q"], 10, asks, 30.0, tasks=["t"]))

    assert await syncs(conn, renew) == 2
    [grants] = renewed
    assert [(g.kind, g.name, g.slots, g.booked, g.fair) for g in grants] == [
        ("queue", "q", 10, 10, 10), ("task", "t", 0, 0, 3)]
    rows = await lone._one("SELECT kind, name, worker_id, slots, share, wanted"
                           " FROM {schema}.conveyor_cap_grants ORDER BY 1, 2, 3", {})
    assert rows == [  # "gone" forgotten (expired), w's grant of "old" dropped (not claimed)
        ("queue", "q", "other", 10, 10, 10), ("queue", "q", "w", 10, 10, 10),
        ("task", "t", "other", 6, 6, 10), ("task", "t", "w", 0, 0, 10)]
