"""The PostgreSQL job counters on the paths only this store has: a hand-off (the enqueue
leases the job to a waiting worker), a bulk COPY, a TRUNCATE, folds racing writers and each
other, and a tenant role that writes its own jobs without rights on the counters' tables."""

from __future__ import annotations

import asyncio

import pytest

from conveyor.job import JobState, NewJob, new_id
from conveyor.store.base import Complete
from conveyor.store.postgres.store import PostgresStore

from .conftest import admin_connect
from .test_handoff import Waiting, job, until

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


async def assert_exact(store: PostgresStore) -> None:
    assert await store.job_counts() == await store.recount_jobs()


async def test_a_handed_off_job_is_counted_running_then_completed(store: PostgresStore) -> None:
    worker = Waiting(store)
    try:
        await worker.offer()
        [result] = await store.enqueue_many([job()])
        assert result.state == JobState.RUNNING
        await until(lambda: worker.handed)
        assert [(c.state, c.count) for c in await store.job_counts()] == [("running", 1)]
        assert await store.settle([Complete(worker.handed[0].lease, b"{}")]) == [True]
        assert [(c.state, c.count) for c in await store.job_counts()] == [("completed", 1)]
        await assert_exact(store)
    finally:
        await worker.close()


async def test_a_copied_batch_is_counted(store: PostgresStore) -> None:
    jobs = [NewJob(id=new_id(), task="bulk.task", queue=f"q{i % 3}", payload=b"{}")
            for i in range(3000)]
    results = await asyncio.to_thread(store.enqueue_stream, iter(jobs))
    assert len(results) == 3000
    assert sorted((c.queue, c.count) for c in await store.job_counts()) == [
        ("q0", 1000), ("q1", 1000), ("q2", 1000)]
    await assert_exact(store)


async def test_a_truncate_clears_the_counts(store: PostgresStore, schema: str) -> None:
    await store.enqueue_many([job() for _ in range(3)])
    with admin_connect() as conn:
        conn.execute(f'TRUNCATE "{schema}".conveyor_jobs')
    assert await store.job_counts() == []


async def test_folds_racing_writers_and_each_other_count_every_change_once(
        store: PostgresStore, url: str) -> None:
    others = [PostgresStore(url) for _ in range(2)]
    for other in others:
        await other.open()
    try:
        async def write(writer: PostgresStore) -> None:
            for _ in range(15):
                await writer.enqueue_many([job(f"q{n % 4}") for n in range(5)])
                claimed = await writer.claim(None, "w1", 3, 30.0)
                await writer.settle([Complete(c.lease) for c in claimed])

        async def fold(folder: PostgresStore) -> None:
            for _ in range(15):
                await folder.fold_counts()

        await asyncio.gather(write(store), write(others[0]), fold(others[1]), fold(store),
                             fold(others[0]))
        await assert_exact(store)
        await store.fold_counts()
        await assert_exact(store)
        assert sum(c.count for c in await store.job_counts()) == 2 * 15 * 5
    finally:
        for other in others:
            await other.close()


async def test_a_fold_says_how_many_keys_it_folded(store: PostgresStore) -> None:
    await store.enqueue_many([job("mail"), job("sms")])
    assert await store.fold_counts() == 2  # mail and sms, queued
    assert await store.fold_counts() == 0
    await assert_exact(store)


def finished_events(schema: str) -> list[tuple[str, int]]:
    with admin_connect() as conn:
        rows = conn.execute(f'SELECT state, sum(n)::int FROM "{schema}".conveyor_finished_deltas'
                            " GROUP BY 1 ORDER BY 1").fetchall()
    return [(str(state), int(n)) for state, n in rows]


async def test_an_update_of_finished_and_finishing_jobs_at_once_counts_only_the_finishing(
        store: PostgresStore, schema: str) -> None:
    """The trigger's slow path (migration 0018): one statement that touches a job finished
    before it and finishes another counts one finished event, not two. No store method does
    this today; an operator's UPDATE may."""
    await store.enqueue_many([job(), job()])
    first, second = await store.claim(None, "w1", 2, 30.0)
    assert await store.settle([Complete(first.lease, b"{}")]) == [True]
    assert finished_events(schema) == [("completed", 1)]
    with admin_connect() as conn:
        conn.execute(f'UPDATE "{schema}".conveyor_jobs SET state = \'completed\','
                     " finished_at = coalesce(finished_at, date_part('epoch', now())),"
                     " lease_expires_at = NULL WHERE id = ANY(%s)", ([first.id, second.id],))
    assert finished_events(schema) == [("completed", 2)]
    assert [(c.state, c.count) for c in await store.job_counts()] == [("completed", 2)]
    await assert_exact(store)
