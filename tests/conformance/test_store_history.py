"""Attempt history: rows written by settle and rescue (fenced like them), minute rollups with
percentiles, error groups and their dead jobs, the analytics reads, tenant scoping and a
retention of its own."""

from __future__ import annotations

import dataclasses

import pytest

from conveyor.history.fingerprint import fingerprint
from conveyor.history.records import AttemptRecord, TimeRange
from conveyor.job import ClaimedJob, JobState
from conveyor.store.base import Cancelled, Complete, Fail, Retention, Snooze, Store

from .support import LEASE, T0, claim_one, enqueue, error, worker_info

pytestmark = pytest.mark.anyio

ALL = TimeRange(T0 - 3600, T0 + 3600)


def record(job: ClaimedJob, took: float = 0.5, *, worker: str = "worker-1",
           fp: str | None = None, message: str | None = None,
           start: float = T0) -> AttemptRecord:
    return AttemptRecord(task=job.task, queue=job.queue, tenant=job.tenant, number=job.attempt,
                         started_at=start, ended_at=start + took, worker_id=worker, host="host-a",
                         pid=4242, cpu=took / 2, rss=50_000_000, fingerprint=fp,
                         error_message=message, error_traceback=None)


async def test_each_settled_attempt_is_one_row(store: Store) -> None:
    job_id = await enqueue(store, max_attempts=3)
    fp = fingerprint("ValueError", "boom 1", "tasks.py:charge")
    for attempt in (1, 2):
        job = await claim_one(store, now=T0 + attempt)
        fail = Fail(job.lease, error(attempt), retry_in=0,
                    attempt=record(job, fp=fp, message=f"boom {attempt}"))
        assert await store.settle([fail], now=T0 + attempt) == [True]
    job = await claim_one(store, now=T0 + 5)
    assert await store.settle([Complete(job.lease, attempt=record(job, 0.25))],
                              now=T0 + 5) == [True]

    rows = await store.job_attempts(job_id)
    assert [(r.attempt, r.outcome) for r in rows] == [(1, "retried"), (2, "retried"),
                                                      (3, "completed")]
    assert rows[0].fingerprint == fp and rows[0].error_type == "ValueError"
    assert rows[0].error_message == "boom 1"
    assert rows[2].fingerprint is None and rows[2].duration == pytest.approx(0.25)
    assert (rows[2].worker_id, rows[2].host, rows[2].cpu, rows[2].rss) == (
        "worker-1", "host-a", pytest.approx(0.125), 50_000_000)
    assert (rows[2].task, rows[2].queue) == ("demo.task", "default")


async def test_a_refused_settle_records_no_attempt(store: Store) -> None:
    job_id = await enqueue(store)
    job = await claim_one(store)
    stale = job.lease._replace(token=job.token + 1)
    assert await store.settle([Complete(stale, attempt=record(job))], now=T0 + 1) == [False]
    assert await store.job_attempts(job_id) == []


async def test_every_outcome_is_recorded_in_one_batch(store: Store) -> None:
    ids = [await enqueue(store, max_attempts=1) for _ in range(4)]
    jobs = {j.id: j for j in await store.claim(None, "worker-1", 4, LEASE, now=T0)}
    first, second, third, fourth = (jobs[i] for i in ids)
    items = [Complete(first.lease, attempt=record(first)),
             Fail(second.lease, error(1), None, attempt=record(second, fp="f" * 16)),
             Snooze(third.lease, 60, attempt=record(third)),
             Cancelled(fourth.lease, attempt=record(fourth))]
    assert await store.settle(items, now=T0 + 1) == [True] * 4
    outcomes = [(await store.job_attempts(i))[0].outcome for i in ids]
    assert outcomes == ["completed", "dead", "snoozed", "cancelled"]
    [summary] = await store.task_analytics(ALL)
    assert summary.counts == {"completed": 1, "retried": 0, "dead": 1, "cancelled": 1,
                              "snoozed": 1, "lost": 0}


async def test_a_mixed_batch_records_only_its_applied_items(store: Store) -> None:
    """Stale and current items of several kinds in one settle: every figure (attempt rows,
    task, worker and error rollups) counts exactly the items that applied."""
    ids = [await enqueue(store, max_attempts=1) for _ in range(6)]
    jobs = {j.id: j for j in await store.claim(None, "worker-1", 6, LEASE, now=T0)}
    j = [jobs[i] for i in ids]

    def stale(job: ClaimedJob) -> ClaimedJob:
        return dataclasses.replace(job, token=job.token + 1)

    items = [Complete(j[0].lease, attempt=record(j[0])),
             Complete(stale(j[1]).lease, attempt=record(j[1])),
             Fail(j[2].lease, error(1), None, attempt=record(j[2], fp="d" * 16)),
             Fail(stale(j[3]).lease, error(1), None, attempt=record(j[3], fp="d" * 16)),
             Fail(j[4].lease, error(1), 30, attempt=record(j[4], fp="d" * 16)),
             Snooze(stale(j[5]).lease, 60, attempt=record(j[5]))]
    assert await store.settle(items, now=T0 + 1) == [True, False, True, False, True, False]
    assert [len(await store.job_attempts(i)) for i in ids] == [1, 0, 1, 0, 1, 0]
    [summary] = await store.task_analytics(ALL)
    assert summary.counts == {"completed": 1, "retried": 1, "dead": 1, "cancelled": 0,
                              "snoozed": 0, "lost": 0}
    [group] = await store.error_groups(ALL)
    assert group.count == 2
    [long] = await store.error_groups(TimeRange(T0 - 86400, T0 + 60))
    assert long.count == 2
    [worker] = await store.worker_analytics(TimeRange(T0 - 86400, T0 + 60), now=T0 + 1)
    assert (worker.attempts, worker.failures) == (3, 2)
    assert await store.settle(items[:1], now=T0 + 2) == [False]  # settled twice: once counted
    assert len(await store.job_attempts(ids[0])) == 1


