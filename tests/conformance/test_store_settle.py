"""Settling claimed jobs: outcomes, retries, the errors history and fencing by the lease."""

from __future__ import annotations

import orjson
import pytest

from conveyor.job import JobState, Lease
from conveyor.store.base import (
    Cancelled,
    Complete,
    Fail,
    Progress,
    Release,
    Settle,
    Snooze,
    Store,
)

from .support import LEASE, T0, claim_ids, claim_one, enqueue, error, new_job

pytestmark = pytest.mark.anyio


async def test_complete_stores_the_result(store: Store) -> None:
    job_id = await enqueue(store)
    claimed = await claim_one(store)
    result = orjson.dumps({"sent": True, "n": [1, 2]})
    assert await store.settle([Complete(claimed.lease, result)], now=T0 + 3) == [True]

    got = await store.get(job_id)
    assert got is not None
    assert got.state == JobState.COMPLETED
    assert got.result == {"sent": True, "n": [1, 2]}
    assert got.finished_at == pytest.approx(T0 + 3)
    assert got.started_at == pytest.approx(T0)
    assert got.attempt == 1
    assert got.errors == ()


async def test_complete_without_result(store: Store) -> None:
    job_id = await enqueue(store)
    claimed = await claim_one(store)
    assert await store.settle([Complete(claimed.lease)], now=T0 + 1) == [True]
    got = await store.get(job_id)
    assert got is not None and got.state == JobState.COMPLETED and got.result is None


async def test_a_job_is_settled_only_once(store: Store) -> None:
    await enqueue(store)
    claimed = await claim_one(store)
    assert await store.settle([Complete(claimed.lease, b"1")], now=T0 + 1) == [True]
    assert await store.settle([Complete(claimed.lease, b"2"),
                               Fail(claimed.lease, error(1))], now=T0 + 2) == [False, False]
    got = await store.get(claimed.id)
    assert got is not None and got.result == 1 and got.errors == ()


def _every_record(lease: Lease) -> list[Settle]:
    return [Complete(lease, b"1"), Fail(lease, error(1), retry_in=5),
            Fail(lease, error(1), retry_in=None), Snooze(lease, 10), Cancelled(lease),
            Release(lease), Progress(lease, 50.0, "half")]


@pytest.mark.parametrize("index", range(7), ids=[
    "complete", "fail-retry", "fail-dead", "snooze", "cancelled", "release", "progress"])
async def test_wrong_token_cannot_settle(store: Store, index: int) -> None:
    job_id = await enqueue(store)
    claimed = await claim_one(store)
    stale = Lease(job_id, claimed.token + 1)
    before = await store.get(job_id)

    assert await store.settle([_every_record(stale)[index]], now=T0 + 1) == [False]
    assert await store.get(job_id) == before


@pytest.mark.parametrize("index", range(7), ids=[
    "complete", "fail-retry", "fail-dead", "snooze", "cancelled", "release", "progress"])
async def test_stale_lease_after_rescue_and_reclaim_cannot_settle(store: Store,
                                                                  index: int) -> None:
    job_id = await enqueue(store, max_attempts=5)
    first = await claim_one(store, worker_id="worker-old")
    assert await store.rescue_expired(now=T0 + LEASE + 1) == 1
    second = await claim_one(store, now=T0 + LEASE + 2, worker_id="worker-new")
    assert second.id == job_id and second.token != first.token
    before = await store.get(job_id)

    assert await store.settle([_every_record(first.lease)[index]], now=T0 + 40) == [False]
    after = await store.get(job_id)
    assert after == before
    assert after is not None and after.state == JobState.RUNNING
    assert after.worker_id == "worker-new"
    # the current holder still settles normally
    assert await store.settle([_every_record(second.lease)[index]], now=T0 + 41) == [True]


async def test_stale_lease_after_rescue_cannot_settle_the_queued_job(store: Store) -> None:
    job_id = await enqueue(store)
    first = await claim_one(store)
    await store.rescue_expired(now=T0 + LEASE + 1)
    assert await store.settle([Complete(first.lease, b"1")], now=T0 + 40) == [False]
    got = await store.get(job_id)
    assert got is not None and got.state == JobState.QUEUED and got.result is None


async def test_settle_reports_each_item_of_a_batch(store: Store) -> None:
    for _ in range(3):
        await enqueue(store)
    a, b, c = (await store.claim(None, "worker-1", 3, LEASE, now=T0))
    results = await store.settle([Complete(a.lease, b"1"), Complete(Lease(b.id, b.token + 1)),
                                  Fail(c.lease, error(1), retry_in=None)], now=T0 + 1)
    assert results == [True, False, True]
    states = [(await store.get(j.id)).state for j in (a, b, c)]  # type: ignore[union-attr]
    assert states == [JobState.COMPLETED, JobState.RUNNING, JobState.DEAD]


