"""Two workers' count folds at once (issue 16): neither fails, and the counts stay exact.

Before this test, every worker's maintenance folded the count deltas in separate statements:
FOLD (delete the deltas, upsert the totals in the hash aggregate's order), then DROP_ZEROS
(delete the totals at zero, in the table's physical order). One worker's DROP_ZEROS and the
other's FOLD locked the same rows of conveyor_counts (or conveyor_tenant_counts) in opposite
orders: DROP_ZEROS held a key at zero that the FOLD was reviving and waited for a key the
FOLD held, and PostgreSQL aborted one with "deadlock detected" (3 times in the first minute
of a 2M-job drain, bench/results/2026-12-08-q16.md). Now one fold at a time per store (a
transaction-scoped advisory try-lock): a fold that finds another under way folds nothing.

The deltas here are written straight into conveyor_count_deltas (fabricated, as the triggers
would write them): a churn of keys that reach zero and come back, so that every fold both
revives keys and leaves keys at zero for the next DROP_ZEROS.
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

KEYS = [(f"q{i % 8}", f"t{i}", "queued") for i in range(600)]
TENANTS = ("org-a", "org-b")
SECONDS = 6.0


async def write_deltas(schema: str, until: float, expected: Counter[tuple[str, ...]]) -> None:
    """Batches of deltas, each key +1 in one batch and -1 in the next (so at zero after
    every other fold), for every tenant: the rows a drain's triggers append."""
    async with await psycopg.AsyncConnection.connect(BASE_URL, autocommit=True) as conn:
        sign = 1
        while time.monotonic() < until:
            rows = [(queue, task, tenant, state, sign)
                    for tenant in TENANTS for queue, task, state in KEYS]
            async with conn.cursor() as cursor:
                await cursor.executemany(
                    f'INSERT INTO "{schema}".conveyor_count_deltas '
                    "(queue, task, tenant, state, n) VALUES (%s, %s, %s, %s, %s)", rows)
            for queue, task, tenant, state, n in rows:
                expected[tenant, queue, task, state] += n
            sign = -sign
            await asyncio.sleep(0.01)


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
    stores = [PostgresStore(url) for _ in range(3)]
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
