"""Cap grants (limits/grants.py): the workers share a queue's concurrency cap as leased
grants of slots. Live grants never sum over the cap, with the jobs claimed by workers that
hold none; an expired or released grant frees its slots; a holder above its fair share gives
slots back at its renewals; a holder claims ahead of its grant, a non-holder as before."""

from __future__ import annotations

import pytest

from conveyor.job import WorkerInfo
from conveyor.limits.grants import Grant, GrantAsk
from conveyor.limits.model import Limit, usage_json
from conveyor.store.base import Complete, Store

from .support import LEASE, T0, new_job

pytestmark = pytest.mark.anyio


async def _enqueue(store: Store, count: int, queue: str = "ai") -> None:
    await store.enqueue_many([new_job(queue=queue) for _ in range(count)], now=T0)


async def _renew(store: Store, worker: str, wanted: int, now: float,
                 told: Grant | None = None, started: int | None = None) -> Grant:
    """One renewal of `worker`'s grant of queue "ai"; `told`: its last answer, which it
    applied (its grant in force), running `started` of the queue's jobs."""
    asks = [] if told is None else [GrantAsk("queue", "ai", told.slots,
                                             told.slots if started is None else started)]
    [grant] = await store.renew_grants(worker, ["ai"], wanted, asks, LEASE, now=now)
    assert (grant.kind, grant.name) == ("queue", "ai")
    return grant


async def test_grants_never_sum_over_the_cap_and_settle_at_fair_shares(store: Store) -> None:
    await store.set_limit(Limit("queue", "ai", concurrency=20))
    told: dict[str, Grant] = {}
    booked: dict[str, int] = {}
    for step in range(6):  # three workers of 10 slots renew in turn
        for worker in ("a", "b", "c"):
            grant = await _renew(store, worker, 10, T0 + step, told.get(worker))
            told[worker], booked[worker] = grant, grant.booked
            assert sum(booked.values()) <= 20, (step, worker, booked)
            assert grant.slots <= grant.booked
    assert {w: g.slots for w, g in told.items()} == {"a": 7, "b": 7, "c": 6}
    assert all(g.settled for g in told.values())


async def test_a_second_worker_gets_its_share_as_the_first_gives_slots_back(
        store: Store) -> None:
    await store.set_limit(Limit("queue", "ai", concurrency=12))
    a = await _renew(store, "a", 10, T0)
    assert (a.slots, a.booked) == (10, 10)
    b = await _renew(store, "b", 10, T0 + 0.1)  # 2 free: its demand is recorded
    assert (b.slots, b.booked, b.fair) == (2, 2, 6)
    a = await _renew(store, "a", 10, T0 + 0.2, a, started=10)  # told 6: still runs 10
    assert (a.slots, a.booked) == (6, 10)
    b = await _renew(store, "b", 10, T0 + 0.3, b)  # nothing given back yet
    assert (b.slots, b.booked) == (2, 2)
    a = await _renew(store, "a", 10, T0 + 0.4, a, started=5)  # below 6 now
    assert (a.slots, a.booked) == (6, 6)
    b = await _renew(store, "b", 10, T0 + 0.5, b)
    assert (b.slots, b.booked) == (6, 6)


async def test_an_expired_grant_frees_its_slots(store: Store) -> None:
    await store.set_limit(Limit("queue", "ai", concurrency=20))
    await _enqueue(store, 30)
    a = await _renew(store, "a", 20, T0)
    assert a.slots == 20 and a.expires_at == T0 + LEASE
    assert await store.claim(["ai"], "loner", 30, LEASE, now=T0 + 1) == []  # all granted
    # a is killed: its grant runs out with its lease, and a claim without a grant has room
    assert len(await store.claim(["ai"], "loner", 30, LEASE, now=T0 + LEASE)) == 20
    await store.deregister_worker("loner")  # its claimed jobs still count, as before
    assert (await _renew(store, "b", 20, T0 + LEASE - 1)).slots == 0  # a's still live
    assert (await _renew(store, "b", 20, T0 + 2 * LEASE + 1)).slots == 20  # loner's too


async def test_deregister_releases_a_workers_grants(store: Store) -> None:
    await store.set_limit(Limit("queue", "ai", concurrency=20))
    assert (await _renew(store, "a", 20, T0)).slots == 20
    await store.deregister_worker("a")
    assert (await _renew(store, "b", 20, T0 + 1)).slots == 20


async def test_a_holder_claims_ahead_and_a_non_holder_counts_the_grants(store: Store) -> None:
    await store.set_limit(Limit("queue", "ai", concurrency=4))
    await _enqueue(store, 20)
    a = await _renew(store, "a", 2, T0)  # wants 2 of the 4
    assert (a.slots, a.booked) == (2, 2)
    # a holder claims twice its grant: its prefetched jobs count against no one
    assert len(await store.claim(["ai"], "a", 10, LEASE, now=T0 + 1)) == 4
    # a claimer without a grant (an older release, Store.claim): the 2 slots not granted
    loner = await store.claim(["ai"], "loner", 10, LEASE, now=T0 + 1)
    assert len(loner) == 2
    assert await store.claim(["ai"], "loner", 10, LEASE, now=T0 + 2) == []
    # a new worker's grant counts the loner's claimed jobs: nothing is free
    b = await _renew(store, "b", 10, T0 + 2)
    assert (b.slots, b.booked) == (0, 0)
    await store.settle([Complete(loner[0].lease)], now=T0 + 3)
    b = await _renew(store, "b", 10, T0 + 3, b)
    assert (b.slots, b.booked) == (1, 1)
    assert await store.claim(["ai"], "loner", 10, LEASE, now=T0 + 4) == []


