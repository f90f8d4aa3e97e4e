"""Stats' durations: p50/p95/p99 of the run times (finished_at - started_at) of the last
5,000 jobs completed in the hour before `now`, nearest rank with the rank rounded half to
even (index min(n - 1, max(0, round(p / 100 * n) - 1)) of the sorted durations), per tenant
when one is asked for. And the rates beside them: failure and retry success over the
minutes that hold the last hour, completed in the last minute rounded per queue. Every store
gives the same numbers for the same jobs."""

from __future__ import annotations

import math
import time

import pytest

from conveyor.store.base import Complete, Fail, Store

from .support import T0, claim_one, error, new_job

pytestmark = pytest.mark.anyio


async def _complete(
    store: Store,
    durations: list[float],
    start: float = T0,
    tenant: str | None = None,
    queue: str = "default",
) -> float:
    """One completed job per duration, finished one after another from `start`; returns
    the last finish time."""
    await store.enqueue_many([new_job(queue=queue, tenant=tenant) for _ in durations], now=start)
    clock = start
    for duration in durations:
        job = await claim_one(store, now=clock, queues=[queue])
        clock += duration
        await store.settle([Complete(job.lease)], now=clock)
        clock += 1
    return clock


async def test_no_completed_jobs_have_no_durations(store: Store) -> None:
    stats = await store.stats(now=T0)
    assert stats.durations == {"p50": None, "p95": None, "p99": None}


async def test_one_completed_job_is_every_percentile(store: Store) -> None:
    finished = await _complete(store, [2.5])
    assert (await store.stats(now=finished)).durations == {"p50": 2.5, "p95": 2.5, "p99": 2.5}


async def test_five_durations_round_the_median_rank_half_to_even(store: Store) -> None:
    # p50 of five: rank round(2.5) = 2 (half to even), so the second smallest, not the third
    finished = await _complete(store, [4.0, 1.0, 5.0, 3.0, 2.0])
    assert (await store.stats(now=finished)).durations == {"p50": 2.0, "p95": 5.0, "p99": 5.0}


async def test_thirty_durations_round_the_p95_rank_half_to_even(store: Store) -> None:
    # p95 of thirty: rank round(28.5) = 28; p99: round(29.7) = 30
    finished = await _complete(store, [float(d) for d in reversed(range(1, 31))])
    assert (await store.stats(now=finished)).durations == {"p50": 15.0, "p95": 28.0, "p99": 30.0}


async def test_ties_count_each_job(store: Store) -> None:
    finished = await _complete(store, [3.0, 1.0, 3.0, 3.0, 0.5, 3.0, 9.0])
    assert (await store.stats(now=finished)).durations == {"p50": 3.0, "p95": 9.0, "p99": 9.0}


async def test_only_completed_jobs_count(store: Store) -> None:
    finished = await _complete(store, [1.0, 2.0])
    await store.enqueue_many([new_job(queue="failing")], now=finished)
    job = await claim_one(store, now=finished, queues=["failing"])
    await store.settle([Fail(job.lease, error(1))], now=finished + 100)
    assert (await store.stats(now=finished + 100)).durations == {"p50": 1.0, "p95": 2.0, "p99": 2.0}


async def test_the_window_is_the_hour_before_now(store: Store) -> None:
    first_done = await _complete(store, [50.0])  # finished at T0 + 50
    await _complete(store, [1.0], start=first_done)
    finished_first = T0 + 50
    inside = await store.stats(now=finished_first + 3599)
    assert inside.durations == {"p50": 1.0, "p95": 50.0, "p99": 50.0}
    # finished exactly an hour before now: out
    edge = await store.stats(now=finished_first + 3600)
    assert edge.durations == {"p50": 1.0, "p95": 1.0, "p99": 1.0}
    later = await store.stats(now=first_done + 3600 + 2)
    assert later.durations == {"p50": None, "p95": None, "p99": None}


async def test_only_the_latest_5000_completed_jobs_count(store: Store) -> None:
    await store.enqueue_many([new_job() for _ in range(5100)], now=T0)
    early = await store.claim(None, "worker-1", 100, 600, now=T0)
    await store.settle([Complete(j.lease) for j in early], now=T0 + 9)
    late = await store.claim(None, "worker-1", 5000, 600, now=T0 + 10)
    await store.settle([Complete(j.lease) for j in late], now=T0 + 11)
    # with all 5,100 the p99 (rank 5049) would be one of the early 9-second jobs
    assert (await store.stats(now=T0 + 20)).durations == {"p50": 1.0, "p95": 1.0, "p99": 1.0}


async def test_a_tenant_sees_its_own_durations(store: Store) -> None:
    clock = await _complete(store, [1.0, 2.0, 3.0], tenant="org-1", queue="one")
    clock = await _complete(store, [40.0, 50.0], start=clock, tenant="org-2", queue="two")
    assert (await store.stats(tenant="org-1", now=clock)).durations == {
        "p50": 2.0,
        "p95": 3.0,
        "p99": 3.0,
    }
    assert (await store.stats(tenant="org-2", now=clock)).durations == {
        "p50": 40.0,
        "p95": 50.0,
        "p99": 50.0,
    }
    assert (await store.stats(tenant="org-3", now=clock)).durations == {
        "p50": None,
        "p95": None,
        "p99": None,
    }
    # everyone's: 1, 2, 3, 40, 50
    assert (await store.stats(now=clock)).durations == {"p50": 2.0, "p95": 50.0, "p99": 50.0}


async def _finish(
    store: Store, queue: str, at: float, fail: bool = False, retried: bool = False
) -> None:
    """One job of `queue` completed (or dead) at `at`; `retried`: after a failed attempt."""
    await store.enqueue_many([new_job(queue=queue, max_attempts=2)], now=at - 3)
    job = await claim_one(store, now=at - 3, queues=[queue])
    if retried:
        await store.settle([Fail(job.lease, error(1), retry_in=1)], now=at - 2)
        await store.promote_scheduled(now=at - 1)
        job = await claim_one(store, now=at - 1, queues=[queue])
    outcome = Fail(job.lease, error(2 if retried else 1)) if fail else Complete(job.lease)
    await store.settle([outcome], now=at)


async def test_rates_sum_the_hours_minutes_and_round_the_last_minute_per_queue(
    store: Store,
) -> None:
    # recent minutes (folding drops minutes two hours behind the store's clock)
    start = math.floor(time.time() / 60) * 60.0 - 1200
    await _finish(store, "a", start + 10, fail=True)  # minute 0: dead
    await _finish(store, "a", start + 70)  # minute 1
    await _finish(store, "b", start + 70)
    await _finish(store, "b", start + 130, fail=True, retried=True)  # minute 2
    for _ in range(3):
        await _finish(store, "c", start + 130)
    await _finish(store, "c", start + 131, retried=True)

    stats = await store.stats(now=start + 150)
    # minute 2 whole (c: 4) and half of minute 1, rounded per queue: a 0.5 -> 0, b 0.5 -> 0
    assert stats.completed_last_minute == 4
    assert stats.failure_rate == pytest.approx(2 / 8)
    assert stats.retry_success_rate == pytest.approx(1 / 2)
    assert {q.name: q.completed_last_minute for q in await store.queues(now=start + 150)} == {
        "a": 0,
        "b": 0,
        "c": 4,
    }
    # an hour on, from the minute that holds the hour's start: minute 0, then not
    assert (await store.stats(now=start + 3605)).failure_rate == pytest.approx(2 / 8)
    later = await store.stats(now=start + 3665)
    assert later.failure_rate == pytest.approx(1 / 7)
    assert later.completed_last_minute == 0
