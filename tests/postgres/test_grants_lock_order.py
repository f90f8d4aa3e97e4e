"""Dropping a worker's cap grants never deadlocks with a renewal (store/postgres/grants.py).

A renewal locks its caps' limit rows FOR UPDATE in (kind, name) order, then cap by cap
forgets the expired grants (of any worker) and books its own. A worker's grants dropped
without those locks (its deregistration; a renewal dropping the grants of caps it no longer
claims under) could lock one grant row the renewal is about to forget and wait for another
the renewal has forgotten already: PostgreSQL broke the deadlock after deadlock_timeout
(1 s) by failing one of the two. Here a connection plays the renewal in two steps around the
drop, as tests/postgres/test_limits_lock_order.py does for declarations."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from conveyor.limits.model import Limit
from conveyor.store.postgres.store import PostgresStore

from .conftest import BASE_URL
from .test_limits_lock_order import _until_waiting

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

T0 = 1_000_000.0
LOCK = ('SELECT 1 FROM "{schema}".conveyor_limits WHERE kind = \'queue\' AND name = ANY(%s)'
        " ORDER BY kind, name FOR UPDATE")
FORGET = 'DELETE FROM "{schema}".conveyor_cap_grants WHERE kind = \'queue\' AND name = %s' \
         " AND worker_id = 'w'"
GRANT = ('INSERT INTO "{schema}".conveyor_cap_grants'
         " (kind, name, worker_id, slots, share, wanted, expires_at)"
         " VALUES ('queue', %s, 'w', 1, 1, 1, %s)")


async def _grants(store: PostgresStore, schema: str, *names: str) -> None:
    """Caps on queues a, b, c, d; worker w's grants of `names`, in that order on disk (a
    bare DELETE of w's rows meets them in that order)."""
    for name in "abcd":
        await store.set_limit(Limit("queue", name, concurrency=5))
    async with await psycopg.AsyncConnection.connect(BASE_URL, autocommit=True) as conn:
        for name in names:
            await conn.execute(GRANT.format(schema=schema), (name, T0 - 100))  # expired


async def test_a_deregistering_worker_waits_for_a_renewal_forgetting_its_grants(
        store: PostgresStore, schema: str) -> None:
    await _grants(store, schema, "b", "a")  # b's row first on disk
    async with await psycopg.AsyncConnection.connect(BASE_URL) as renewal:
        await renewal.execute(LOCK.format(schema=schema), (["a", "b"],))
        await renewal.execute(FORGET.format(schema=schema), ("a",))  # cap a: w's is expired
        leaving = asyncio.ensure_future(store.deregister_worker("w"))
        await _until_waiting(schema)  # for the renewal
        await renewal.execute("SET LOCAL lock_timeout = '3s'")
        began = time.monotonic()
        await renewal.execute(FORGET.format(schema=schema), ("b",))  # cap b: w's too
        took = time.monotonic() - began
        await renewal.commit()
    await leaving  # a deadlock fails one of the two: here, or the renewal's forget above
    assert took < 0.5, f"the renewal waited {took:.2f} s for the deregistration"
    assert not [u for u in await store.limits() if u.grants]


async def test_a_renewal_drops_a_grant_it_no_longer_claims_under_in_lock_order(
        store: PostgresStore, schema: str) -> None:
    """Worker w claims under cap d only now; its grant of cap c (expired: it was cut off
    meanwhile) is dropped by its renewal, while another renewal of caps c and d has
    forgotten that grant under c's lock and waits for d's."""
    await _grants(store, schema, "c")
    async with await psycopg.AsyncConnection.connect(BASE_URL) as other:
        await other.execute(LOCK.format(schema=schema), (["c"],))
        await other.execute(FORGET.format(schema=schema), ("c",))
        renewing = asyncio.ensure_future(
            store.renew_grants("w", ["d"], 5, [], 30.0, now=T0))
        await _until_waiting(schema)  # for the other renewal
        await other.execute("SET LOCAL lock_timeout = '3s'")
        began = time.monotonic()
        await other.execute(LOCK.format(schema=schema), (["d"],))
        took = time.monotonic() - began
        await other.commit()
    [grant] = await renewing
    assert (grant.name, grant.slots) == ("d", 5)
    assert took < 0.5, f"the other renewal waited {took:.2f} s for w's"
