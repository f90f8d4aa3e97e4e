"""The queues page's oldest queued job (issue 16) stays exact through every write path: after
any mix of enqueues (older run_at, higher or lower priority than the queue's head), claims,
settles of every kind (retry, snooze, release), rescues, promotions, cancels, requeues,
discards and prunes, with the counts folded at any point in between, each queue's
oldest_queued_age is that of its queued job with the least run_at, read back one by one; for
all tenants and for each. (PostgreSQL starts its lookup at each queue's kept heads,
migration 0035: a head left past a queued job would show a younger age or none.)"""

from __future__ import annotations

import random

import pytest

from conveyor.job import JobFilter, JobState, NewJob, new_id
from conveyor.store.base import (
    Cancelled,
    Complete,
    Fail,
    Progress,
    Release,
    Retention,
    Snooze,
    Store,
)

from .support import PAYLOAD, T0, error

pytestmark = pytest.mark.anyio

QUEUES = ("mail", "sms", "bulk")
TENANTS = (None, "org-a", "org-b")


async def truth(store: Store, now: float, tenant: str | None = None) -> dict[str, float]:
    """Each queue's oldest queued age, from its queued jobs read back one by one."""
    jobs = await store.list_jobs(JobFilter(states=(JobState.QUEUED,), tenant=tenant),
                                 limit=100_000, bodies=False)
    oldest: dict[str, float] = {}
    for job in jobs:
        assert job.run_at is not None
        oldest[job.queue] = min(oldest.get(job.queue, job.run_at), job.run_at)
    return {queue: now - first for queue, first in oldest.items()}


async def assert_oldest_exact(store: Store, now: float) -> None:
    for tenant in TENANTS:
        found = {q.name: q.oldest_queued_age for q in await store.queues(tenant, now=now)
                 if q.oldest_queued_age is not None}
        assert found == pytest.approx(await truth(store, now, tenant)), tenant


def some_job(rng: random.Random, now: float) -> NewJob:
    when = rng.random()
    run_at = (now - rng.uniform(1, 500) if when < 0.3  # older than the queue's head
              else now + rng.uniform(2, 40) if when < 0.45 else None)
    return NewJob(id=new_id(), task="send", queue=rng.choice(QUEUES), payload=PAYLOAD,
                  tenant=rng.choice(TENANTS), priority=rng.choice((0, 0, 5, -3, 9)),
                  run_at=run_at)


async def test_the_oldest_queued_job_stays_exact_through_every_write_path(
        store: Store) -> None:
    rng = random.Random(36)
    now = T0
    leases = []
    for _ in range(140):
        now += rng.uniform(0.5, 4.0)
        action = rng.randrange(11)
        if action <= 2:
            await store.enqueue_many([some_job(rng, now)
                                      for _ in range(rng.choice((1, 1, 4, 20)))], now=now)
        elif action <= 4:  # claims take the heads the lookup starts from
            claimed = await store.claim(rng.choice((None, ["mail"], ["sms", "bulk"])),
                                        f"w{rng.randrange(2)}", rng.randrange(1, 12), 10.0,
                                        now=now)
            leases.extend(c.lease for c in claimed)
        elif action <= 6 and leases:
            rng.shuffle(leases)
            taken, leases = leases[:rng.randrange(1, 6)], leases[5:]
            outcomes = [rng.choice((
                Complete(lease, b"1"), Fail(lease, error(1), retry_in=rng.uniform(1, 30)),
                Fail(lease, error(1)), Snooze(lease, rng.uniform(1, 20)), Cancelled(lease),
                Release(lease), Progress(lease, 50.0))) for lease in taken]
            await store.settle(outcomes, now=now)
            leases.extend(o.lease for o in outcomes if isinstance(o, Progress))
        elif action == 7:  # rescued leases and promoted retries come back queued
            await store.rescue_expired(now=now)
            await store.promote_scheduled(now=now)
        elif action == 8:
            some = [j.id for j in await store.list_jobs(JobFilter(), limit=300, bodies=False)]
            picked = rng.sample(some, min(len(some), 4))
            await rng.choice((store.cancel, store.requeue))(
                picked, rng.choice((None, "org-a")), now=now)
            await store.prune(Retention(completed=30, dead=60, cancelled=10), now=now)
        if action >= 9 or rng.random() < 0.3:
            await store.fold_counts()
        await assert_oldest_exact(store, now)
    assert len(await truth(store, now)) == len(QUEUES), "the mix left every queue jobs"


async def test_a_job_queued_before_the_head_after_a_fold_is_the_oldest(store: Store) -> None:
    """The head moves with the claims at a fold; a job then queued before it (an older
    run_at, a higher priority, a retry promoted, a requeue) is still found, folded or not."""
    await store.enqueue_many([NewJob(id=new_id(), task="send", queue="mail", payload=PAYLOAD,
                                     tenant="org-a") for _ in range(5)], now=T0 + 100)
    claimed = await store.claim(None, "w1", 3, 30.0, now=T0 + 100)
    await store.settle([Complete(claimed[0].lease),
                        Fail(claimed[1].lease, error(1), retry_in=5)], now=T0 + 101)
    await store.fold_counts()
    [mail] = await store.queues(now=T0 + 200)
    assert mail.oldest_queued_age == pytest.approx(100)
    await store.enqueue_many([NewJob(id=new_id(), task="send", queue="mail", payload=PAYLOAD,
                                     priority=-1, run_at=T0 + 50)], now=T0 + 150)
    for fold in (False, True):
        if fold:
            await store.fold_counts()
        [mail] = await store.queues(now=T0 + 200)
        assert mail.oldest_queued_age == pytest.approx(150), fold
        [mine] = await store.queues("org-a", now=T0 + 200)
        assert mine.oldest_queued_age == pytest.approx(100), fold
    await store.claim(None, "w1", 10, 30.0, now=T0 + 200)  # every queued job
    await store.fold_counts()
    [mail] = await store.queues(now=T0 + 300)
    assert mail.oldest_queued_age is None
    await store.requeue([claimed[2].id], None, now=T0 + 300)  # back, at T0 + 300
    await store.promote_scheduled(now=T0 + 400)  # the retry, due at T0 + 106
    for fold in (False, True):
        if fold:
            await store.fold_counts()
        [mail] = await store.queues(now=T0 + 400)
        assert mail.oldest_queued_age == pytest.approx(294), fold
