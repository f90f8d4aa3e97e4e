"""Consuming: claim order, queue filters, paused queues, delayed and expired jobs."""

from __future__ import annotations

import asyncio

import pytest

from conveyor.job import JobState
from conveyor.store.base import Store

from .support import LEASE, T0, claim_ids, claim_one, enqueue, new_job

pytestmark = pytest.mark.anyio


async def test_claim_marks_the_job_running_under_a_lease(store: Store) -> None:
    job_id = await enqueue(store, task="t.x", queue="q1", priority=3, max_attempts=4,
                           tenant="org-1", correlation_id="c-1", ttl=600)
    claimed = await claim_one(store, now=T0 + 5, worker_id="worker-7")

    assert (claimed.id, claimed.task, claimed.queue) == (job_id, "t.x", "q1")
    assert bytes(claimed.payload) == b'{"a":1}'
    assert (claimed.attempt, claimed.max_attempts, claimed.priority) == (1, 4, 3)
    assert (claimed.tenant, claimed.correlation_id) == ("org-1", "c-1")
    assert claimed.created_at == pytest.approx(T0)
    assert claimed.expires_at == pytest.approx(T0 + 600)
    assert claimed.lease == (job_id, claimed.token)

    got = await store.get(job_id)
    assert got is not None
    assert got.state == JobState.RUNNING
    assert got.attempt == 1
    assert got.started_at == pytest.approx(T0 + 5)
    assert got.worker_id == "worker-7"
    assert got.worker_host  # the claiming host, for the dashboard


async def test_a_claim_returns_the_store_start_time_limited_or_not(store: Store) -> None:
    """ClaimedJob.starts_at is the store's started_at of the run (JobContext.started_at):
    from a plain claim of one queue, of several, of every queue, and from a limited one."""
    from conveyor.limits.model import Limit

    for queues in (["q1"], ["q1", "q2"], None):
        job_id = await enqueue(store, queue="q1")
        [claimed] = await store.claim(queues, "w-1", 5, LEASE, now=T0 + 7)
        assert claimed.id == job_id
        assert claimed.starts_at == pytest.approx(T0 + 7)
        assert claimed.starts_at == (await store.get(job_id)).started_at
    await store.set_limit(Limit("queue", "q1", concurrency=10, rate=10, period=1.0), now=T0)
    job_id = await enqueue(store, queue="q1")
    [claimed] = await store.claim(["q1"], "w-1", 5, LEASE, now=T0 + 9)
    assert (claimed.id, claimed.starts_at) == (job_id, pytest.approx(T0 + 9))


async def test_claim_takes_priority_then_run_at_then_id(store: Store) -> None:
    low_old = await enqueue(store, now=T0, priority=0)
    high_late = await enqueue(store, now=T0 + 1, priority=5, run_at=T0 + 3)
    high_early = await enqueue(store, now=T0 + 2, priority=5, run_at=T0 + 1)
    high_early_twin = await enqueue(store, now=T0 + 2, priority=5, run_at=T0 + 1)
    negative = await enqueue(store, now=T0, priority=-1)
    low_new = await enqueue(store, now=T0 + 2, priority=0)
    await store.promote_scheduled(now=T0 + 10)

    order = [(await claim_one(store, now=T0 + 10)).id for _ in range(6)]
    assert order == [high_early, high_early_twin, high_late, low_old, low_new, negative]
    assert await claim_ids(store, now=T0 + 10) == []


async def test_one_claim_batch_comes_back_in_claim_order(store: Store) -> None:
    late = await enqueue(store, now=T0, run_at=T0 + 5)     # older id, later run_at
    early = await enqueue(store, now=T0 + 1)               # newer id, earlier run_at
    urgent = await enqueue(store, now=T0 + 2, priority=9)
    await store.promote_scheduled(now=T0 + 10)
    assert await claim_ids(store, now=T0 + 10, limit=10) == [urgent, early, late]


async def test_claim_respects_its_limit(store: Store) -> None:
    await store.enqueue_many([new_job() for _ in range(5)], now=T0)
    assert len(await claim_ids(store, limit=2)) == 2
    assert len(await claim_ids(store, limit=10)) == 3
    assert await claim_ids(store, limit=10) == []


async def test_claim_filters_by_queue(store: Store) -> None:
    emails = await enqueue(store, queue="emails")
    reports = await enqueue(store, queue="reports")
    other = await enqueue(store, queue="other")
    assert await claim_ids(store, queues=["nothing-here"]) == []
    assert await claim_ids(store, queues=["emails"]) == [emails]
    assert sorted(await claim_ids(store, queues=["reports", "other"])) == sorted([reports, other])


