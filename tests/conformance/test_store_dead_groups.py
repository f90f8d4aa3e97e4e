"""An error group's dead jobs (issue 15): per (tenant, fingerprint), exactly the dead jobs
still stored whose death was a failure in that group, through every way a job enters or
leaves the dead state: it dies, an operator retries it (alone or its whole group), discards
it, retention prunes it, it dies again in another group, and the attempt history is pruned
before the job is. Read through error_groups (dead_jobs) and group_dead_jobs."""

from __future__ import annotations

import pytest

from conveyor.history.records import AttemptRecord, TimeRange
from conveyor.job import ClaimedJob
from conveyor.store.base import Complete, Fail, Retention, Store

from .support import T0, claim_one, enqueue, error

pytestmark = pytest.mark.anyio

FP_A, FP_B = "a" * 16, "b" * 16
ALL = TimeRange(T0 - 3600, T0 + 3600)


def record(job: ClaimedJob, fp: str, at: float) -> AttemptRecord:
    return AttemptRecord(task=job.task, queue=job.queue, tenant=job.tenant, number=job.attempt,
                         started_at=at, ended_at=at + 0.5, worker_id="worker-1", host="host-a",
                         pid=4242, cpu=0.1, rss=None, fingerprint=fp,
                         error_message=f"failed in {fp[0]}", error_traceback=None)


async def fail(store: Store, fp: str, at: float, *, retry_in: float | None = None,
               reason: str = "failed") -> str:
    """Claim the next job and fail its attempt in group `fp` (dead when retry_in is None)."""
    job = await claim_one(store, now=at)
    assert await store.settle([Fail(job.lease, error(job.attempt, f"failed in {fp[0]}"),
                                    retry_in, reason, attempt=record(job, fp, at))],
                              now=at) == [True]
    return job.id


async def die(store: Store, fp: str, at: float, tenant: str | None = None,
              max_attempts: int = 1) -> str:
    await enqueue(store, now=at, tenant=tenant, max_attempts=max_attempts)
    return await fail(store, fp, at)


async def dead_counts(store: Store, tenant: str | None = None) -> dict[str, int]:
    """Each listed group's dead jobs (groups with none left out)."""
    groups = await store.error_groups(TimeRange(ALL.start, ALL.end, tenant=tenant))
    return {g.fingerprint: g.dead_jobs for g in groups if g.dead_jobs}


async def test_each_death_counts_once_in_its_group(store: Store) -> None:
    a = [await die(store, FP_A, T0 + n) for n in range(3)]
    b = await die(store, FP_B, T0 + 5)
    assert await dead_counts(store) == {FP_A: 3, FP_B: 1}
    assert await store.group_dead_jobs(FP_A) == sorted(a)
    assert await store.group_dead_jobs(FP_B) == [b]
    await store.fold_history()
    assert await dead_counts(store) == {FP_A: 3, FP_B: 1}
    assert await store.group_dead_jobs(FP_A) == sorted(a)


async def test_a_failure_with_attempts_left_is_not_dead(store: Store) -> None:
    await enqueue(store, max_attempts=2)
    job_id = await fail(store, FP_A, T0, retry_in=0)
    assert await dead_counts(store) == {}
    assert await store.group_dead_jobs(FP_A) == []
    assert await fail(store, FP_B, T0 + 1) == job_id  # the second attempt dies in B
    assert await dead_counts(store) == {FP_B: 1}
    assert await store.group_dead_jobs(FP_A) == []


async def test_a_retried_dead_job_leaves_its_group(store: Store) -> None:
    a = [await die(store, FP_A, T0 + n) for n in range(3)]
    assert (await store.requeue(a[:1], now=T0 + 10))[a[0]] == "queued"
    assert await dead_counts(store) == {FP_A: 2}
    assert await store.group_dead_jobs(FP_A) == sorted(a[1:])
    job = await claim_one(store, now=T0 + 11)  # it runs again and succeeds
    assert await store.settle([Complete(job.lease)], now=T0 + 11) == [True]
    assert await dead_counts(store) == {FP_A: 2}