async def test_one_lease_under_two_kinds_in_a_batch_records_the_applied_one(
        store: Store) -> None:
    """The same lease ended twice in one batch (a complete and a fail): one item applies,
    and exactly its attempt is recorded, with its outcome."""
    job_id = await enqueue(store, max_attempts=1)
    job = await claim_one(store)
    items = [Complete(job.lease, attempt=record(job)),
             Fail(job.lease, error(1), None, attempt=record(job, fp="e" * 16))]
    applied = await store.settle(items, now=T0 + 1)
    assert sorted(applied) == [False, True]
    outcome = "completed" if applied[0] else "dead"
    assert [r.outcome for r in await store.job_attempts(job_id)] == [outcome]
    [summary] = await store.task_analytics(ALL)
    assert sum(summary.counts.values()) == 1


async def test_a_rescued_attempt_is_recorded_as_lost(store: Store) -> None:
    job_id = await enqueue(store, max_attempts=2)
    await store.heartbeat(worker_info(), [], LEASE, now=T0)
    await claim_one(store, now=T0)
    assert await store.rescue_expired(now=T0 + LEASE + 5) == 1
    [lost] = await store.job_attempts(job_id)
    assert (lost.outcome, lost.attempt, lost.worker_id) == ("lost", 1, "worker-1")
    assert lost.error_type == "WorkerLost"
    assert lost.duration == pytest.approx(LEASE + 5)
    [summary] = await store.task_analytics(ALL)
    assert summary.counts["lost"] == 1 and summary.failed == 1


async def test_rollups_give_percentiles_and_series(store: Store) -> None:
    durations = [0.010] * 90 + [1.0] * 9 + [8.0]
    for took in durations:
        await enqueue(store, task="report")
        job = await claim_one(store)
        await store.settle([Complete(job.lease, attempt=record(job, took))], now=T0 + 1)
    [summary] = await store.task_analytics(TimeRange(T0 - 60, T0 + 60 * 29), points=30)
    assert summary.task == "report" and summary.total == 100
    assert summary.p50 is not None and 0.008 <= summary.p50 <= 0.0165
    assert summary.p95 is not None and 0.5 <= summary.p95 <= 1.0
    assert summary.p99 is not None and 1.0 <= summary.p99 <= 2.0
    assert summary.mean == pytest.approx(sum(durations) / 100)
    assert len(summary.series) == 31  # a point a minute
    assert summary.series[1] == 100 and sum(summary.series) == 100  # T0: the 2nd minute
    [day] = await store.task_analytics(TimeRange(T0 - 86400, T0 + 60), points=30)
    assert len(day.series) == 25 and day.series[-1] == 100  # hours: 24 whole, 1 begun
    assert (day.p50, day.p95, day.total) == (summary.p50, summary.p95, 100)
    [month] = await store.task_analytics(TimeRange(T0 - 30 * 86400, T0 + 60), points=30)
    assert len(month.series) == 31 and month.series[-1] == 100  # days
    assert month.counts == summary.counts


async def test_error_groups_and_their_dead_jobs(store: Store) -> None:
    fp, other = "a" * 16, "b" * 16
    dead = []
    for n in range(3):
        job_id = await enqueue(store, max_attempts=1, task=f"task{n % 2}")
        job = await claim_one(store)
        await store.settle([Fail(job.lease, error(1, f"order {n} gone"), None,
                                 attempt=record(job, fp=fp, message=f"order {n} gone",
                                                start=T0 + n))],
                           now=T0 + n)
        dead.append(job_id)
    await enqueue(store, max_attempts=1)
    job = await claim_one(store)
    await store.settle([Fail(job.lease, error(1), None, attempt=record(job, fp=other))],
                       now=T0 + 9)

    groups = await store.error_groups(ALL)
    assert [(g.fingerprint, g.count) for g in groups] == [(fp, 3), (other, 1)]
    group = groups[0]
    assert group.tasks == ("task0", "task1") and group.dead_jobs == 3
    assert group.type == "ValueError" and group.message == "order 2 gone"
    assert group.sample_job == dead[2]
    assert group.first_seen == pytest.approx(T0 + 0.5)
    assert await store.group_dead_jobs(fp) == sorted(dead)
    long = await store.error_groups(TimeRange(T0 - 86400, T0 + 60))  # from the rollups
    assert [(g.fingerprint, g.count, g.tasks, g.dead_jobs, g.sample_job) for g in long] == [
        (g.fingerprint, g.count, g.tasks, g.dead_jobs, g.sample_job) for g in groups]
    assert [(g.first_seen, g.last_seen) for g in long] == [
        (g.first_seen, g.last_seen) for g in groups]
    month = await store.error_groups(TimeRange(T0 - 30 * 86400, T0 + 60, tenant="acme"))
    assert month == []
    await store.requeue(dead[:1])
    assert await store.group_dead_jobs(fp) == sorted(dead[1:])


