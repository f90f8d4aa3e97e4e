"""Flow control: cluster-wide concurrency and rate limits per queue and per task, enforced by
the store inside the claim. Exact counts on a fixed clock; leases free slots; nothing counts
twice; several claimers together never take more than the limit."""

from __future__ import annotations

import asyncio

import pytest

from conveyor.limits.model import Limit
from conveyor.store.base import Complete, Fail, Release, Snooze, Store

from .conftest import StoreSetup
from .support import LEASE, T0, claim_ids, error, limit_times, new_job

pytestmark = pytest.mark.anyio


async def _enqueue(store: Store, count: int, **fields: object) -> list[str]:
    results = await store.enqueue_many([new_job(**fields) for _ in range(count)], now=T0)
    return [r.id for r in results]


async def test_a_queue_limited_to_two_runs_at_most_two(store: Store) -> None:
    await store.set_limit(Limit("queue", "ai", concurrency=2))
    await _enqueue(store, 5, queue="ai")

    first = await store.claim(["ai"], "worker-1", 10, LEASE, now=T0 + 1)
    assert len(first) == 2
    assert await claim_ids(store, now=T0 + 2, queues=["ai"]) == []
    assert await claim_ids(store, now=T0 + 2) == []  # every queue: the limit still holds

    await store.settle([Complete(first[0].lease)], now=T0 + 3)
    assert len(await claim_ids(store, now=T0 + 4, queues=["ai"])) == 1


async def test_other_queues_claim_as_before_beside_a_limited_one(store: Store) -> None:
    await store.set_limit(Limit("queue", "ai", concurrency=1))
    await _enqueue(store, 3, queue="ai")
    plain = await _enqueue(store, 4, queue="mail")

    taken = await claim_ids(store, now=T0 + 1, queues=["ai", "mail"])
    assert len(taken) == 5
    assert set(plain) <= set(taken)


async def test_a_slot_frees_when_its_lease_runs_out_and_counts_once(store: Store) -> None:
    await store.set_limit(Limit("queue", "ai", concurrency=2))
    await _enqueue(store, 5, queue="ai")
    assert len(await claim_ids(store, now=T0 + 1, queues=["ai"])) == 2
    # the worker dies: its two leases run out at T0 + 1 + LEASE
    assert await claim_ids(store, now=T0 + LEASE, queues=["ai"]) == []
    after = T0 + 2 + LEASE
    assert len(await claim_ids(store, now=after, queues=["ai"])) == 2
    # the rescued jobs go back to the queue, and their slots are not counted again
    assert await store.rescue_expired(now=after) == 2
    assert await claim_ids(store, now=after, queues=["ai"]) == []
    usage = {u.limit.name: u for u in await store.limits(now=after)}
    assert usage["ai"].running == 2


async def test_a_rate_counts_starts_in_a_sliding_window(store: Store) -> None:
    # 3 per 10 s: at any instant t, at most 3 claims in (t - 10, t]
    await store.set_limit(Limit("queue", "ai", rate=3, period=10.0))
    await _enqueue(store, 20, queue="ai")

    assert len(await claim_ids(store, now=T0, limit=1, queues=["ai"])) == 1
    assert len(await claim_ids(store, now=T0 + 4, queues=["ai"])) == 2
    assert await claim_ids(store, now=T0 + 9.9, queues=["ai"]) == []
    assert len(await claim_ids(store, now=T0 + 10, queues=["ai"])) == 1  # T0's start left
    assert await claim_ids(store, now=T0 + 13, queues=["ai"]) == []
    assert len(await claim_ids(store, now=T0 + 14, queues=["ai"])) == 2
    usage = {u.limit.name: u for u in await store.limits(now=T0 + 14)}
    assert usage["ai"].started == 3


async def test_a_start_counts_whatever_became_of_the_job(store: Store) -> None:
    await store.set_limit(Limit("queue", "ai", rate=2, period=60.0))
    await _enqueue(store, 5, queue="ai")
    jobs = await store.claim(["ai"], "worker-1", 10, LEASE, now=T0)
    assert len(jobs) == 2
    await store.settle([Release(jobs[0].lease), Fail(jobs[1].lease, error(1), retry_in=0)],
                       now=T0 + 1)
    assert await claim_ids(store, now=T0 + 2, queues=["ai"]) == []