async def test_fail_with_retry_in_schedules_the_next_attempt(store: Store) -> None:
    job_id = await enqueue(store, max_attempts=3)
    claimed = await claim_one(store)
    failure = error(1, "smtp down", at=T0 + 2)
    assert await store.settle([Fail(claimed.lease, failure, retry_in=20)], now=T0 + 2) == [True]

    got = await store.get(job_id)
    assert got is not None
    assert got.state == JobState.SCHEDULED
    assert got.run_at == pytest.approx(T0 + 22)
    assert got.attempt == 1
    assert got.finished_at is None and got.dead_reason is None
    assert got.errors == (failure,)
    assert await claim_ids(store, now=T0 + 21) == []
    await store.promote_scheduled(now=T0 + 22)
    assert await claim_ids(store, now=T0 + 22) == [job_id]


async def test_fail_without_retry_is_dead_with_its_reason(store: Store) -> None:
    job_id = await enqueue(store)
    claimed = await claim_one(store)
    assert await store.settle([Fail(claimed.lease, error(1), retry_in=None,
                                    dead_reason="discarded")], now=T0 + 4) == [True]
    got = await store.get(job_id)
    assert got is not None
    assert got.state == JobState.DEAD
    assert got.dead_reason == "discarded"
    assert got.finished_at == pytest.approx(T0 + 4)
    assert [e.attempt for e in got.errors] == [1]


async def test_fail_default_dead_reason_is_failed(store: Store) -> None:
    job_id = await enqueue(store)
    claimed = await claim_one(store)
    await store.settle([Fail(claimed.lease, error(1))], now=T0 + 1)
    got = await store.get(job_id)
    assert got is not None and (got.state, got.dead_reason) == (JobState.DEAD, "failed")


async def test_errors_keep_one_entry_per_failed_attempt(store: Store) -> None:
    job_id = await enqueue(store, max_attempts=3)
    now = T0
    for attempt in (1, 2, 3):
        claimed = await claim_one(store, now=now, worker_id=f"worker-{attempt}")
        assert claimed.attempt == attempt
        retry_in = 10.0 if attempt < 3 else None
        failure = error(attempt, f"failure {attempt}", worker=f"worker-{attempt}", at=now)
        assert await store.settle([Fail(claimed.lease, failure, retry_in)], now=now) == [True]
        now += 10
        await store.promote_scheduled(now=now)

    got = await store.get(job_id)
    assert got is not None
    assert got.state == JobState.DEAD and got.dead_reason == "failed"
    assert [(e.attempt, e.message, e.worker) for e in got.errors] == [
        (1, "failure 1", "worker-1"), (2, "failure 2", "worker-2"), (3, "failure 3", "worker-3")]
    assert all(e.type == "ValueError" and e.traceback and "ValueError" in e.traceback
               and e.host == "host-a" for e in got.errors)
    assert [e.at for e in got.errors] == [pytest.approx(T0), pytest.approx(T0 + 10),
                                          pytest.approx(T0 + 20)]


async def test_snooze_reschedules_without_counting_an_attempt(store: Store) -> None:
    job_id = await enqueue(store, max_attempts=1)
    claimed = await claim_one(store)
    assert await store.settle([Snooze(claimed.lease, 30)], now=T0 + 5) == [True]
    got = await store.get(job_id)
    assert got is not None
    assert got.state == JobState.SCHEDULED
    assert got.run_at == pytest.approx(T0 + 35)
    assert got.attempt == 0
    assert got.errors == ()

    await store.promote_scheduled(now=T0 + 35)
    again = await claim_one(store, now=T0 + 35)
    assert again.attempt == 1  # still its first counted attempt


async def test_release_gives_the_job_back_with_the_attempt_undone(store: Store) -> None:
    job_id = await enqueue(store)
    claimed = await claim_one(store)
    assert await store.settle([Release(claimed.lease)], now=T0 + 1) == [True]
    got = await store.get(job_id)
    assert got is not None
    assert (got.state, got.attempt, got.errors) == (JobState.QUEUED, 0, ())
    again = await claim_one(store, now=T0 + 2, worker_id="worker-2")
    assert (again.id, again.attempt) == (job_id, 1)
    assert again.token != claimed.token


async def test_progress_is_stored_while_running(store: Store) -> None:
    job_id = await enqueue(store)
    claimed = await claim_one(store)
    assert await store.settle([Progress(claimed.lease, 42.5, "thumbnails")], now=T0 + 1) == [True]
    got = await store.get(job_id)
    assert got is not None
    assert (got.state, got.progress, got.progress_step) == (JobState.RUNNING, 42.5, "thumbnails")
    await store.settle([Progress(claimed.lease, 80.0)], now=T0 + 2)
    got = await store.get(job_id)
    assert got is not None and (got.progress, got.progress_step) == (80.0, None)


async def test_cancelled_record_ends_the_job_cancelled(store: Store) -> None:
    job_id = await enqueue(store)
    claimed = await claim_one(store)
    assert await store.settle([Cancelled(claimed.lease, "user asked")], now=T0 + 3) == [True]
    got = await store.get(job_id)
    assert got is not None
    assert got.state == JobState.CANCELLED
    assert got.finished_at == pytest.approx(T0 + 3)


