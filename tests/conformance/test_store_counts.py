"""Job counts kept as the jobs change (migration 0011): after any mix of every write path,
the kept counts equal the jobs counted one by one, exactly, per queue, task, tenant and state;
a tenant's counts are its own; stats, queues and count_jobs read them."""

from __future__ import annotations

import math
import random
import time
from collections import Counter

import pytest

from conveyor.history.records import AttemptRecord, TimeRange
from conveyor.job import ClaimedJob, JobFilter, JobState, NewJob, new_id
from conveyor.store.base import (
    Cancelled,
    ClaimAsk,
    Complete,
    Fail,
    JobCount,
    Progress,
    Release,
    Retention,
    Snooze,
    Store,
)
from conveyor.store.counting import job_counts as counts_of

from .support import PAYLOAD, T0, error

pytestmark = pytest.mark.anyio

QUEUES = ("mail", "sms", "bulk")
TASKS = ("send", "render")
TENANTS = (None, "org-a", "org-b")


async def listed(store: Store, tenant: str | None = None) -> list[JobCount]:
    """The counts made the slow way: every job read back and counted in Python."""
    jobs = await store.list_jobs(JobFilter(tenant=tenant), limit=100_000, bodies=False)
    counted = Counter((j.queue, j.task, j.tenant, "retrying" if j.retrying else str(j.state))
                      for j in jobs)
    return counts_of((q, t, tn, s, n) for (q, t, tn, s), n in counted.items())


async def assert_exact(store: Store) -> set[str]:
    """The kept counts are the real ones, for all and for each tenant (and so are the totals
    of all tenants that stats read); the states seen."""
    kept = await store.job_counts()
    assert kept == await store.recount_jobs()
    assert kept == await listed(store)
    by_queue: Counter[tuple[str, str]] = Counter()
    by_task: Counter[tuple[str, str]] = Counter()
    for count in kept:
        state = "scheduled" if count.state == "retrying" else count.state
        by_queue[count.queue, state] += count.count
        by_task[count.task, state] += count.count
    stats = await store.stats(now=T0)
    assert {(q, s): n for q, states in stats.by_queue.items() for s, n in states.items()
            if n} == dict(by_queue)
    assert {(t, s): n for t, states in stats.by_task.items() for s, n in states.items()
            if n} == dict(by_task)
    for tenant in TENANTS[1:]:
        mine = await store.job_counts(tenant)
        assert mine == [c for c in kept if c.tenant == tenant]
        assert mine == await listed(store, tenant)
    return {c.state for c in kept}


def random_job(rng: random.Random, now: float) -> NewJob:
    delayed = rng.random() < 0.2
    return NewJob(id=new_id(), task=rng.choice(TASKS), queue=rng.choice(QUEUES),
                  payload=PAYLOAD, tenant=rng.choice(TENANTS),
                  priority=rng.choice((0, 0, 5)),
                  run_at=now + rng.uniform(5, 60) if delayed else None,
                  ttl=rng.choice((None, None, 20.0)),
                  idempotency_key=f"key-{rng.randrange(8)}" if rng.random() < 0.15 else None)