async def test_concurrency_and_rate_together_take_the_tighter(store: Store) -> None:
    await store.set_limit(Limit("queue", "ai", concurrency=3, rate=4, period=60.0))
    await _enqueue(store, 10, queue="ai")
    jobs = await store.claim(["ai"], "worker-1", 10, LEASE, now=T0)
    assert len(jobs) == 3
    await store.settle([Complete(j.lease) for j in jobs], now=T0 + 1)
    assert len(await claim_ids(store, now=T0 + 2, queues=["ai"])) == 1


async def test_a_task_limit_holds_in_any_queue_and_blocks_no_other_task(store: Store) -> None:
    await store.set_limit(Limit("task", "t.slow", concurrency=1))
    slow = await _enqueue(store, 3, task="t.slow", queue="a")
    slow += await _enqueue(store, 3, task="t.slow", queue="b")
    fast = await _enqueue(store, 2, task="t.fast", queue="a")

    taken = await claim_ids(store, now=T0 + 1)
    assert set(fast) <= set(taken)
    assert len(set(slow) & set(taken)) == 1
    assert await claim_ids(store, now=T0 + 2, queues=["b"]) == []


async def test_a_task_rate_counts_its_starts(store: Store) -> None:
    await store.set_limit(Limit("task", "t.api", rate=2, period=1.0))
    await _enqueue(store, 6, task="t.api", queue="a")
    assert len(await claim_ids(store, now=T0, queues=["a"])) == 2
    assert await claim_ids(store, now=T0 + 0.5, queues=["a"]) == []
    assert len(await claim_ids(store, now=T0 + 1, queues=["a"])) == 2


async def test_a_snoozed_job_frees_its_slot(store: Store) -> None:
    await store.set_limit(Limit("queue", "ai", concurrency=1))
    await _enqueue(store, 2, queue="ai")
    [job] = await store.claim(["ai"], "worker-1", 10, LEASE, now=T0)
    await store.settle([Snooze(job.lease, 60)], now=T0 + 1)
    assert len(await claim_ids(store, now=T0 + 2, queues=["ai"])) == 1


async def test_limits_are_stored_changed_and_removed(store: Store) -> None:
    await store.set_limit(Limit("queue", "ai", concurrency=5, rate=10, period=60.0))
    await store.set_limit(Limit("queue", "ai", concurrency=3))
    [usage] = await store.limits(now=T0)
    assert usage.limit == Limit("queue", "ai", concurrency=3, source="operator")
    assert (usage.running, usage.started) == (0, 0)

    await store.set_limit(Limit("queue", "ai"))  # no caps: the limit is gone
    assert await store.limits(now=T0) == []
    await _enqueue(store, 4, queue="ai")
    assert len(await claim_ids(store, now=T0 + 1, queues=["ai"])) == 4


async def test_code_declarations_never_override_an_operator_change(store: Store) -> None:
    await store.declare_limits([Limit("queue", "ai", concurrency=5, source="code"),
                                Limit("task", "t.x", rate=10, period=60.0, source="code")])
    await store.set_limit(Limit("queue", "ai", concurrency=2))
    await store.declare_limits([Limit("queue", "ai", concurrency=7, source="code"),
                                Limit("task", "t.x", rate=20, period=60.0, source="code")])
    got = {(u.limit.kind, u.limit.name): u.limit for u in await store.limits(now=T0)}
    assert got[("queue", "ai")] == Limit("queue", "ai", concurrency=2, source="operator")
    assert got[("task", "t.x")] == Limit("task", "t.x", rate=20, period=60.0, source="code")


async def test_declaring_the_stored_limits_again_writes_nothing(store: Store) -> None:
    """A worker declares its code's limits at every start, while others claim under them: a
    declaration that changes nothing writes (and on PostgreSQL locks) nothing."""
    declared = [Limit("queue", "ai", concurrency=5, source="code"),
                Limit("task", "t.x", rate=10, period=60.0, source="code"),
                Limit("key", "t.k", concurrency=1, strategy="debounce", source="code")]
    await store.declare_limits(declared, now=T0)
    await store.declare_limits(list(reversed(declared)), now=T0 + 100)
    assert await limit_times(store) == {("queue", "ai"): T0, ("task", "t.x"): T0,
                                        ("key", "t.k"): T0}
    await store.declare_limits([Limit("queue", "ai", concurrency=6, source="code"),
                                *declared[1:]], now=T0 + 200)
    assert await limit_times(store) == {("queue", "ai"): T0 + 200, ("task", "t.x"): T0,
                                        ("key", "t.k"): T0}
    got = {(u.limit.kind, u.limit.name): u.limit for u in await store.limits(now=T0)}
    assert got[("queue", "ai")] == Limit("queue", "ai", concurrency=6, source="code")
    assert got[("key", "t.k")] == declared[2]


