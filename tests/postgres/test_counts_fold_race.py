"""Two workers' count folds at once (issue 16): neither fails, and the counts stay exact.

Before this test, every worker's maintenance folded the count deltas in separate statements:
FOLD (delete the deltas, upsert the totals in the hash aggregate's order), then DROP_ZEROS
(delete the totals at zero, in the table's physical order). One worker's DROP_ZEROS and the
other's FOLD locked the same rows of conveyor_counts (or conveyor_tenant_counts) in opposite
orders: DROP_ZEROS held a key at zero that the FOLD was reviving and waited for a key the
FOLD held, and PostgreSQL aborted one with "deadlock detected" (3 times in the first minute
of a 2M-job drain, bench/results/2026-12-08-q16.md). Now one fold at a time per store (a
transaction-scoped advisory try-lock): a fold that finds another under way folds nothing.

The first test lays the two folds over each other on purpose (fabricated totals and deltas,
a row lock held by the test to stop one fold inside DROP_ZEROS): on the old code it fails
every time with "deadlock detected". The second churns deltas (written straight into
conveyor_count_deltas, as the triggers would: keys that reach zero and come back) under 4
folding stores for a few seconds, and checks the counts after.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import psycopg
import pytest

from conveyor.errors import StoreUnavailable
from conveyor.store.postgres.store import PostgresStore

from .conftest import BASE_URL

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

KEYS = [(f"q{i % 8}", f"t{i}", "queued") for i in range(1500)]
TENANTS = ("org-a", "org-b")
SECONDS = 4.0
FOLDERS = 4  # workers' maintenance loops


async def waiting(schema: str, statement: str, seconds: float = 5.0) -> bool:
    """Whether a backend of this schema's stores waits for a lock in `statement` (its start)
    within `seconds`."""
    async with await psycopg.AsyncConnection.connect(BASE_URL, autocommit=True) as conn:
        for _ in range(int(seconds / 0.02)):
            cursor = await conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                "AND wait_event_type = 'Lock' AND query LIKE %s", (schema, statement + "%"))
            row = await cursor.fetchone()
            if row and row[0]:
                return True
            await asyncio.sleep(0.02)
    return False


async def test_a_fold_meets_another_dropping_the_keys_it_revives(url: str, schema: str) -> None:
    """Fold A drops the keys at zero (physical order) and stops at a row the test holds, having
    deleted the first; fold B then revives every key (hash order): on the old code B locks
    keys A has not reached yet and waits for the one A deleted, A (let go) waits for B's."""
    counts = f'"{schema}".conveyor_counts'
    keys = [f"k{i:02}" for i in range(60)]
    stores = [PostgresStore(url) for _ in range(2)]
    for store in stores:
        await store.open()
    await stores[0].migrate()
    async with await psycopg.AsyncConnection.connect(BASE_URL, autocommit=True) as admin, \
            await psycopg.AsyncConnection.connect(BASE_URL) as holder:
        try:
            # keys at zero, in this physical order: k00, then the held row, then the rest
            await admin.execute(f"INSERT INTO {counts} (queue, task, state, n) VALUES "
                                + ", ".join(["('q', %s, 'queued', 0)"] * 61),
                                [keys[0], "held", *keys[1:]])
            await holder.execute(f"SELECT 1 FROM {counts} WHERE task = 'held' FOR UPDATE")
            await add_deltas(admin, schema, ["other"])  # A's: a key of its own to fold
            fold_a = asyncio.create_task(stores[0].fold_counts())
            assert await waiting(schema, f"DELETE FROM {counts} WHERE n = 0")
            await add_deltas(admin, schema, keys)  # B's: every key at zero comes back
            fold_b = asyncio.create_task(stores[1].fold_counts())
            await waiting(schema, "\nWITH moved", 2.0)  # (the new code: B folds nothing)
            await holder.rollback()
            results = await asyncio.gather(fold_a, fold_b, return_exceptions=True)
            assert not [r for r in results if isinstance(r, BaseException)], results
            await stores[1].fold_counts()  # what B left (the new code: all of it)
            cursor = await admin.execute(f"SELECT task, n FROM {counts} ORDER BY task")
            assert await cursor.fetchall() == [(key, 1) for key in keys] + [("other", 1)]
        finally:
            for store in stores:
                await store.close()


async def add_deltas(conn: psycopg.AsyncConnection[tuple[object, ...]], schema: str,
                     tasks: list[str]) -> None:
    await conn.execute(f'INSERT INTO "{schema}".conveyor_count_deltas '
                       "(queue, task, tenant, state, n) "
                       "SELECT 'q', task, '', 'queued', 1 FROM unnest(%s::text[]) AS task",
                       [tasks])


async def write_deltas(schema: str, until: float, expected: Counter[tuple[str, ...]]) -> None:
    """Batches of deltas, each key +1 in one batch and -1 in the next (so at zero after
    every other fold), for every tenant: the rows a drain's triggers append."""
    async with await psycopg.AsyncConnection.connect(BASE_URL, autocommit=True) as conn:
        sign = 1
        while time.monotonic() < until:
            rows = [(queue, task, tenant, state, sign)
                    for tenant in TENANTS for queue, task, state in KEYS]
            await conn.execute(
                f'INSERT INTO "{schema}".conveyor_count_deltas (queue, task, tenant, state, n) '
                "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], "
                "%s::bigint[])", [list(column) for column in zip(*rows, strict=True)])
            for queue, task, tenant, state, n in rows:
                expected[tenant, queue, task, state] += n
            sign = -sign
            await asyncio.sleep(0.002)


async def fold_until(store: PostgresStore, until: float, failures: list[str]) -> int:
    folds = 0
    while time.monotonic() < until:
        try:
            await store.fold_counts()
            folds += 1
        except StoreUnavailable as exc:  # the store's wrapping of psycopg's OperationalError
            cause = exc.__cause__
            failures.append(f"{type(cause).__name__}: {cause}".replace("\n", " "))
    return folds


async def test_two_workers_fold_at_once_without_deadlock(url: str, schema: str) -> None:
    stores = [PostgresStore(url) for _ in range(FOLDERS)]
    for store in stores:
        await store.open()
    await stores[0].migrate()
    try:
        expected: Counter[tuple[str, ...]] = Counter()
        failures: list[str] = []
        until = time.monotonic() + SECONDS
        results = await asyncio.gather(
            write_deltas(schema, until, expected),
            *(fold_until(store, until, failures) for store in stores))
        assert failures == [], f"{len(failures)} folds failed: {failures[:3]}"
        assert sum(results[1:]) > 20  # the folds did run, over and over
        await stores[0].fold_counts()
        kept = {(c.tenant, c.queue, c.task, c.state): c.count
                for c in await stores[1].job_counts()}
        assert kept == {key: n for key, n in expected.items() if n}
    finally:
        for store in stores:
            await store.close()