async def test_kept_counts_equal_a_real_count_after_every_kind_of_write(store: Store) -> None:
    rng = random.Random(16)
    now = T0
    leases = []
    seen: set[str] = set()
    for step in range(160):
        now += rng.uniform(0.5, 4.0)
        action = rng.randrange(12)
        if action <= 2:  # enqueue: single jobs and batches
            batch = [random_job(rng, now) for _ in range(rng.choice((1, 1, 5, 30)))]
            await store.enqueue_many(batch, now=now)
        elif action <= 4:  # claim
            claimed = await store.claim(rng.choice((None, ["mail"], ["sms", "bulk"])),
                                        f"w{rng.randrange(2)}", rng.randrange(1, 8), 10.0,
                                        now=now)
            leases.extend(c.lease for c in claimed)
        elif action <= 6 and leases:  # settle: every kind, several in one call
            rng.shuffle(leases)
            taken, leases = leases[:rng.randrange(1, 5)], leases[4:]
            outcomes = [rng.choice((
                Complete(lease, b"1"), Fail(lease, error(1), retry_in=rng.uniform(1, 30)),
                Fail(lease, error(1)), Snooze(lease, rng.uniform(1, 20)),
                Cancelled(lease), Release(lease), Progress(lease, 50.0)))
                for lease in taken]
            await store.settle(outcomes, now=now)
            leases.extend(o.lease for o in outcomes if isinstance(o, Progress))
        elif action == 7:  # maintenance: rescue dead workers' leases, promote, expire
            await store.rescue_expired(now=now)
            await store.promote_scheduled(now=now)
            await store.expire(now=now)
        elif action == 8:  # control: cancel, requeue (retry), discard, some by tenant
            some = [j.id for j in await store.list_jobs(JobFilter(), limit=200, bodies=False)]
            tenant = rng.choice((None, None, "org-a"))
            picked = rng.sample(some, min(len(some), 3))
            await rng.choice((store.cancel, store.requeue))(picked, tenant, now=now)
            await store.discard(rng.sample(some, min(len(some), 2)), tenant)
        elif action == 9:  # retention: by age and by count
            await store.prune(Retention(completed=30, dead=60, cancelled=10), now=now)
            await store.prune_kept(rng.choice(("completed", "dead", "cancelled")), 2,
                                   queue=rng.choice(QUEUES), now=now)
        elif action == 10:
            await store.fold_counts()
        if step % 8 == 0:
            seen |= await assert_exact(store)
    seen |= await assert_exact(store)
    await store.fold_counts()
    await assert_exact(store)
    assert sum(c.count for c in await store.job_counts()) > 50, "the mix left jobs to count"
    assert seen == {"queued", "scheduled", "retrying", "running", "completed", "dead",
                    "cancelled"}, "the mix reached every state"


@pytest.mark.parametrize("strategy", ["queue", "drop", "debounce"])
async def test_keyed_enqueues_are_counted_whatever_their_keys_strategy(
        store: Store, strategy: str) -> None:
    """Keyed jobs take their own insert path (limits per key): the jobs it stores are
    counted, a dropped one is not, a superseded (debounced) one moves to cancelled."""
    from conveyor.limits.model import Limit

    await store.set_limit(Limit("key", "send", concurrency=1, strategy=strategy))
    for n in range(6):
        await store.enqueue_many([NewJob(new_id(), "send", "mail", PAYLOAD,
                                         limit_key=f"k{n % 2}", tenant=TENANTS[n % 3])],
                                 now=T0 + n)
    await store.claim(None, "w-1", 10, 30, now=T0 + 10)
    await store.enqueue_many([NewJob(new_id(), "send", "mail", PAYLOAD, limit_key="k0")],
                             now=T0 + 11)
    states = await assert_exact(store)
    assert "running" in states


async def test_a_retry_after_a_failure_counts_as_retrying_and_stats_show_it_as_scheduled(
        store: Store) -> None:
    await store.enqueue_many([NewJob(id=new_id(), task="send", queue="mail", payload=PAYLOAD,
                                     tenant="org-a")], now=T0)
    [claimed] = await store.claim(None, "w1", 1, 30.0, now=T0)
    await store.settle([Fail(claimed.lease, error(1), retry_in=60)], now=T0 + 1)
    assert await store.job_counts() == [JobCount("mail", "send", "org-a", "retrying", 1)]
    stats = await store.stats(now=T0 + 2)
    assert stats.by_state["scheduled"] == 1 and stats.by_state["running"] == 0
    assert stats.by_queue == {"mail": {"scheduled": 1}}
    assert stats.by_task == {"send": {"scheduled": 1}}
    [queue] = await store.queues(now=T0 + 2)
    assert queue.counts == {"scheduled": 1}
    assert await store.count_jobs(JobFilter(retrying=True)) == 1
    assert await store.count_jobs(JobFilter(states=(JobState.SCHEDULED,))) == 1
    assert await store.count_jobs(JobFilter(states=(JobState.QUEUED,))) == 0