async def test_claim_without_queues_takes_every_queue(store: Store) -> None:
    ids = {await enqueue(store, queue=q) for q in ("a", "b", "c")}
    assert set(await claim_ids(store, queues=None)) == ids


async def test_paused_queue_is_not_claimed_until_resumed(store: Store) -> None:
    paused = await enqueue(store, queue="slow")
    live = await enqueue(store, queue="fast")
    await store.pause("slow")
    assert await claim_ids(store) == [live]
    assert await claim_ids(store, queues=["slow"]) == []
    await store.resume("slow")
    assert await claim_ids(store, queues=["slow"]) == [paused]


async def test_pause_and_resume_show_in_queues(store: Store) -> None:
    await enqueue(store, queue="slow")
    await store.pause("slow")
    [info] = [q for q in await store.queues(now=T0) if q.name == "slow"]
    assert info.paused is True
    await store.resume("slow")
    [info] = [q for q in await store.queues(now=T0) if q.name == "slow"]
    assert info.paused is False


async def test_delayed_job_is_scheduled_and_not_claimable_until_promoted(store: Store) -> None:
    [result] = await store.enqueue_many([new_job(delay=60)], now=T0)
    assert result.state == JobState.SCHEDULED
    assert await claim_ids(store, now=T0 + 30) == []

    assert await store.promote_scheduled(now=T0 + 59) == (0, pytest.approx(T0 + 60))
    assert await claim_ids(store, now=T0 + 59) == []
    count, _ = await store.promote_scheduled(now=T0 + 60)
    assert count == 1
    got = await store.get(result.id)
    assert got is not None and got.state == JobState.QUEUED
    assert await claim_ids(store, now=T0 + 61) == [result.id]


async def test_claim_never_returns_an_expired_job(store: Store) -> None:
    expiring = await enqueue(store, ttl=10)
    await enqueue(store, ttl=10, queue="later")
    assert await claim_ids(store, now=T0 + 10, queues=["default"]) == []
    got = await store.get(expiring)
    assert got is not None and got.state == JobState.QUEUED  # expire() has not run yet
    assert await claim_ids(store, now=T0 + 9.5, queues=["later"]) != []


async def test_a_running_job_is_not_claimed_again(store: Store) -> None:
    await enqueue(store)
    await claim_one(store)
    assert await claim_ids(store, now=T0 + 1) == []
    # not even once its lease is past: only rescue_expired gives it back
    assert await claim_ids(store, now=T0 + LEASE + 5) == []


async def test_concurrent_claims_on_one_store_take_each_job_once(store: Store) -> None:
    jobs = [new_job() for _ in range(60)]
    await store.enqueue_many(jobs, now=T0)

    async def claimer(n: int) -> list[str]:
        taken: list[str] = []
        while batch := await store.claim(None, f"worker-{n}", 3, LEASE, now=T0):
            taken.extend(j.id for j in batch)
            await asyncio.sleep(0)
        return taken

    results = await asyncio.gather(*(claimer(n) for n in range(8)))
    claimed = [job_id for taken in results for job_id in taken]
    assert sorted(claimed) == sorted(j.id for j in jobs)


@pytest.mark.parametrize("queues", [None, ["a", "b", "c"]], ids=["all-queues", "listed"])
async def test_claim_order_holds_across_queues(store: Store, queues: list[str] | None) -> None:
    expected = [
        await enqueue(store, now=T0 + 3, queue="c", priority=9),
        await enqueue(store, now=T0 + 1, queue="b", priority=5),
        await enqueue(store, now=T0 + 2, queue="a", priority=5),
        await enqueue(store, now=T0, queue="c", priority=0),
        await enqueue(store, now=T0 + 1, queue="a", priority=0),
        await enqueue(store, now=T0 + 2, queue="b", priority=0),
    ]
    one_by_one = [(await claim_one(store, now=T0 + 5, queues=queues)).id for _ in expected]
    assert one_by_one == expected


async def test_a_claim_batch_across_queues_takes_the_best_jobs(store: Store) -> None:
    best = [await enqueue(store, queue=q, priority=5) for q in ("a", "b", "c")]
    for q in ("a", "b", "c"):
        for _ in range(3):
            await enqueue(store, queue=q, priority=1)
    assert sorted(await claim_ids(store, now=T0 + 1, limit=3)) == sorted(best)