async def test_a_declaration_names_each_limit_once_the_last_wins(store: Store) -> None:
    await store.declare_limits([Limit("queue", "ai", concurrency=5, source="code"),
                                Limit("queue", "ai", concurrency=7, source="code"),
                                Limit("task", "t.x", source="code")], now=T0)
    got = {(u.limit.kind, u.limit.name): u.limit for u in await store.limits(now=T0)}
    assert got == {("queue", "ai"): Limit("queue", "ai", concurrency=7, source="code")}


async def test_another_store_instance_sees_a_change(store_setup: StoreSetup,
                                                    store: Store) -> None:
    if not store_setup.shared:
        pytest.skip("the in-memory store cannot be shared between store instances")
    other: Store = store_setup.make()  # type: ignore[misc]
    await other.open()
    try:
        await _enqueue(store, 6, queue="ai")
        assert len(await other.claim(["ai"], "w-2", 1, LEASE, now=T0)) == 1  # cache: none
        await store.set_limit(Limit("queue", "ai", concurrency=2))
        await asyncio.sleep(1.1)  # a store re-reads the limited names at most 1 s later
        assert len(await other.claim(["ai"], "w-2", 10, LEASE, now=T0)) == 1
    finally:
        await other.close()


async def test_a_change_wakes_listeners_who_apply_it_at_their_next_claim(
        store_setup: StoreSetup, store: Store) -> None:
    """A listening store hears a change at once (no wait for its cache to go stale): its
    worker claims again, under the new limit."""
    if not store_setup.shared:
        pytest.skip("the in-memory store cannot be shared between store instances")
    other: Store = store_setup.make()  # type: ignore[misc]
    await other.open()
    heard = asyncio.Event()
    stop = await other.listen(lambda queue: heard.set() if queue == "*" else None)
    try:
        await _enqueue(store, 6, queue="ai")
        assert len(await other.claim(["ai"], "w-2", 1, LEASE, now=T0)) == 1  # cache: none
        await store.set_limit(Limit("queue", "ai", concurrency=2))
        await asyncio.wait_for(heard.wait(), 10)
        assert len(await other.claim(["ai"], "w-2", 10, LEASE, now=T0)) == 1
    finally:
        await stop()
        await other.close()


async def test_a_rate_set_meanwhile_holds_for_a_claimer_that_has_not_read_it(
        store_setup: StoreSetup, store: Store) -> None:
    """A claimer whose limits (as it last read them) have no rate claims at its clock,
    reading no start to book ahead; a rate set meanwhile still counts its claims exactly."""
    if not store_setup.shared:
        pytest.skip("the in-memory store cannot be shared between store instances")
    other: Store = store_setup.make()  # type: ignore[misc]
    await other.open()
    try:
        await store.set_limit(Limit("queue", "ai", concurrency=10))
        await _enqueue(store, 8, queue="ai")
        assert len(await other.claim(["ai"], "w-2", 1, LEASE, now=T0)) == 1  # read: no rate
        await store.set_limit(Limit("queue", "ai", concurrency=10, rate=3, period=10.0))
        assert len(await other.claim(["ai"], "w-2", 10, LEASE, now=T0 + 1)) == 3
        assert len(await store.claim(["ai"], "w-1", 10, LEASE, now=T0 + 2)) == 0
        assert len(await store.claim(["ai"], "w-1", 10, LEASE, now=T0 + 11.5)) == 3
    finally:
        await other.close()


async def test_claimers_together_never_exceed_a_limit(store_setup: StoreSetup,
                                                      store: Store) -> None:
    if not store_setup.shared:
        pytest.skip("the in-memory store cannot be shared between store instances")
    await store.set_limit(Limit("queue", "ai", concurrency=7))
    await store.set_limit(Limit("task", "t.x", rate=9, period=60.0))
    await _enqueue(store, 40, queue="ai", task="t.x")
    stores: list[Store] = [store_setup.make() for _ in range(6)]  # type: ignore[misc]
    for other in stores:
        await other.open()
    try:
        rounds = await asyncio.gather(*[
            other.claim(["ai"], f"w-{i}", 3, LEASE, now=T0) for i, other in enumerate(stores)])
        assert sum(len(r) for r in rounds) == 7
        for jobs in rounds:
            await store.settle([Complete(j.lease) for j in jobs], now=T0 + 1)
        rounds = await asyncio.gather(*[
            other.claim(["ai"], f"w-{i}", 3, LEASE, now=T0 + 2)
            for i, other in enumerate(stores)])
        assert sum(len(r) for r in rounds) == 2  # the task's rate: 9 starts a minute
    finally:
        for other in stores:
            await other.close()