async def test_reads_of_counts_are_the_tenants_own(store: Store) -> None:
    jobs = [NewJob(id=new_id(), task=task, queue=queue, payload=PAYLOAD, tenant=tenant)
            for task, queue, tenant, n in (("send", "mail", "org-a", 3),
                                           ("send", "sms", "org-b", 2),
                                           ("render", "mail", None, 4))
            for _ in range(n)]
    await store.enqueue_many(jobs, now=T0)
    assert [c.count for c in await store.job_counts("org-a")] == [3]
    assert (await store.stats("org-b", now=T0)).by_queue == {"sms": {"queued": 2}}
    assert [(q.name, q.counts) for q in await store.queues("org-a", now=T0)] == [
        ("mail", {"queued": 3})]
    assert await store.count_jobs(JobFilter(tenant="org-b")) == 2
    assert await store.count_jobs(JobFilter(tenant="org-b", queue="mail")) == 0
    assert await store.count_jobs(JobFilter(task="render")) == 4
    assert await store.count_jobs(JobFilter(), cap=5) == 5  # capped, as the scan was


async def test_the_oldest_queued_job_is_found_across_priorities(store: Store) -> None:
    await store.enqueue_many([
        NewJob(id=new_id(), task="send", queue="mail", payload=PAYLOAD, priority=5),
        NewJob(id=new_id(), task="send", queue="mail", payload=PAYLOAD, priority=0,
               tenant="org-a")], now=T0 + 10)
    await store.enqueue_many([NewJob(id=new_id(), task="send", queue="mail", payload=PAYLOAD,
                                     priority=-3, tenant="org-a")], now=T0)
    [mail] = await store.queues(now=T0 + 100)
    assert mail.oldest_queued_age == pytest.approx(100)
    [mine] = await store.queues("org-a", now=T0 + 100)
    assert mine.oldest_queued_age == pytest.approx(100)
    [claimed] = await store.claim(None, "w1", 1, 30.0, now=T0 + 100)  # priority 5 first
    await store.settle([Complete(claimed.lease)], now=T0 + 100)
    [claimed] = await store.claim(None, "w1", 1, 30.0, now=T0 + 100)  # then priority 0
    [mail] = await store.queues(now=T0 + 100)
    assert mail.oldest_queued_age == pytest.approx(100)
    assert mail.counts == {"queued": 1, "running": 1, "completed": 1}


async def test_the_oldest_queued_job_of_each_queue_in_one_read(store: Store) -> None:
    """Every queue's oldest queued job at once: each queue's own, a tenant's own (another
    tenant's older job in the same queue is not its), none for a queue with no queued job
    left, whatever the priorities (the oldest in the middle one of three), and a job folded
    into the counts or not yet (fold_counts between the reads)."""
    def job(queue: str, priority: int, tenant: str | None = None) -> NewJob:
        return NewJob(id=new_id(), task="send", queue=queue, payload=PAYLOAD,
                      priority=priority, tenant=tenant)

    await store.enqueue_many([job("mail", 9), job("mail", -2, "org-b")], now=T0 + 30)
    await store.enqueue_many([job("mail", 0, "org-b"), job("sms", 1, "org-a")], now=T0 + 20)
    await store.enqueue_many([job("mail", 4, "org-a"), job("bulk", 0)], now=T0 + 40)
    await store.enqueue_many([job("mail", 0, "org-a"), job("bulk", 3)], now=T0 + 50)
    for fold in (False, True):
        if fold:
            await store.fold_counts()
        ages = {q.name: q.oldest_queued_age for q in await store.queues(now=T0 + 100)}
        assert ages == pytest.approx({"mail": 80, "sms": 80, "bulk": 60}), fold
        mine = {q.name: q.oldest_queued_age for q in await store.queues("org-a", now=T0 + 100)}
        assert mine == pytest.approx({"mail": 60, "sms": 80}), fold
    claimed = await store.claim(["sms"], "w1", 5, 30.0, now=T0 + 100)
    await store.settle([Complete(c.lease) for c in claimed], now=T0 + 100)
    found = {q.name: (q.oldest_queued_age, q.counts) for q in await store.queues(now=T0 + 100)}
    assert found["sms"] == (None, {"completed": 1}), found
    assert found["bulk"][0] == pytest.approx(60), found


