"""The queues' kept heads (migration 0035, issue 16): where the oldest-queued lookup starts.

A head may only move past jobs that are not queued in any snapshot a reader can take: a job
queued by a transaction still open while a fold moves the heads carries its own start in its
count delta, which the fold cannot see and so leaves for the readers. A schema upgraded with jobs
already queued starts with heads that cover them, and a fold of the release before (its
workers not restarted yet) does not lose the starts it takes."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from conveyor.job import NewJob, new_id
from conveyor.store.base import Complete
from conveyor.store.postgres.store import PostgresStore

from .conftest import BASE_URL

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

T0 = 1_700_000_000.0
PAYLOAD = b'{"a":1}'


def job(run_at: float | None = None, priority: int = 0, tenant: str | None = None) -> NewJob:
    return NewJob(id=new_id(), task="send", queue="mail", payload=PAYLOAD, priority=priority,
                  run_at=run_at, tenant=tenant)


async def oldest(store: PostgresStore, now: float, tenant: str | None = None) -> float | None:
    [mail] = await store.queues(tenant, now=now)
    return mail.oldest_queued_age


async def test_a_job_queued_by_a_transaction_open_across_a_fold_stays_the_oldest(
        store: PostgresStore, schema: str) -> None:
    await store.enqueue_many([job() for _ in range(6)], now=T0 + 100)
    async with await psycopg.AsyncConnection.connect(BASE_URL) as tx:
        # queued before the head, by a transaction the folds below do not see
        await store.enqueue_many([job(run_at=T0 + 10, priority=5, tenant="org-a")],
                                 now=T0 + 150, tx=tx)
        claimed = await store.claim(None, "w1", 4, 30.0, now=T0 + 150)
        assert len(claimed) == 4 and {c.priority for c in claimed} == {0}
        await store.settle([Complete(c.lease) for c in claimed], now=T0 + 151)
        await store.fold_counts()  # moves the head past the 4 claimed
        with psycopg.connect(BASE_URL, autocommit=True) as conn:
            heads = conn.execute(f'SELECT priority, run_at FROM "{schema}".conveyor_queue_heads'
                                 ).fetchall()
        assert heads == [(0, T0 + 100)], heads  # the 2 left; the open one not seen
        assert await oldest(store, T0 + 200) == pytest.approx(100)
        await tx.commit()
    for fold in (False, True):
        if fold:
            await store.fold_counts()
        assert await oldest(store, T0 + 200) == pytest.approx(190), fold
        assert await oldest(store, T0 + 200, "org-a") == pytest.approx(190), fold


async def test_an_upgraded_schema_starts_with_heads_for_the_jobs_it_holds(url: str) -> None:
    store = PostgresStore(url)
    every = list(store._migrations)
    store._migrations = [m for m in every if m.version < 35]
    await store.open()
    try:
        await store.migrate()
        await store.enqueue_many([job(priority=p) for p in (0, 0, 7)], now=T0 + 50)
        await store.enqueue_many([job(priority=-2)], now=T0 + 20)
        await store.claim(None, "w1", 1, 30.0, now=T0 + 60)  # the priority 7 one
        store._migrations = every
        assert await store.migrate() == len(every) - 34
        for fold in (False, True):
            if fold:
                await store.fold_counts()
            assert await oldest(store, T0 + 100) == pytest.approx(80), fold
        await store.claim(None, "w1", 3, 30.0, now=T0 + 100)
        await store.fold_counts()
        assert await oldest(store, T0 + 100) is None
    finally:
        await store.close()



async def test_the_upgrade_fills_a_head_for_each_queue_and_priority(url: str, schema: str) -> None:
    """The migration's fill skips through the claim index from one (queue, priority) to the
    next: every one with queued jobs gets its first run_at, across queues before and after
    each other and priorities in any order; scheduled and claimed jobs get none."""
    store = PostgresStore(url)
    every = list(store._migrations)
    store._migrations = [m for m in every if m.version < 35]
    await store.open()
    try:
        await store.migrate()
        queued = [("a", 3, 10.0), ("a", 3, 5.0), ("a", -1, 7.0), ("mail", 0, 9.0),
                  ("zz", 5, 2.0), ("zz", 0, 4.0), ("zz", 0, 1.0)]
        await store.enqueue_many([
            NewJob(id=new_id(), task="send", queue=q, payload=PAYLOAD, priority=p,
                   run_at=T0 + t) for q, p, t in queued], now=T0 + 20)
        await store.enqueue_many([NewJob(id=new_id(), task="send", queue="b", payload=PAYLOAD,
                                         run_at=T0 + 500)], now=T0 + 20)  # scheduled
        store._migrations = every
        await store.migrate()
    finally:
        await store.close()
    with psycopg.connect(BASE_URL, autocommit=True) as conn:
        heads = conn.execute(f'SELECT queue, priority, run_at - {T0} FROM "{schema}".'
                             "conveyor_queue_heads ORDER BY 1, 2").fetchall()
    assert heads == [("a", -1, 7.0), ("a", 3, 5.0), ("mail", 0, 9.0), ("zz", 0, 1.0),
                     ("zz", 5, 2.0)]

# the FOLD of the release before migration 0035, as its workers still send it after
# `conveyor migrate` until they restart: it takes the deltas, starts and all
OLD_FOLD = """
WITH moved AS (DELETE FROM {schema}.conveyor_count_deltas
               RETURNING queue, task, tenant, state, n),