async def test_a_trip_of_many_completions_settles_each_by_its_own_lease(store: Store) -> None:
    """Many completions in one settle, among other outcomes and stale leases (SQLite writes
    the completions in one statement): each reports and stores exactly what it would alone:
    its own result, its progress made 100, its fence."""
    for _ in range(8):
        await enqueue(store)
    jobs = await store.claim(None, "worker-1", 8, LEASE, now=T0)
    assert await store.settle([Progress(jobs[1].lease, 40.0)], now=T0) == [True]
    results = [orjson.dumps({"n": n}) for n in range(8)]
    items: list[Settle] = [
        Complete(jobs[0].lease, results[0]), Complete(jobs[1].lease, results[1]),
        Fail(jobs[2].lease, error(1), retry_in=None), Complete(jobs[3].lease),
        Complete(Lease(jobs[4].id, jobs[4].token + 1), results[4]),
        Progress(jobs[5].lease, 70.0), Complete(jobs[6].lease, results[6]),
        Complete(Lease("no-such-job", 1), b"1"), Complete(jobs[7].lease, results[7])]
    assert await store.settle(items, now=T0 + 1) == [
        True, True, True, True, False, True, True, False, True]
    got = [await store.get(job.id) for job in jobs]
    assert [j.state if j else None for j in got] == [
        JobState.COMPLETED, JobState.COMPLETED, JobState.DEAD, JobState.COMPLETED,
        JobState.RUNNING, JobState.RUNNING, JobState.COMPLETED, JobState.COMPLETED]
    assert [j.result if j else None for j in got] == [
        {"n": 0}, {"n": 1}, None, None, None, None, {"n": 6}, {"n": 7}]
    assert [j.progress if j else None for j in got] == [
        None, 100, None, None, None, 70.0, None, None]
    assert all(j is not None and j.finished_at == T0 + 1 for j in (got[0], got[1], got[6]))
    # a completion written in the batch is final: its lease settles nothing more
    assert await store.settle([Complete(jobs[0].lease), Complete(jobs[6].lease)],
                              now=T0 + 2) == [False, False]


async def test_a_trip_of_many_failures_settles_each_as_it_would_alone(store: Store) -> None:
    """Many failures in one settle (SQLite writes them in one statement), among completions
    and stale leases: a retry due now is queued, a later one scheduled, a failure without a
    retry dead with its own reason; each gets its own error appended and keeps or frees its
    idempotency key as alone; a stale lease's failure writes nothing."""
    ids = [await enqueue(store, max_attempts=3, idempotency_key=f"k{n}") for n in range(7)]
    jobs = {job.id: job for job in await store.claim(None, "worker-1", 7, LEASE, now=T0)}
    first, second, third, fourth, fifth, sixth, seventh = (jobs[i] for i in ids)
    items: list[Settle] = [
        Fail(first.lease, error(1, "a"), retry_in=0), Complete(second.lease, b"2"),
        Fail(third.lease, error(1, "c"), retry_in=20),
        Fail(Lease(fourth.id, fourth.token + 1), error(1, "stale"), retry_in=5),
        Fail(fifth.lease, error(1, "e"), dead_reason="discarded"),
        Complete(sixth.lease, b"6"), Fail(seventh.lease, error(1, "g"))]
    assert await store.settle(items, now=T0 + 1) == [True, True, True, False, True, True, True]
    got = {job_id: await store.get(job_id) for job_id in ids}
    states = {job_id: (j.state, j.run_at, j.finished_at, j.dead_reason,
                       [(e.attempt, e.message) for e in j.errors])
              for job_id, j in got.items() if j is not None}
    assert states == {
        first.id: (JobState.QUEUED, T0 + 1, None, None, [(1, "a")]),
        second.id: (JobState.COMPLETED, T0, T0 + 1, None, []),
        third.id: (JobState.SCHEDULED, T0 + 21, None, None, [(1, "c")]),
        fourth.id: (JobState.RUNNING, T0, None, None, []),
        fifth.id: (JobState.DEAD, T0, T0 + 1, "discarded", [(1, "e")]),
        sixth.id: (JobState.COMPLETED, T0, T0 + 1, None, []),
        seventh.id: (JobState.DEAD, T0, T0 + 1, "failed", [(1, "g")])}
    # a retrying job still holds its key; a finished one (no unique_for) frees it
    again = await store.enqueue_many([new_job(idempotency_key=f"k{n}") for n in range(7)],
                                     now=T0 + 2)
    assert [r.duplicate for r in again] == [True, False, True, True, False, False, False]
    # the failures written in the batch are final: their leases settle nothing more
    assert await store.settle([Fail(first.lease, error(1)), Fail(third.lease, error(1))],
                              now=T0 + 3) == [False, False]