async def test_finished_jobs_are_counted_per_minute_for_the_rates(store: Store) -> None:
    """The last minute's throughput and the last hour's rates come from jobs finished per
    minute: this minute's, and the part of the previous minute the window still covers."""
    start = math.floor(time.time() / 60) * 60.0 - 600  # a minute's first second, of late:
    # fold_counts drops the minutes older than two hours by the store's clock
    await store.enqueue_many([NewJob(id=new_id(), task="send", queue="mail", payload=PAYLOAD,
                                     tenant="org-a", max_attempts=2) for _ in range(4)],
                             now=start)
    claimed = await store.claim(None, "w1", 4, 30.0, now=start + 1)
    await store.settle([Complete(claimed[0].lease), Complete(claimed[1].lease),
                        Fail(claimed[2].lease, error(1)),
                        Fail(claimed[3].lease, error(1), retry_in=1)], now=start + 2)
    await store.promote_scheduled(now=start + 4)
    [again] = await store.claim(None, "w1", 1, 30.0, now=start + 4)
    await store.settle([Complete(again.lease)], now=start + 5)  # completed after a retry

    stats = await store.stats(now=start + 30)
    assert stats.completed_last_minute == 3
    assert stats.failure_rate == pytest.approx(1 / 4)
    assert stats.retry_success_rate == pytest.approx(1.0)
    assert [q.completed_last_minute for q in await store.queues(now=start + 30)] == [3]
    # half a minute on: half the previous minute is still in the window
    assert (await store.stats(now=start + 90)).completed_last_minute == 2
    assert (await store.stats(now=start + 120)).completed_last_minute == 0
    assert (await store.stats(now=start + 3000)).failure_rate == pytest.approx(1 / 4)
    assert (await store.stats(now=start + 3700)).failure_rate is None
    assert (await store.stats("org-a", now=start + 30)).completed_last_minute == 3
    assert (await store.stats("org-b", now=start + 30)).completed_last_minute == 0
    assert (await store.stats("org-b", now=start + 30)).failure_rate is None
    await store.fold_counts()
    assert (await store.stats("org-a", now=start + 30)).failure_rate == pytest.approx(1 / 4)


async def test_a_list_that_the_counts_say_is_empty_is_empty(store: Store) -> None:
    await store.enqueue_many([NewJob(id=new_id(), task="send", queue="mail", payload=PAYLOAD)
                              for _ in range(3)], now=T0)
    assert await store.list_jobs(JobFilter(states=(JobState.RUNNING,))) == []
    assert await store.list_jobs(JobFilter(queue="sms")) == []
    [claimed] = await store.claim(None, "w1", 1, 30.0, now=T0)
    assert [j.id for j in await store.list_jobs(JobFilter(states=(JobState.RUNNING,)))] == [
        claimed.id]
    assert len(await store.list_jobs(JobFilter(queue="mail"))) == 3


