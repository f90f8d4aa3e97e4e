"""task_analytics, exact against a Python count of the attempts (issue 15: the tasks read's
pending rows grouped in an index's order, 0031 on SQLite): attempts of several tasks,
queues, tenants, outcomes and duration buckets over the last 40 days, some folded and some
pending (ended in the last minutes, and days ago: a late settle's), read over an hour, a
day and a month (minute, hour and day rollups), of every tenant, one tenant, a task and a
queue: each (task, queue)'s counts by outcome, duration sum, percentiles and points are the
Python count's, folded or not."""

from __future__ import annotations

import pytest

from conveyor.history.records import AttemptRecord, Outcome, TaskSummary, TimeRange
from conveyor.history.rollup import BUCKETS, OUTCOMES, bucket, quantile
from conveyor.store.base import Complete, Fail, Settle, Store
from conveyor.store.history_reads import _points

from .support import LEASE, T0, error, new_job, rows_in

pytestmark = pytest.mark.anyio

TASKS, QUEUES, TENANTS = ("a", "b"), ("q1", "q2"), (None, "acme", "globex")
TOOK = (0.0004, 0.003, 0.05, 0.7, 3.0)  # five histogram buckets
# seconds before T0: after the ranges' end (T0 + 60) in their last hour or day row (T0 is
# 800 s into its hour, 80,000 into its day), within the last hour (several minutes), the
# last day, the last month, and older than the month
AGO = (-300, -4000, 5, 65, 125, 610, 3000, 4000, 7300, 40_000, 86_000, 90_000, 5 * 86400 + 17,
       20 * 86400 + 3, 29 * 86400 + 600, 30 * 86400 - 100, 30 * 86400 + 3600, 31 * 86400,
       40 * 86400)
Attempt = tuple[str, str, str | None, float, str, float]  # task, queue, tenant, end, outcome, took


async def settle_batch(store: Store, first: int, count: int) -> list[Attempt]:
    """`count` attempts, the n-th (from `first`) of a task, queue, tenant, end and outcome
    (completed, dead or retried) picked by n // 5, so that five in a row share them, and
    of a duration picked by n: several buckets in one minute's group."""
    made: list[Attempt] = []
    jobs = []
    for n in range(first, first + count):
        key = n // 5
        task, queue, tenant = TASKS[key % 2], QUEUES[key // 2 % 2], TENANTS[key % 3]
        await store.enqueue_many([new_job(task=task, queue=queue, tenant=tenant,
                                          max_attempts=1)], now=T0 - 50 * 86400)
        [job] = await store.claim([queue], "worker-1", 1, LEASE, now=T0 - 50 * 86400)
        jobs.append((n, job))
    items: list[Settle] = []
    for n, job in jobs:
        key = n // 5
        ended, took = T0 - AGO[key % len(AGO)] - key % 7, TOOK[n % 5 // (1 + key % 2)]
        outcome = ("completed", "completed", "dead", "retried")[key // 3 % 4]
        attempt = AttemptRecord(task=job.task, queue=job.queue, tenant=job.tenant, number=1,
                                started_at=ended - took, ended_at=ended, worker_id="worker-1",
                                host="h", pid=1, cpu=0.0, rss=None, fingerprint=None)
        items.append(Complete(job.lease, attempt=attempt) if outcome == "completed" else
                     Fail(job.lease, error(1), None if outcome == "dead" else 60.0,
                          attempt=attempt))
        # the duration as stored: the end less the start (not `took`: T0's float rounds it)
        made.append((job.task, job.queue, job.tenant, ended, outcome,
                     ended - attempt.started_at))
    assert await store.settle(items, now=T0 - 50 * 86400) == [True] * count
    return made


def counted(attempts: list[Attempt], window: TimeRange, points: int) -> list[TaskSummary]:
    """What task_analytics must say: the attempts whose rollup row (of the range's width)
    starts in the range's rows, per (task, queue), by a Python count."""
    params, slots = _points(window, points)
    width, first, per = params["width"] // 60, params["first_minute"], params["minutes_per_point"]
    found: dict[tuple[str, str], list[object]] = {}
    for task, queue, tenant, ended, outcome, took in attempts:
        row = int(ended // 60) // width * width
        if not first <= row < params["end_minute"] or (
                window.tenant is not None and (tenant or "") != window.tenant) or (
                window.task not in (None, task)) or window.queue not in (None, queue):
            continue
        counts, buckets, series, failures, total = found.setdefault(
            (task, queue), [dict.fromkeys(OUTCOMES, 0), [0] * BUCKETS, [0] * slots,
                            [0] * slots, [0.0]])
        counts[outcome] += 1  # type: ignore[index]
        buckets[bucket(took)] += 1  # type: ignore[index]
        slot = min(slots - 1, (row - first) // per)
        series[slot] += 1  # type: ignore[index]
        failures[slot] += Outcome(outcome).failed  # type: ignore[index]
        total[0] += took  # type: ignore[index]
    return [TaskSummary(task=task, queue=queue, counts=counts,  # type: ignore[arg-type]
                        p50=quantile(buckets, 0.5), p95=quantile(buckets, 0.95),  # type: ignore[arg-type]
                        p99=quantile(buckets, 0.99), mean=total[0] / sum(buckets),  # type: ignore[index, arg-type]
                        series=tuple(series), failures=tuple(failures))  # type: ignore[arg-type]
            for (task, queue), (counts, buckets, series, failures, total) in sorted(found.items())]


def rounded(summaries: list[TaskSummary]) -> list[TaskSummary]:
    """The mean to 9 digits (a sum of floats in another order)."""
    return [TaskSummary(task=s.task, queue=s.queue, counts=s.counts, p50=s.p50, p95=s.p95,
                        p99=s.p99, mean=None if s.mean is None else round(s.mean, 9),
                        series=s.series, failures=s.failures) for s in summaries]


WINDOWS = [TimeRange(T0 - 3600, T0 + 60), TimeRange(T0 - 86400, T0 + 60),
           TimeRange(T0 - 30 * 86400, T0 + 60), TimeRange(T0 - 3600, T0 + 60, tenant="acme"),
           TimeRange(T0 - 30 * 86400, T0 + 60, tenant="globex"),
           TimeRange(T0 - 30 * 86400, T0 + 60, tenant=""),
           TimeRange(T0 - 86400, T0 + 60, task="b"),
           TimeRange(T0 - 30 * 86400, T0 + 60, tenant="acme", queue="q2")]


async def test_the_tasks_read_is_the_python_count_folded_or_pending(store: Store) -> None:
    folded = await settle_batch(store, 0, 170)
    while await store.fold_history(1000):
        pass
    pending = await settle_batch(store, 170, 170)
    assert await rows_in(store, "conveyor_attempts_pending") == 170
    for window in WINDOWS:
        for points in (30, 7):
            want = rounded(counted(folded + pending, window, points))
            assert want, window
            got = rounded(await store.task_analytics(window, points))
            assert got == want, (window, points)
    assert await rows_in(store, "conveyor_attempts_pending") == 170, "reads, not folds"