async def test_figures_are_scoped_to_a_tenant(store: Store) -> None:
    for tenant in ("acme", "globex", "globex"):
        await enqueue(store, tenant=tenant, max_attempts=1)
        job = await claim_one(store)
        await store.settle([Fail(job.lease, error(1), None,
                                 attempt=record(job, fp="c" * 16))], now=T0)
    acme = TimeRange(ALL.start, ALL.end, tenant="acme")
    [summary] = await store.task_analytics(acme)
    assert summary.total == 1
    [group] = await store.error_groups(acme)
    assert group.count == 1 and group.dead_jobs == 1
    assert len(await store.group_dead_jobs("c" * 16, tenant="globex")) == 2
    assert [a.tenant for a in await store.slow_attempts(acme)] == ["acme"]
    [worker] = await store.worker_analytics(acme, now=T0)
    assert worker.attempts == 1
    assert len(await store.slow_attempts(ALL)) == 3
    [hours] = await store.worker_analytics(TimeRange(T0 - 86400, T0 + 60, tenant="globex"))
    assert hours.attempts == 2 and hours.failures == 2


async def test_slow_attempts_and_workers(store: Store) -> None:
    await store.heartbeat(worker_info("worker-1"), [], LEASE, now=T0)
    for took, worker in ((0.1, "worker-1"), (3.0, "worker-2"), (1.0, "worker-1")):
        await enqueue(store)
        job = await claim_one(store, worker_id=worker)
        await store.settle([Complete(job.lease, attempt=record(job, took, worker=worker))],
                           now=T0 + 1)
    slow = await store.slow_attempts(ALL, limit=2)
    assert [a.duration for a in slow] == [pytest.approx(3.0), pytest.approx(1.0)]
    await enqueue(store, task="busy")
    await claim_one(store, now=T0 + 2, worker_id="worker-1")
    workers = {w.worker_id: w for w in await store.worker_analytics(ALL, now=T0 + 2)}
    one, two = workers["worker-1"], workers["worker-2"]
    assert (one.attempts, one.busy, one.alive, one.current) == (
        2, pytest.approx(1.1), True, ("busy",))
    assert one.busy_share == pytest.approx(1.1 / (7200 * 4))
    assert one.cpu == pytest.approx(0.55) and one.peak_rss == 50_000_000
    assert (two.attempts, two.alive, two.busy_share) == (1, False, None)
    assert two.throughput == pytest.approx(60 / 7200)
    day = {w.worker_id: w for w in await store.worker_analytics(
        TimeRange(T0 - 86400, T0 + 60), now=T0 + 2)}  # from the hour rollups
    for worker_id, short in workers.items():
        long = day[worker_id]
        assert (long.attempts, long.failures, long.peak_rss, long.host) == (
            short.attempts, short.failures, short.peak_rss, short.host)
        assert (long.busy, long.cpu) == (pytest.approx(short.busy), pytest.approx(short.cpu))


async def test_history_outlives_pruned_jobs_and_has_its_own_retention(store: Store) -> None:
    job_id = await enqueue(store)
    job = await claim_one(store)
    await store.settle([Complete(job.lease, attempt=record(job))], now=T0 + 1)
    assert await store.prune(Retention(1, 1, 1), now=T0 + 100) == 1
    assert await store.get(job_id) is None
    assert len(await store.job_attempts(job_id)) == 1
    assert len(await store.task_analytics(ALL)) == 1
    assert await store.prune_history(T0, T0) == 0
    assert await store.prune_history(T0 + 10, T0 - 120) == 1
    assert await store.job_attempts(job_id) == []
    assert len(await store.task_analytics(ALL)) == 1       # rollups: kept longer
    await store.prune_history(T0 + 10, T0 + 120)
    assert await store.task_analytics(ALL) == []


async def test_items_without_a_record_write_no_history(store: Store) -> None:
    job_id = await enqueue(store)
    job = await claim_one(store)
    assert await store.settle([Complete(job.lease)], now=T0 + 1) == [True]
    assert await store.job_attempts(job_id) == []
    got = await store.get(job_id)
    assert got is not None and got.state == JobState.COMPLETED
