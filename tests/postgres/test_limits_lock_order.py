"""A worker declaring its code's limits at start-up never deadlocks with a claim.

A limited claim locks the limit rows it answers to in (kind, name) order (LOCK_LIMITS: the
key rows, then its queues', then the tasks'). A declaration written in the code's order (a
task's limit before the key limits) held a task's row while a claim held the key rows and
waited for it: PostgreSQL broke the deadlock after deadlock_timeout (1 s), and every claim
queued behind on the same rows stalled that second (store/postgres/limit_settings.py).
Here a connection takes the claim's locks in two steps around a declaration."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from conveyor.limits.model import Limit
from conveyor.store.postgres.store import PostgresStore

from .conftest import BASE_URL

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

LOCK = 'SELECT kind, name FROM "{schema}".conveyor_limits WHERE kind = %s ORDER BY name FOR UPDATE'


async def _waiting_on_a_lock(schema: str) -> bool:
    async with await psycopg.AsyncConnection.connect(BASE_URL, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
            " AND wait_event_type = 'Lock'", (schema,))
        row = await cursor.fetchone()
        return bool(row and row[0])


async def _until_waiting(schema: str) -> None:
    deadline = time.monotonic() + 5
    while not await _waiting_on_a_lock(schema):
        assert time.monotonic() < deadline, "the declaration never waited for the claim"
        await asyncio.sleep(0.02)


async def test_a_declaration_waits_for_a_claim_and_never_deadlocks_with_it(
        store: PostgresStore, schema: str) -> None:
    await store.declare_limits([Limit("task", "solo", concurrency=1, source="code"),
                                Limit("key", "keyed", concurrency=1, source="code")])
    changed = [Limit("task", "solo", concurrency=2, source="code"),  # the code's order
               Limit("key", "keyed", concurrency=2, source="code")]
    async with await psycopg.AsyncConnection.connect(BASE_URL) as claim:
        await claim.execute(LOCK.format(schema=schema), ("key",))  # a claim's first rows
        declaring = asyncio.ensure_future(store.declare_limits(changed))
        await _until_waiting(schema)  # for the key row the claim holds
        await claim.execute("SET LOCAL lock_timeout = '3s'")
        began = time.monotonic()
        await claim.execute(LOCK.format(schema=schema), ("task",))  # the claim's next rows
        took = time.monotonic() - began
        await claim.commit()
    await declaring  # a deadlock fails one of the two: here, or the lock above
    assert took < 0.5, f"the claim waited {took:.2f} s for the declaration"
    got = {(u.limit.kind, u.limit.name): u.limit.concurrency for u in await store.limits()}
    assert got == {("task", "solo"): 2, ("key", "keyed"): 2}


async def test_a_declaration_that_changes_nothing_waits_for_no_claim(
        store: PostgresStore, schema: str) -> None:
    declared = [Limit("queue", "paced", rate=5, period=0.1, source="code"),
                Limit("task", "solo", concurrency=1, source="code"),
                Limit("key", "keyed", concurrency=1, source="code")]
    await store.declare_limits(declared)
    async with await psycopg.AsyncConnection.connect(BASE_URL) as claim:
        for kind in ("key", "queue", "task"):  # every row, as a claim from "paced" holds
            await claim.execute(LOCK.format(schema=schema), (kind,))
        await asyncio.wait_for(store.declare_limits(declared), 0.5)  # a worker's restart
        await claim.commit()