async def test_a_slow_down_stops_starts_until_its_time(store: Store) -> None:
    await _enqueue(store, 3, queue="ai")
    plain = await _enqueue(store, 1, queue="mail")
    assert await store.slow_down("queue", "ai", 30.0, now=T0)
    assert await claim_ids(store, now=T0 + 1) == plain
    [usage] = await store.limits(now=T0 + 1)
    assert (usage.limit.name, usage.limit.empty, usage.blocked_until) == ("ai", True, T0 + 30)
    assert await claim_ids(store, now=T0 + 29.9, queues=["ai"]) == []
    assert len(await claim_ids(store, now=T0 + 30, queues=["ai"])) == 3


async def test_a_slow_down_keeps_the_caps_and_the_longer_wait(store: Store) -> None:
    await store.set_limit(Limit("task", "t.api", concurrency=2))
    await _enqueue(store, 4, task="t.api")
    assert await store.slow_down("task", "t.api", 60.0, now=T0)
    assert not await store.slow_down("task", "t.api", 10.0, now=T0)  # the later end stays
    [usage] = await store.limits(now=T0)
    assert usage.limit == Limit("task", "t.api", concurrency=2)
    assert await claim_ids(store, now=T0 + 59) == []
    assert len(await claim_ids(store, now=T0 + 60)) == 2


async def test_a_slow_down_says_whether_it_changed_and_wakes_only_when_it_begins(
        store_setup: StoreSetup, store: Store) -> None:
    """A storm of 429s (RateLimited(slow=...)) within one slow-down: each reports whether it
    moved the end later, and only the one that began it wakes the workers (the others change
    nothing they must hear: a worker holding back learns the later end when it asks)."""
    if not store_setup.shared:
        pytest.skip("the in-memory store cannot be shared between store instances")
    other: Store = store_setup.make()  # type: ignore[misc]
    await other.open()
    heard: list[str] = []
    stop = await other.listen(lambda queue: heard.append(queue) if queue == "*" else None)
    try:
        assert await store.slow_down("queue", "ai", 10.0, now=T0)  # begins: created
        for step in range(1, 6):  # within it: the end moves later, no wake
            assert await store.slow_down("queue", "ai", 10.0, now=T0 + step)
        assert not await store.slow_down("queue", "ai", 1.0, now=T0 + 6)  # ends sooner
        await asyncio.sleep(1.0)
        assert len(heard) == 1
        [usage] = await store.limits(now=T0 + 6)
        assert usage.blocked_until == T0 + 15
        assert await store.slow_down("queue", "ai", 5.0, now=T0 + 20)  # the last one ended
        await asyncio.sleep(1.0)
        assert len(heard) == 2
    finally:
        await stop()
        await other.close()


async def test_claimers_together_never_exceed_a_queue_limit_alone(store_setup: StoreSetup,
                                                                  store: Store) -> None:
    """With only a queue's caps, the claim takes the queue's room in one statement."""
    if not store_setup.shared:
        pytest.skip("the in-memory store cannot be shared between store instances")
    await store.set_limit(Limit("queue", "ai", concurrency=5, rate=8, period=60.0))
    await _enqueue(store, 30, queue="ai")
    stores: list[Store] = [store_setup.make() for _ in range(6)]  # type: ignore[misc]
    for other in stores:
        await other.open()
    try:
        rounds = await asyncio.gather(*[
            other.claim(["ai"], f"w-{i}", 2, LEASE, now=T0) for i, other in enumerate(stores)])
        assert sum(len(r) for r in rounds) == 5
        for jobs in rounds:
            await store.settle([Complete(j.lease) for j in jobs], now=T0 + 1)
        rounds = await asyncio.gather(*[
            other.claim(["ai"], f"w-{i}", 2, LEASE, now=T0 + 2)
            for i, other in enumerate(stores)])
        assert sum(len(r) for r in rounds) == 3  # the rate: 8 a minute
    finally:
        for other in stores:
            await other.close()