async def test_a_first_grant_books_what_the_worker_claimed_without_one(store: Store) -> None:
    await store.set_limit(Limit("queue", "ai", concurrency=5))
    await _enqueue(store, 10)
    assert len(await store.claim(["ai"], "w", 3, LEASE, now=T0 + 1)) == 3  # no grant yet
    w = await _renew(store, "w", 1, T0 + 2)  # it may start all 3 before the answer
    assert (w.slots, w.booked) == (1, 3)
    b = await _renew(store, "b", 10, T0 + 2)
    assert (b.slots, b.booked) == (2, 2)


async def test_a_removed_cap_drops_its_grants(store: Store) -> None:
    await store.set_limit(Limit("queue", "ai", concurrency=3))
    a = await _renew(store, "a", 10, T0)
    await store.set_limit(Limit("queue", "ai"))
    asks = [GrantAsk("queue", "ai", a.slots, 0)]
    assert await store.renew_grants("a", ["ai"], 10, asks, LEASE, now=T0 + 1) == []
    assert await store.renew_grants("a", ["other"], 10, [], LEASE, now=T0 + 1) == []


async def test_the_operator_sees_started_jobs_and_the_grants(store: Store) -> None:
    await store.set_limit(Limit("queue", "ai", concurrency=4))
    await _enqueue(store, 10)
    assert (await _renew(store, "a", 2, T0)).slots == 2
    jobs = await store.claim(["ai"], "a", 10, LEASE, now=T0 + 1)  # 2 to run, 2 ahead
    assert len(jobs) == 4
    info = WorkerInfo("a", "host", 1, ("ai",), 2, claimed=2, claimed_queues={"ai": 2})
    await store.heartbeat(info, [j.lease for j in jobs], LEASE, now=T0 + 1)
    [usage] = await store.limits(now=T0 + 2)
    assert (usage.running, usage.claimed, usage.granted, usage.grants) == (2, 4, 2, (("a", 2),))
    shown = usage_json(usage, T0 + 2)
    assert (shown["running"], shown["claimed"], shown["granted"]) == (2, 4, 2)
    assert shown["grants"] == [{"worker": "a", "slots": 2}]
    await store.deregister_worker("a")
    [usage] = await store.limits(now=T0 + 2)
    assert (usage.granted, usage.grants) == (None, ())


async def test_a_task_cap_is_granted_to_the_workers_that_run_the_task(store: Store) -> None:
    await store.set_limit(Limit("task", "report", concurrency=3))
    await store.enqueue_many([new_job(queue="mixed", task="report") for _ in range(10)], now=T0)
    assert await store.renew_grants("other", ["mixed"], 5, [], LEASE, now=T0,
                                    tasks=["send"]) == []  # it runs no report
    [grant] = await store.renew_grants("w", ["mixed"], 5, [], LEASE, now=T0,
                                       tasks=["report", "send"])
    assert (grant.kind, grant.name, grant.slots) == ("task", "report", 3)
    assert len(await store.claim(["mixed"], "w", 10, LEASE, now=T0 + 1)) == 6  # ahead of 3
    assert await store.claim(["mixed"], "loner", 10, LEASE, now=T0 + 1) == []


async def test_a_dead_workers_prefetched_jobs_stop_counting_when_their_leases_end(
        store: Store) -> None:
    """The operator's `running` is the claimed jobs less those the live workers hold ahead,
    as their heartbeats say: a worker's report holds while the jobs it counts are leased (its
    heartbeat's lease), not for 60 s. Worker a dies holding 2 prefetched; once their leases
    have run out, b's 2 running jobs are 2 running, not 2 less a's 2."""
    await store.set_limit(Limit("queue", "ai", concurrency=10))
    await _enqueue(store, 10)
    held = await store.claim(["ai"], "a", 2, LEASE, now=T0)
    info = WorkerInfo("a", "host", 1, ("ai",), 2, claimed=2, claimed_queues={"ai": 2})
    await store.heartbeat(info, [j.lease for j in held], LEASE, now=T0 + 1)
    [usage] = await store.limits(now=T0 + 2)
    assert (usage.running, usage.claimed) == (0, 2)  # a's 2 are claimed ahead
    later = T0 + 1 + LEASE + 5  # a's leases ended (within 60 s of its last heartbeat)
    assert len(await store.claim(["ai"], "b", 2, LEASE, now=later)) == 2
    [usage] = await store.limits(now=later + 1)
    assert (usage.running, usage.claimed) == (2, 2)


async def test_a_worker_asks_each_cap_for_the_slots_it_could_use(store: Store) -> None:
    """renew_grants `wants`: a worker whose slots another queue keeps busy asks the cap for
    what it could use (3 of its 10): it is granted 3, and the others' fair shares count 3."""
    await store.set_limit(Limit("queue", "ai", concurrency=12))
    [a] = await store.renew_grants("a", ["ai", "busy"], 10, [], LEASE, now=T0,
                                   wants={("queue", "ai"): 3, ("queue", "busy"): 3})
    assert (a.slots, a.fair) == (3, 3)
    b = await _renew(store, "b", 10, T0 + 0.1)
    assert (b.slots, b.fair) == (9, 9)