each_tenant AS (
    INSERT INTO {schema}.conveyor_tenant_counts AS total (tenant, queue, task, state, n)
    SELECT tenant, queue, task, state, sum(n) FROM moved GROUP BY 1, 2, 3, 4
    ON CONFLICT (tenant, queue, task, state) DO UPDATE SET n = total.n + excluded.n)
INSERT INTO {schema}.conveyor_counts AS total (queue, task, state, n)
SELECT queue, task, state, sum(n) FROM moved GROUP BY 1, 2, 3
ON CONFLICT (queue, task, state) DO UPDATE SET n = total.n + excluded.n"""


async def test_a_fold_of_the_release_before_keeps_the_starts(store: PostgresStore) -> None:
    """Workers of the previous release fold too until they restart: the deltas they take
    still lower the heads (the trigger on the deltas), so no job is lost to the lookup."""
    await store.enqueue_many([job() for _ in range(4)], now=T0 + 100)
    await store.claim(None, "w1", 2, 30.0, now=T0 + 100)
    await store.fold_counts()  # the head moves past the 2 claimed
    await store.enqueue_many([job(run_at=T0 + 30)], now=T0 + 120)  # before it
    await store.enqueue_many([job(run_at=T0 + 40, priority=3)], now=T0 + 120)
    with psycopg.connect(BASE_URL, autocommit=True) as conn:
        conn.execute(store.statement(OLD_FOLD))
    assert await oldest(store, T0 + 200) == pytest.approx(170)
    await store.fold_counts()
    assert await oldest(store, T0 + 200) == pytest.approx(170)
    await store.claim(None, "w1", 1, 30.0, now=T0 + 200)  # the priority 3 one
    assert await oldest(store, T0 + 200) == pytest.approx(170)


async def test_the_upgrade_waits_for_a_live_writer_and_never_deadlocks_with_it(
        url: str, schema: str) -> None:
    """Writers lock the jobs, then the deltas (their count triggers); the migration takes the
    jobs first too. Taking the deltas first (its ALTER) deadlocked a writer in flight."""
    store = PostgresStore(url)
    every = list(store._migrations)
    await store.open()
    try:
        for migration in every[:-1]:
            await store._apply(migration)
        await store.enqueue_many([job()], now=T0)

        async def writer() -> None:
            async with await psycopg.AsyncConnection.connect(BASE_URL, autocommit=True) as conn:
                await conn.execute(f'UPDATE "{schema}".conveyor_jobs SET priority = priority + 1'
                                   " WHERE pg_sleep(1.0) IS NOT NULL")

        async def upgrade() -> None:
            await asyncio.sleep(0.3)  # the writer holds the jobs, its trigger not fired yet
            await store._apply(every[-1])

        await asyncio.gather(writer(), upgrade())  # a deadlock fails one of them
        assert await oldest(store, T0 + 10) == pytest.approx(10)
    finally:
        await store.close()