async def test_a_retried_job_that_dies_again_elsewhere_moves_group(store: Store) -> None:
    job_id = await die(store, FP_A, T0)
    await store.requeue([job_id], now=T0 + 10)
    assert await fail(store, FP_B, T0 + 11) == job_id  # attempt 1 again, another error
    assert await dead_counts(store) == {FP_B: 1}
    assert await store.group_dead_jobs(FP_A) == []
    assert await store.group_dead_jobs(FP_B) == [job_id]
    await store.fold_history()
    assert await dead_counts(store) == {FP_B: 1}
    assert await store.group_dead_jobs(FP_A) == []


async def test_a_retried_job_that_dies_again_in_its_group_counts_once(store: Store) -> None:
    job_id = await die(store, FP_A, T0)
    await store.requeue([job_id], now=T0 + 10)
    await fail(store, FP_A, T0 + 11)
    assert await dead_counts(store) == {FP_A: 1}
    assert await store.group_dead_jobs(FP_A) == [job_id]


async def test_discarded_and_pruned_dead_jobs_leave_their_group(store: Store) -> None:
    a = [await die(store, FP_A, T0 + n) for n in range(4)]
    assert await store.discard(a[:1]) == 1
    assert await dead_counts(store) == {FP_A: 3}
    assert await store.prune_kept("dead", keep=2, now=T0 + 20) == 1
    assert await dead_counts(store) == {FP_A: 2}
    assert await store.group_dead_jobs(FP_A) == sorted(a[2:])
    assert await store.prune(Retention(completed=1e9, dead=1.0, cancelled=1e9),
                             now=T0 + 3000) == 2
    assert await dead_counts(store) == {}
    assert await store.group_dead_jobs(FP_A) == []


async def test_a_dead_job_stays_in_its_group_after_its_history_is_pruned(
        store: Store) -> None:
    job_id = await die(store, FP_A, T0)
    await store.prune_history(attempts_before=T0 + 100, rollups_before=T0 - 86400)
    assert await store.group_dead_jobs(FP_A) == [job_id]  # retry_group still finds it


async def test_retrying_or_discarding_a_whole_group(store: Store) -> None:
    a = [await die(store, FP_A, T0 + n) for n in range(3)]
    b = [await die(store, FP_B, T0 + 5 + n) for n in range(2)]
    outcomes = await store.requeue(await store.group_dead_jobs(FP_A), now=T0 + 10)
    assert sorted(outcomes) == sorted(a) and set(outcomes.values()) == {"queued"}
    assert await dead_counts(store) == {FP_B: 2}
    assert await store.discard(await store.group_dead_jobs(FP_B)) == 2
    assert await dead_counts(store) == {}
    assert await store.group_dead_jobs(FP_B) == [] and b


async def test_dead_counts_are_per_tenant(store: Store) -> None:
    acme = [await die(store, FP_A, T0 + n, tenant="acme") for n in range(2)]
    globex = [await die(store, FP_A, T0 + 5 + n, tenant="globex") for n in range(3)]
    assert await dead_counts(store, "acme") == {FP_A: 2}
    assert await dead_counts(store, "globex") == {FP_A: 3}
    assert await dead_counts(store) == {FP_A: 5}
    assert await store.group_dead_jobs(FP_A, tenant="acme") == sorted(acme)
    # another tenant's ids are not this tenant's to discard or retry
    assert await store.discard(globex, tenant="acme") == 0
    assert await store.discard(acme[:1], tenant="acme") == 1
    await store.requeue(globex[:1], tenant="globex", now=T0 + 20)
    assert await dead_counts(store, "acme") == {FP_A: 1}
    assert await dead_counts(store, "globex") == {FP_A: 2}
    assert await dead_counts(store) == {FP_A: 3}
    assert await store.group_dead_jobs(FP_A) == sorted(acme[1:] + globex[1:])
