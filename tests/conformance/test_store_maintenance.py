"""Maintenance: rescue_expired, promote_scheduled, expire, prune. Each bounded and idempotent."""

from __future__ import annotations

import pytest

from conveyor.job import JobState
from conveyor.store.base import Cancelled, Complete, Fail, Retention, Store

from .support import LEASE, T0, claim_ids, claim_one, enqueue, error, new_job

pytestmark = pytest.mark.anyio

DAY = 86_400.0
RETENTION = Retention(completed=DAY, dead=7 * DAY, cancelled=2 * DAY)


async def test_rescue_requeues_a_job_whose_lease_ran_out(store: Store) -> None:
    job_id = await enqueue(store, max_attempts=3)
    await claim_one(store, worker_id="worker-gone")
    assert await store.rescue_expired(now=T0 + LEASE - 1) == 0
    assert await store.rescue_expired(now=T0 + LEASE + 1) == 1

    got = await store.get(job_id)
    assert got is not None
    assert got.state == JobState.QUEUED
    assert got.attempt == 1  # the lost run counts
    [lost] = got.errors
    assert lost.type == "WorkerLost"
    assert lost.attempt == 1
    assert lost.worker == "worker-gone"
    assert "worker-gone" in lost.message
    assert lost.at == pytest.approx(T0 + LEASE + 1)
    assert await store.rescue_expired(now=T0 + LEASE + 2) == 0  # idempotent
    again = await claim_one(store, now=T0 + LEASE + 2)
    assert again.attempt == 2


async def test_rescue_at_the_last_attempt_is_dead_worker_lost(store: Store) -> None:
    job_id = await enqueue(store, max_attempts=2)
    now = T0
    for _ in range(2):
        await claim_one(store, now=now)
        now += LEASE + 1
        assert await store.rescue_expired(now=now) == 1
    got = await store.get(job_id)
    assert got is not None
    assert got.state == JobState.DEAD
    assert got.dead_reason == "worker_lost"
    assert got.finished_at == pytest.approx(now)
    assert [(e.attempt, e.type) for e in got.errors] == [(1, "WorkerLost"), (2, "WorkerLost")]
    assert await claim_ids(store, now=now) == []


async def test_rescue_is_bounded_by_its_limit(store: Store) -> None:
    await store.enqueue_many([new_job() for _ in range(5)], now=T0)
    await store.claim(None, "worker-1", 5, LEASE, now=T0)
    assert await store.rescue_expired(now=T0 + LEASE + 1, limit=2) == 2
    assert await store.rescue_expired(now=T0 + LEASE + 1, limit=10) == 3


async def test_rescue_leaves_finished_and_waiting_jobs_alone(store: Store) -> None:
    done = await enqueue(store)
    claimed = await claim_one(store)
    await store.settle([Complete(claimed.lease)], now=T0 + 1)
    waiting = await enqueue(store, delay=5)
    assert await store.rescue_expired(now=T0 + 10 * LEASE) == 0
    assert (await store.get(done)).state == JobState.COMPLETED  # type: ignore[union-attr]
    assert (await store.get(waiting)).state == JobState.SCHEDULED  # type: ignore[union-attr]


async def test_promote_moves_due_jobs_and_reports_the_next_due(store: Store) -> None:
    soon = await enqueue(store, delay=10)
    later = await enqueue(store, delay=100)
    assert await store.promote_scheduled(now=T0 + 5) == (0, pytest.approx(T0 + 10))
    assert await store.promote_scheduled(now=T0 + 10) == (1, pytest.approx(T0 + 100))
    assert (await store.get(soon)).state == JobState.QUEUED  # type: ignore[union-attr]
    assert (await store.get(later)).state == JobState.SCHEDULED  # type: ignore[union-attr]
    assert await store.promote_scheduled(now=T0 + 100) == (1, None)
    assert await store.promote_scheduled(now=T0 + 101) == (0, None)


async def test_promote_is_bounded_by_its_limit(store: Store) -> None:
    await store.enqueue_many([new_job(delay=i + 1) for i in range(5)], now=T0)
    count, next_due = await store.promote_scheduled(now=T0 + 10, limit=2)
    assert count == 2
    assert next_due == pytest.approx(T0 + 3)  # the earliest ones went first
    assert (await store.promote_scheduled(now=T0 + 10, limit=10))[0] == 3


async def test_expire_kills_jobs_whose_ttl_ran_out_before_they_started(store: Store) -> None:
    queued = await enqueue(store, ttl=60)
    scheduled = await enqueue(store, ttl=60, delay=120)
    fresh = await enqueue(store, ttl=600)
    forever = await enqueue(store)
    assert await store.expire(now=T0 + 59) == 0
    assert await store.expire(now=T0 + 61) == 2
    for job_id in (queued, scheduled):
        got = await store.get(job_id)
        assert got is not None
        assert (got.state, got.dead_reason) == (JobState.DEAD, "expired")
        assert got.finished_at == pytest.approx(T0 + 61)
        assert got.attempt == 0
    for job_id in (fresh, forever):
        assert (await store.get(job_id)).state == JobState.QUEUED  # type: ignore[union-attr]
    assert await store.expire(now=T0 + 62) == 0