async def test_each_transition_of_a_drain_moves_the_counts_and_the_finished_events_exactly(
        store: Store) -> None:
    """Claim, settle (complete, retry, dead) in batches, requeue of dead and retrying
    jobs, claim and settle again: after each statement the counts are exact, and the jobs
    finished per minute are those that finished, once each (a requeued job that completes
    again is a second event; a claim, a retry or a requeue is none)."""
    start = math.floor(time.time() / 60) * 60.0 - 600  # a minute's first second, of late
    await store.enqueue_many([NewJob(id=new_id(), task=TASKS[n % 2], queue=QUEUES[n % 3],
                                     payload=PAYLOAD, tenant=TENANTS[n % 3], max_attempts=2)
                              for n in range(12)], now=start)
    claimed = await store.claim(None, "w1", 12, 30.0, now=start + 1)
    assert {c.state for c in await store.job_counts()} == {"running"}
    await assert_exact(store)
    assert (await store.stats(now=start + 30)).completed_last_minute == 0

    # one settle: 6 completed, 3 to retry, 3 dead
    await store.settle([Complete(c.lease) for c in claimed[:6]]
                       + [Fail(c.lease, error(1), retry_in=1) for c in claimed[6:9]]
                       + [Fail(c.lease, error(1)) for c in claimed[9:]], now=start + 2)
    assert await assert_exact(store) == {"completed", "retrying", "dead"}
    stats = await store.stats(now=start + 30)
    assert stats.completed_last_minute == 6
    assert stats.failure_rate == pytest.approx(3 / 9)

    # the dead and the retrying requeued in one statement: no finished event
    retrying, dead = [c.id for c in claimed[6:9]], [c.id for c in claimed[9:]]
    assert set((await store.requeue(retrying + dead, now=start + 3)).values()) == {"queued"}
    assert await assert_exact(store) == {"completed", "queued"}
    again = await store.claim(None, "w1", 12, 30.0, now=start + 4)
    assert sorted(c.id for c in again) == sorted(retrying + dead)
    assert await assert_exact(store) == {"completed", "running"}
    assert (await store.stats(now=start + 30)).completed_last_minute == 6

    # settled again: the once-retried complete, the once-dead die again
    await store.settle([Complete(c.lease) for c in again if c.id in retrying]
                       + [Fail(c.lease, error(2)) for c in again if c.id in dead],
                       now=start + 5)
    assert await assert_exact(store) == {"completed", "dead"}
    stats = await store.stats(now=start + 30)
    assert stats.completed_last_minute == 9
    assert stats.failure_rate == pytest.approx(6 / 15)
    await store.fold_counts()
    assert await assert_exact(store) == {"completed", "dead"}
    assert (await store.stats(now=start + 30)).completed_last_minute == 9
    totals: Counter[str] = Counter()
    for count in await store.job_counts():
        totals[count.state] += count.count
    assert totals == {"completed": 9, "dead": 3}


async def test_a_claim_and_a_trip_of_many_completions_count_exactly_with_stale_leases(
        store: Store) -> None:
    """A claim over several queues and a trip of many completions move many jobs in one
    statement each (SQLite writes their counts as sums, migration 0019): mixed with other
    outcomes, leases gone stale (completed already, rescued and claimed again) and a trip
    naming a job twice, the counts and the jobs finished per minute stay exact, for all
    tenants and for each."""
    start = math.floor(time.time() / 60) * 60.0 - 600  # a minute's first second, of late
    await store.enqueue_many([NewJob(id=new_id(), task=TASKS[n % 2], queue=QUEUES[n % 3],
                                     payload=PAYLOAD, tenant=TENANTS[n % 3], max_attempts=3)
                              for n in range(30)], now=start)
    first = await store.claim(["mail", "sms"], "w1", 8, 5.0, now=start + 1)
    rest = await store.claim(None, "w2", 30, 60.0, now=start + 1)
    assert len(first) == 8 and len(first) + len(rest) == 30
    await assert_exact(store)

    # w1's leases expire and its jobs are rescued and claimed again by w3: w1's are stale
    assert await store.rescue_expired(now=start + 10) == 8
    again = await store.claim(["mail", "sms"], "w3", 8, 60.0, now=start + 11)
    assert sorted(c.id for c in again) == sorted(c.id for c in first)
    await assert_exact(store)

    # one trip: completions of w2's jobs, w1's stale completions, a retry and a dead job
    done, retried, dead = rest[:12], rest[12], rest[13]
    applied = await store.settle(
        [Complete(c.lease, b"1") for c in done[:6]]
        + [Complete(c.lease, b"1") for c in first]
        + [Fail(retried.lease, error(1), retry_in=1), Fail(dead.lease, error(1))]
        + [Complete(c.lease, b"1") for c in done[6:]], now=start + 12)
    assert applied == [True] * 6 + [False] * 8 + [True, True] + [True] * 6
    assert await assert_exact(store) == {"running", "completed", "retrying", "dead"}
    stats = await store.stats(now=start + 30)
    assert stats.completed_last_minute == 12

    # completed again (stale: already completed), and a trip naming a job twice
    twice = rest[14]
    applied = await store.settle([Complete(c.lease, b"1") for c in done[:3]]
                                 + [Progress(twice.lease, 50.0), Complete(twice.lease, b"2"),
                                    Complete(again[0].lease, b"1"),
                                    Complete(again[1].lease, b"1")], now=start + 13)
    assert applied == [False] * 3 + [True] * 4
    await assert_exact(store)

    # the retried job completes on its second attempt: a retried finished event
    await store.promote_scheduled(now=start + 14)
    [second] = await store.claim(None, "w2", 1, 60.0, now=start + 14)
    assert second.id == retried.id
    # (again's jobs are on their second attempt too: rescued): 4 completed after a retry,
    # 2 dead after one
    assert await store.settle([Complete(second.lease, b"1"), Complete(again[2].lease, b"1"),
                               Fail(again[3].lease, error(2)), Fail(again[4].lease, error(2))],
                              now=start + 15) == [True] * 4
    await assert_exact(store)
    stats = await store.stats(now=start + 30)
    assert stats.completed_last_minute == 12 + 3 + 2
    assert stats.failure_rate == pytest.approx(3 / 20)
    assert stats.retry_success_rate == pytest.approx(4 / 6)
    for tenant in TENANTS[1:]:
        ended = [c for c in [*done, twice, *again[:3], second] if c.tenant == tenant]
        mine = await store.stats(tenant, now=start + 30)
        assert mine.completed_last_minute == len(ended)
        won = sum(c.tenant == tenant for c in [*again[:3], second])
        lost = sum(c.tenant == tenant for c in again[3:5])
        assert mine.retry_success_rate == (won / (won + lost) if won + lost else None)
    await store.fold_counts()
    totals: Counter[str] = Counter()
    for count in await store.job_counts():
        totals[count.state] += count.count
    assert totals == {"completed": 17, "dead": 3, "running": 10}
    await assert_exact(store)


