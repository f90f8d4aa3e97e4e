"""Control: cancel, requeue, and the tenant scope of reads and writes."""

from __future__ import annotations

import pytest

from conveyor.job import JobFilter, JobState, new_id
from conveyor.store.base import Complete, Fail, Store

from .support import T0, claim_ids, claim_one, enqueue, error, new_job

pytestmark = pytest.mark.anyio


async def test_cancel_a_queued_job(store: Store) -> None:
    job_id = await enqueue(store)
    assert await store.cancel([job_id], now=T0 + 5) == {job_id: "cancelled"}
    got = await store.get(job_id)
    assert got is not None
    assert got.state == JobState.CANCELLED
    assert got.finished_at == pytest.approx(T0 + 5)
    assert await claim_ids(store, now=T0 + 6) == []


async def test_cancel_a_scheduled_job(store: Store) -> None:
    job_id = await enqueue(store, delay=100)
    assert await store.cancel([job_id], now=T0 + 5) == {job_id: "cancelled"}
    assert await store.promote_scheduled(now=T0 + 200) == (0, None)
    got = await store.get(job_id)
    assert got is not None and got.state == JobState.CANCELLED


async def test_cancel_a_running_job_asks_its_worker(store: Store) -> None:
    job_id = await enqueue(store)
    claimed = await claim_one(store)
    assert await store.cancel([job_id], now=T0 + 1) == {job_id: "cancel_requested"}
    got = await store.get(job_id)
    assert got is not None
    assert got.state == JobState.RUNNING
    assert got.cancel_requested is True
    # the worker may still finish it
    assert await store.settle([Complete(claimed.lease, b"1")], now=T0 + 2) == [True]


async def test_cancel_of_finished_or_missing_jobs_reports_their_state(store: Store) -> None:
    done = await enqueue(store)
    claimed = await claim_one(store)
    await store.settle([Complete(claimed.lease)], now=T0 + 1)
    missing = new_id()
    assert await store.cancel([done, missing], now=T0 + 2) == {
        done: "completed", missing: "not_found"}
    got = await store.get(done)
    assert got is not None and got.state == JobState.COMPLETED


async def test_cancel_many_at_once(store: Store) -> None:
    ids = [await enqueue(store) for _ in range(3)]
    assert await store.cancel(ids, now=T0) == dict.fromkeys(ids, "cancelled")


async def _dead_job(store: Store, **fields: object) -> str:
    job_id = await enqueue(store, **fields)
    now = T0
    while True:
        claimed = await claim_one(store, now=now)
        last = claimed.attempt >= claimed.max_attempts
        await store.settle([Fail(claimed.lease, error(claimed.attempt),
                                 None if last else 1.0)], now=now)
        now += 1
        await store.promote_scheduled(now=now)
        if last:
            return job_id


async def test_requeue_a_dead_job_gives_it_fresh_attempts(store: Store) -> None:
    job_id = await _dead_job(store, max_attempts=2)
    assert await store.requeue([job_id], now=T0 + 100) == {job_id: "queued"}
    got = await store.get(job_id)
    assert got is not None
    assert got.state == JobState.QUEUED
    # the budget starts over (0 of 2), it does not grow (2 of 4)
    assert (got.attempt, got.max_attempts) == (0, 2)
    assert (got.finished_at, got.dead_reason) == (None, None)
    assert len(got.errors) == 2  # the history stays

    claimed = await claim_one(store, now=T0 + 100)
    assert (claimed.attempt, claimed.max_attempts) == (1, 2)
    await store.settle([Fail(claimed.lease, error(claimed.attempt), retry_in=1)], now=T0 + 100)
    got = await store.get(job_id)
    assert got is not None and got.state == JobState.SCHEDULED  # a retry, not dead at once


async def test_requeue_a_discarded_job_gives_it_a_full_set_of_attempts(store: Store) -> None:
    job_id = await enqueue(store, max_attempts=3)
    claimed = await claim_one(store)
    await store.settle([Fail(claimed.lease, error(1), None, "discarded")], now=T0 + 1)
    assert await store.requeue([job_id], now=T0 + 2) == {job_id: "queued"}
    got = await store.get(job_id)
    assert got is not None
    assert (got.attempt, got.max_attempts) == (0, 3), (
        f"fresh attempts: expected 3 runs left, got attempt={got.attempt} "
        f"max_attempts={got.max_attempts}")


async def test_requeue_a_cancelled_job(store: Store) -> None:
    job_id = await enqueue(store)
    await store.cancel([job_id], now=T0)
    assert await store.requeue([job_id], now=T0 + 1) == {job_id: "queued"}
    assert await claim_ids(store, now=T0 + 1) == [job_id]


async def test_requeue_of_running_completed_or_missing_jobs_reports_their_state(
        store: Store) -> None:
    running = await enqueue(store)
    await claim_one(store)
    done = await enqueue(store)
    claimed = await claim_one(store)
    await store.settle([Complete(claimed.lease)], now=T0)
    missing = new_id()
    assert await store.requeue([running, done, missing], now=T0 + 1) == {
        running: "running", done: "completed", missing: "not_found"}


