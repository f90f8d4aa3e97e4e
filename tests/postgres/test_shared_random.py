"""A PostgreSQL store never draws from the `random` module's shared generator either: the
connection pools spread each connection's lifetime with Conveyor's own (psycopg_pool's own
jitter draws from the shared one, which made the schemathesis fuzz test's Hypothesis refuse a
draw when the live server opened a connection in another thread)."""

from __future__ import annotations

import asyncio
import random

import pytest

from conveyor.store.postgres.connection import BlockingPool, LoopPools, parse_url

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]


async def test_opening_pools_and_connections_leaves_the_shared_generator_alone(url: str) -> None:
    where = parse_url(url + "&pool_size=4")
    random.seed(99)
    before = random.getstate()
    pools = LoopPools(where)

    async def hold() -> None:
        async with pools.connection() as conn:
            await conn.execute("SELECT pg_sleep(0.05)")

    await asyncio.gather(*(hold() for _ in range(4)))  # four connections opened at once
    blocking = BlockingPool(where)
    with blocking.connection() as (_, cursor):
        cursor.execute("SELECT 1")
    await pools.close()
    blocking.close()
    assert random.getstate() == before