def _attempt(job: ClaimedJob, fingerprint: str, at: float) -> AttemptRecord:
    """A failed attempt's record (its fingerprint names the error group a death joins)."""
    return AttemptRecord(task=job.task, queue=job.queue, tenant=job.tenant,
                         number=job.attempt, started_at=at, ended_at=at + 0.5,
                         worker_id="w1", host="host-a", pid=4242, cpu=0.1, rss=None,
                         fingerprint=fingerprint, error_message="boom", error_traceback=None)


async def _dead_groups(store: Store, tenant: str | None = None) -> dict[str, int]:
    groups = await store.error_groups(TimeRange(0, 2e10, tenant=tenant))
    return {g.fingerprint: g.dead_jobs for g in groups if g.dead_jobs}


async def test_every_claim_and_settle_statement_keeps_counts_finished_and_dead_groups_exact(
        store: Store) -> None:
    """Issue 14: PostgreSQL's claims and settles write their own count deltas (migration
    0024) instead of leaving them to the update trigger. Each kind of claim (one queue, one
    queue continuing after its cursor, several queues, any queue, one that finds nothing) and
    each kind of settle (complete, fail to retry, fail to dead in an error group, snooze to
    scheduled, to retrying and to queued, cancelled, release, a stale lease that touches
    nothing, a settle and a claim in one trip), for several queues, tasks and tenants: after
    each, the counts, the jobs finished per minute and the dead jobs per error group are
    exact, for all tenants and for each."""
    start = math.floor(time.time() / 60) * 60.0 - 600  # a minute's first second, of late
    fp_a, fp_b = "a" * 16, "b" * 16
    await store.enqueue_many([NewJob(id=new_id(), task=TASKS[n % 2], queue=QUEUES[n % 3],
                                     payload=PAYLOAD, tenant=TENANTS[n % 3], max_attempts=3)
                              for n in range(36)], now=start)
    finished, dead = 0, 0

    async def check() -> set[str]:
        stats = await store.stats(now=start + 30)
        assert stats.completed_last_minute == finished
        assert stats.failure_rate == (dead / (finished + dead) if finished + dead else None)
        return await assert_exact(store)

    # claims: one queue, then the same queue after its cursor, several queues, any queue
    mail = await store.claim(["mail"], "w1", 3, 30.0, now=start + 1)
    mail += await store.claim(["mail"], "w1", 3, 30.0, now=start + 1)
    assert len(mail) == 6 and await check() == {"queued", "running"}
    two = await store.claim(["sms", "bulk"], "w2", 8, 30.0, now=start + 1)
    anyq = await store.claim(None, "w3", 10, 30.0, now=start + 1)
    assert len(two) == 8 and len(anyq) == 10
    await check()
    assert await store.claim(["nothing-here"], "w1", 5, 30.0, now=start + 1) == []
    await check()

    # settles: completes, retries, deaths in two error groups, in one trip
    assert await store.settle(
        [Complete(c.lease, b"1") for c in mail[:3]]
        + [Fail(c.lease, error(1), retry_in=60) for c in mail[3:]]
        + [Fail(c.lease, error(1), attempt=_attempt(c, fp_a, start + 2)) for c in two[:2]]
        + [Fail(c.lease, error(1), attempt=_attempt(two[2], fp_b, start + 2))
           for c in two[2:3]], now=start + 2) == [True] * 9
    finished, dead = 3, 3
    assert await check() == {"queued", "running", "completed", "retrying", "dead"}
    assert await _dead_groups(store) == {fp_a: 2, fp_b: 1}
    for tenant in TENANTS[1:]:
        mine = [c for c in two[:3] if c.tenant == tenant]
        assert sum((await _dead_groups(store, tenant)).values()) == len(mine)

    # snoozes: first attempt to scheduled, to queued at once; releases; a cancel of a running
    # job settled as cancelled
    assert await store.settle([Snooze(two[3].lease, 60), Snooze(two[4].lease, 0),
                               Release(two[5].lease), Release(two[6].lease)],
                              now=start + 3) == [True] * 4
    assert await check() >= {"scheduled", "queued"}
    await store.cancel([two[7].id], now=start + 3)
    assert await store.settle([Cancelled(two[7].lease)], now=start + 3) == [True]
    assert await check() >= {"cancelled"}

    # stale leases: settled already, and released (claimable again): they touch nothing
    assert await store.settle([Complete(mail[0].lease), Fail(two[0].lease, error(2)),
                               Snooze(two[3].lease, 5), Release(two[5].lease),
                               Cancelled(mail[1].lease)], now=start + 4) == [False] * 5
    await check()
    assert await _dead_groups(store) == {fp_a: 2, fp_b: 1}

    # the retried jobs come back on their second attempt: snoozed there they are retrying
    # (scheduled, attempt 1 again); a settle and a claim in one trip
    await store.promote_scheduled(now=start + 70)
    mailed = await store.claim(["mail"], "w1", 100, 30.0, now=start + 70)
    retried = {c.id for c in mail[3:]}
    again = [c for c in mailed if c.id in retried]
    assert len(again) == 3 and all(c.attempt == 2 for c in again)
    assert await store.settle([Snooze(again[0].lease, 60)], now=start + 70) == [True]
    assert "retrying" in await check()
    trip = await store.settle_and_claim(
        [Complete(again[1].lease, b"1"), Fail(again[2].lease, error(2),
                                              attempt=_attempt(again[2], fp_b, start + 71)),
         Complete(mail[2].lease)],
        ClaimAsk(None, "w1", 4, 30.0), now=start + 71)
    assert trip.applied == [True, True, False] and len(trip.jobs) == 4
    finished, dead = finished + 1, dead + 1
    await check()
    assert await _dead_groups(store) == {fp_a: 2, fp_b: 2}
    trip = await store.settle_and_claim([Complete(c.lease) for c in trip.jobs],
                                        ClaimAsk(["nothing-here"], "w1", 4, 30.0),
                                        now=start + 72)
    assert trip.applied == [True] * 4 and trip.jobs == []
    finished += 4
    await check()

    # everything left drained: claimed, and completed or killed
    rest = [c for c in mailed if c.id not in retried]
    rest += await store.claim(None, "w2", 100, 30.0, now=start + 200)
    await check()
    assert await store.settle(
        [Complete(c.lease) for c in rest[::2]]
        + [Fail(c.lease, error(c.attempt), attempt=_attempt(c, fp_a, start + 201))
           for c in rest[1::2]], now=start + 201) == [True] * len(rest)
    finished, dead = finished + len(rest[::2]), dead + len(rest[1::2])
    await check()
    assert await _dead_groups(store) == {fp_a: 2 + len(rest[1::2]), fp_b: 2}
    await store.fold_counts()
    await check()
    assert await _dead_groups(store) == {fp_a: 2 + len(rest[1::2]), fp_b: 2}