async def test_expire_leaves_a_running_job_alone(store: Store) -> None:
    job_id = await enqueue(store, ttl=10)
    claimed = await claim_one(store, now=T0 + 5)
    assert await store.expire(now=T0 + 20) == 0
    assert await store.settle([Complete(claimed.lease)], now=T0 + 21) == [True]
    assert (await store.get(job_id)).state == JobState.COMPLETED  # type: ignore[union-attr]


async def test_expire_frees_the_idempotency_key(store: Store) -> None:
    await enqueue(store, ttl=10, idempotency_key="k")
    await store.expire(now=T0 + 11)
    [again] = await store.enqueue_many([new_job(idempotency_key="k")], now=T0 + 12)
    assert again.duplicate is False


async def test_expire_is_bounded_by_its_limit(store: Store) -> None:
    await store.enqueue_many([new_job(ttl=1) for _ in range(4)], now=T0)
    assert await store.expire(now=T0 + 2, limit=3) == 3
    assert await store.expire(now=T0 + 2, limit=3) == 1


async def _finish(store: Store, how: str, at: float, **fields: object) -> str:
    job_id = await enqueue(store, now=at, **fields)
    if how == "cancelled-waiting":
        await store.cancel([job_id], now=at)
        return job_id
    claimed = await store.claim(None, "worker-1", 1, LEASE, now=at)
    assert [c.id for c in claimed] == [job_id]
    record = {"completed": Complete(claimed[0].lease),
              "dead": Fail(claimed[0].lease, error(1)),
              "cancelled": Cancelled(claimed[0].lease)}[how]
    assert await store.settle([record], now=at) == [True]
    return job_id


async def test_prune_respects_the_retention_of_each_state(store: Store) -> None:
    completed = await _finish(store, "completed", T0)
    dead = await _finish(store, "dead", T0)
    cancelled = await _finish(store, "cancelled", T0)
    waiting_cancelled = await _finish(store, "cancelled-waiting", T0)
    queued = await enqueue(store, now=T0)
    scheduled = await enqueue(store, now=T0, delay=30 * DAY)

    assert await store.prune(RETENTION, now=T0 + DAY - 1) == 0
    assert await store.prune(RETENTION, now=T0 + DAY + 1) == 1
    assert await store.get(completed) is None
    assert await store.prune(RETENTION, now=T0 + 2 * DAY + 1) == 2
    assert await store.get(cancelled) is None and await store.get(waiting_cancelled) is None
    assert await store.get(dead) is not None
    assert await store.prune(RETENTION, now=T0 + 7 * DAY + 1) == 1
    assert await store.get(dead) is None
    assert await store.prune(RETENTION, now=T0 + 100 * DAY) == 0
    assert await store.get(queued) is not None and await store.get(scheduled) is not None


async def test_prune_never_deletes_an_active_or_running_job(store: Store) -> None:
    running = await enqueue(store, now=T0)
    await claim_one(store, now=T0)
    assert await store.prune(Retention(0, 0, 0), now=T0 + 365 * DAY) == 0
    assert await store.get(running) is not None


async def test_prune_keeps_a_job_that_still_reserves_its_key(store: Store) -> None:
    job_id = await _finish(store, "completed", T0, idempotency_key="k", unique_for=3 * DAY)
    assert await store.prune(RETENTION, now=T0 + 2 * DAY) == 0
    assert await store.get(job_id) is not None
    [dup] = await store.enqueue_many([new_job(idempotency_key="k")], now=T0 + 2 * DAY)
    assert (dup.id, dup.duplicate) == (job_id, True)
    assert await store.prune(RETENTION, now=T0 + 3 * DAY + 1) == 1
    assert await store.get(job_id) is None


async def test_prune_is_bounded_by_its_limit(store: Store) -> None:
    for _ in range(5):
        await _finish(store, "completed", T0)
    assert await store.prune(RETENTION, now=T0 + 2 * DAY, limit=2) == 2
    assert await store.prune(RETENTION, now=T0 + 2 * DAY, limit=10) == 3


async def test_a_pruned_job_is_found_by_no_part_of_its_id(store: Store) -> None:
    completed = await _finish(store, "completed", T0)
    kept = await enqueue(store, now=T0)
    assert await store.find_ids(completed[-12:]) == [completed]
    assert await store.find_ids(completed) == [completed]

    assert await store.prune(RETENTION, now=T0 + DAY + 1) == 1
    assert await store.find_ids(completed[-12:]) == []      # by its end, too (PostgreSQL
    assert await store.find_ids(completed) == []       # keeps the tails beside the jobs)
    assert await store.find_ids(kept[-12:]) == [kept]
    # the same id enqueued again (a producer's own id) is found once
    await store.enqueue_many([new_job(id=completed)], now=T0 + DAY + 2)
    assert await store.find_ids(completed[-12:]) == [completed]
