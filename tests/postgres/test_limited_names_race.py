"""A limit hint that comes while the store is reading its limited names is not lost.

A store keeps the names of the limited queues and tasks for a second (claiming.LimitedNames,
REFRESH); another process's change hints it (LIMITS_HINT: forget them, read again). A read
already out when the hint came returns rows from before the change: stored as fresh, the
claims and the grant renewals went on under the old names for up to another second. Here the
read waits at a lock on conveyor_limits while the hint comes."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from conveyor.limits.claiming import REFRESH
from conveyor.store.postgres.store import PostgresStore

from .conftest import BASE_URL

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


async def _until_waiting(schema: str) -> None:
    deadline = time.monotonic() + 5
    async with await psycopg.AsyncConnection.connect(BASE_URL, autocommit=True) as conn:
        while True:
            cursor = await conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
                " AND wait_event_type = 'Lock'", (schema,))
            row = await cursor.fetchone()
            if row and row[0]:
                return
            assert time.monotonic() < deadline, "the read never waited at the lock"
            await asyncio.sleep(0.02)


async def test_a_hint_during_a_read_of_the_limited_names_leaves_them_stale(
        store: PostgresStore, schema: str) -> None:
    await store._read_limited(REFRESH)  # fresh now
    assert not store._limited.stale(REFRESH)
    store._limited.forget()
    async with await psycopg.AsyncConnection.connect(BASE_URL) as locker:
        await locker.execute(f'LOCK TABLE "{schema}".conveyor_limits IN ACCESS EXCLUSIVE MODE')
        reading = asyncio.ensure_future(store._read_limited(REFRESH))
        await _until_waiting(schema)
        store._limited.forget()  # what the store's listener does on LIMITS_HINT
        await locker.commit()
    await reading
    assert store._limited.stale(REFRESH), "the read begun before the hint was kept as fresh"
    await store._read_limited(REFRESH)  # the next read, begun after it, is fresh
    assert not store._limited.stale(REFRESH)
