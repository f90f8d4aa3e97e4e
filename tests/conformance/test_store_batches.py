"""The jobs of a batch (JobFilter.batch_id), whichever path stored them, as long as they
exist: the same on every store (PostgreSQL keeps them beside the jobs since version 37)."""

from __future__ import annotations

import pytest

from conveyor.job import JobFilter, JobState, new_id
from conveyor.store.base import Complete, Retention, Store

from .support import T0, claim_one, enqueue, new_job

pytestmark = pytest.mark.anyio


async def batch_ids(store: Store, batch: str, **where: object) -> list[str]:
    return [j.id for j in await store.list_jobs(JobFilter(batch_id=batch, **where))]  # type: ignore[arg-type]


async def finish(store: Store, job_id: str, at: float) -> None:
    claimed = await claim_one(store, now=at)
    assert claimed.id == job_id
    assert await store.settle([Complete(claimed.lease)], now=at + 0.5) == [True]


async def test_every_enqueue_path_lists_its_jobs_under_their_batch(store: Store) -> None:
    batch, other = new_id(), new_id()
    one = await enqueue(store, batch_id=batch)
    # many plain jobs of one batch (one statement for all), then many with their own options
    plain = [r.id for r in await store.enqueue_many(
        [new_job(batch_id=batch) for _ in range(5)], now=T0)]
    mixed = [r.id for r in await store.enqueue_many(
        [new_job(batch_id=batch, idempotency_key=f"k{i}", priority=i) for i in range(3)]
        + [new_job(batch_id=other), new_job()], now=T0)]
    assert await batch_ids(store, batch) == list(reversed([one, *plain, *mixed[:3]]))
    assert await batch_ids(store, other) == [mixed[3]]
    assert await batch_ids(store, new_id()) == []
    assert await store.count_jobs(JobFilter(batch_id=batch)) == 9


async def test_a_batch_pages_newest_first_and_combines_with_other_filters(
        store: Store) -> None:
    batch = new_id()
    ids = [r.id for r in await store.enqueue_many(
        [new_job(batch_id=batch, queue="q1" if i % 2 else "q0") for i in range(7)], now=T0)]
    await enqueue(store, queue="q1")  # not of the batch
    first = await store.list_jobs(JobFilter(batch_id=batch), limit=3)
    rest = await store.list_jobs(JobFilter(batch_id=batch), after=first[-1].id, limit=10)
    assert [j.id for j in first + rest] == list(reversed(ids))
    assert await batch_ids(store, batch, queue="q1") == list(reversed(ids[1::2]))
    running = await claim_one(store, queues=["q0"])
    assert await batch_ids(store, batch, states=(JobState.RUNNING,)) == [running.id]


async def test_a_batch_lists_a_tenants_jobs_to_that_tenant(store: Store) -> None:
    batch = new_id()
    mine = [await enqueue(store, batch_id=batch, tenant="org-1") for _ in range(2)]
    theirs = await enqueue(store, batch_id=batch, tenant="org-2")
    assert await batch_ids(store, batch, tenant="org-1") == list(reversed(mine))
    assert await batch_ids(store, batch, tenant="org-2") == [theirs]
    assert await batch_ids(store, batch, tenant="org-3") == []
    assert await store.count_jobs(JobFilter(batch_id=batch, tenant="org-1")) == 2


async def test_deleted_jobs_do_not_come_back_through_their_batch(store: Store) -> None:
    batch = new_id()
    ids = [await enqueue(store, batch_id=batch, now=T0 + i) for i in range(4)]
    for i, job_id in enumerate(ids):
        await finish(store, job_id, T0 + 10 + i)
    # retention by count keeps the newest finished job; a discard takes another
    assert await store.prune_kept("completed", 2, queue="default", now=T0 + 100) == 2
    assert await batch_ids(store, batch) == [ids[3], ids[2]]
    assert await store.discard([ids[2]]) == 1
    assert await batch_ids(store, batch) == [ids[3]]
    # retention by age takes the last; a new job of the batch is listed alone
    assert await store.prune(Retention(completed=1, dead=1, cancelled=1),
                             now=T0 + 10_000) == 1
    assert await batch_ids(store, batch) == []
    assert await store.count_jobs(JobFilter(batch_id=batch)) == 0
    again = await enqueue(store, batch_id=batch, now=T0 + 20_000)
    assert await batch_ids(store, batch) == [again]