async def test_requeue_of_a_queued_job_leaves_it_and_says_so(store: Store) -> None:
    dead = await _dead_job(store, max_attempts=1)
    queued = await enqueue(store)
    before = await store.get(queued)
    assert await store.requeue([queued, dead], now=T0 + 1) == {
        queued: "already_queued", dead: "queued"}
    after = await store.get(queued)
    assert before is not None and after is not None
    assert (after.state, after.run_at, after.attempt) == (JobState.QUEUED, before.run_at, 0)


async def test_requeued_job_keeps_its_idempotency_key_reserved(store: Store) -> None:
    job_id = await _dead_job(store, idempotency_key="invoice-7", max_attempts=1)
    assert await store.requeue([job_id], now=T0 + 10) == {job_id: "queued"}
    [again] = await store.enqueue_many([new_job(idempotency_key="invoice-7")], now=T0 + 11)
    assert (again.id, again.duplicate) == (job_id, True), (
        "a requeued job is active again: its key must dedupe like any active job's")


async def test_requeue_now_of_a_job_waiting_to_retry_keeps_its_key(store: Store) -> None:
    job_id = await enqueue(store, idempotency_key="k")
    claimed = await claim_one(store)
    await store.settle([Fail(claimed.lease, error(1), retry_in=600)], now=T0)
    await store.requeue([job_id], now=T0 + 1)
    [again] = await store.enqueue_many([new_job(idempotency_key="k")], now=T0 + 2)
    assert (again.id, again.duplicate) == (job_id, True)


# --- tenants ----------------------------------------------------------------------------------


async def test_tenant_scopes_get(store: Store) -> None:
    job_id = await enqueue(store, tenant="org-a")
    assert (await store.get(job_id, tenant="org-a")) is not None
    assert await store.get(job_id, tenant="org-b") is None
    assert (await store.get(job_id)) is not None  # no tenant: the admin view


async def test_tenant_scopes_cancel(store: Store) -> None:
    job_id = await enqueue(store, tenant="org-a")
    assert await store.cancel([job_id], tenant="org-b", now=T0) == {job_id: "not_found"}
    got = await store.get(job_id)
    assert got is not None and got.state == JobState.QUEUED
    assert await store.cancel([job_id], tenant="org-a", now=T0) == {job_id: "cancelled"}


async def test_tenant_scopes_cancel_of_a_running_job(store: Store) -> None:
    job_id = await enqueue(store, tenant="org-a")
    await claim_one(store)
    assert await store.cancel([job_id], tenant="org-b", now=T0) == {job_id: "not_found"}
    got = await store.get(job_id)
    assert got is not None and got.cancel_requested is False


async def test_tenant_scopes_requeue(store: Store) -> None:
    job_id = await enqueue(store, tenant="org-a")
    await store.cancel([job_id], now=T0)
    assert await store.requeue([job_id], tenant="org-b", now=T0 + 1) == {job_id: "not_found"}
    got = await store.get(job_id)
    assert got is not None and got.state == JobState.CANCELLED
    assert await store.requeue([job_id], tenant="org-a", now=T0 + 1) == {job_id: "queued"}


async def test_tenant_scopes_list_and_stats(store: Store) -> None:
    a = [await enqueue(store, tenant="org-a") for _ in range(2)]
    b = await enqueue(store, tenant="org-b")
    await enqueue(store)

    listed = await store.list_jobs(JobFilter(tenant="org-a"))
    assert sorted(j.id for j in listed) == sorted(a)
    assert [j.id for j in await store.list_jobs(JobFilter(tenant="org-b"))] == [b]

    assert (await store.stats(tenant="org-a", now=T0)).by_state.get("queued") == 2
    assert (await store.stats(tenant="org-b", now=T0)).by_state.get("queued") == 1
    assert (await store.stats(now=T0)).by_state.get("queued") == 4
    [queue_a] = await store.queues(tenant="org-a", now=T0)
    assert queue_a.counts.get("queued") == 2


# --- discard ----------------------------------------------------------------------------------


async def test_discard_deletes_finished_jobs_only_within_the_tenant(store: Store) -> None:
    dead = await enqueue(store, tenant="org-a", max_attempts=1)
    claimed = await claim_one(store)
    await store.settle([Fail(claimed.lease, error(1))], now=T0 + 1)
    done = await enqueue(store, tenant="org-a")
    finished = await claim_one(store)
    await store.settle([Complete(finished.lease)], now=T0 + 2)
    waiting = await enqueue(store, tenant="org-a")
    other = await enqueue(store, tenant="org-b")
    await store.cancel([other], now=T0 + 3)

    assert await store.discard([dead, done, waiting, other, new_id()], tenant="org-a") == 2
    assert await store.get(dead) is None and await store.get(done) is None
    assert await store.get(waiting) is not None, "a queued job is not discarded"
    assert await store.get(other) is not None, "another tenant's job is untouched"
    assert await store.discard([other]) == 1
