"""Limits per key (limits/keys.py): each key of a task gets its own caps, keys take turns,
a key at its limit parks (its jobs are not read), strategies at enqueue. Exact counts on a
fixed clock; leases free a key's slot; nothing counts twice; several claimers together
never run two jobs of one key."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from conveyor.job import JobState
from conveyor.limits.model import Limit
from conveyor.store.base import Complete, Fail, Progress, Snooze, Store

from .conftest import StoreSetup
from .support import LEASE, T0, claim_ids, error, new_job

pytestmark = pytest.mark.anyio

TASK = "t.sync"


async def _enqueue(store: Store, key: str | None, count: int, now: float = T0,
                   **fields: object) -> list[str]:
    results = await store.enqueue_many(
        [new_job(task=TASK, limit_key=key, **fields) for _ in range(count)], now=now)
    return [r.id for r in results]


async def _keys_of(store: Store, ids: list[str]) -> Counter[str]:
    """How many of `ids` belong to each key (read back from the jobs' order of enqueue)."""
    found: Counter[str] = Counter()
    for job_id in ids:
        found[KEYS[job_id]] += 1
    return found


KEYS: dict[str, str] = {}


async def _keyed(store: Store, key: str, count: int, now: float = T0) -> list[str]:
    ids = await _enqueue(store, key, count, now)
    KEYS.update(dict.fromkeys(ids, key))
    return ids


async def test_each_key_runs_at_most_its_concurrency(store: Store) -> None:
    await store.set_limit(Limit("key", TASK, concurrency=1))
    a = await _keyed(store, "a", 3)
    b = await _keyed(store, "b", 2)
    first = await store.claim(None, "w-1", 10, LEASE, now=T0 + 1)
    assert await _keys_of(store, [j.id for j in first]) == {"a": 1, "b": 1}
    assert await claim_ids(store, now=T0 + 2) == []
    done = next(j for j in first if j.id in a)
    await store.settle([Complete(done.lease)], now=T0 + 3)
    assert await claim_ids(store, now=T0 + 4) == [a[1]]  # a's next, b still running
    assert b[0] in {j.id for j in first}


async def test_each_key_has_its_own_rate_window(store: Store) -> None:
    await store.set_limit(Limit("key", TASK, rate=2, period=10.0))
    await _keyed(store, "a", 5)
    await _keyed(store, "b", 1)
    assert await _keys_of(store, await claim_ids(store, now=T0)) == {"a": 2, "b": 1}
    assert await claim_ids(store, now=T0 + 9.9) == []
    assert await _keys_of(store, await claim_ids(store, now=T0 + 10)) == {"a": 2}
    [usage] = [u for u in await store.limits(now=T0 + 10) if u.limit.kind == "key"]
    assert usage.keys_at_limit == 1  # a: its window is full again


async def test_keys_take_turns_so_a_small_key_never_waits_behind_a_big_one(
        store: Store) -> None:
    await store.set_limit(Limit("key", TASK, concurrency=2))
    big = await _keyed(store, "big", 300)
    smalls = await _keyed(store, "s1", 10) + await _keyed(store, "s2", 10)
    started: list[str] = []
    now = T0
    while len(started) < 80:  # two slots: claim, finish, claim again
        now += 1
        jobs = await store.claim(None, "w-1", 2, LEASE, now=now)
        started.extend(j.id for j in jobs)
        await store.settle([Complete(j.lease) for j in jobs], now=now)
    fiftieth_big = [i for i, job_id in enumerate(started) if job_id in big][49]
    last_small = max(started.index(job_id) for job_id in smalls)
    assert last_small < fiftieth_big
    assert len(set(started)) == len(started)  # nothing claimed twice


async def test_a_key_at_its_limit_does_not_hold_back_other_keys_or_tasks(
        store: Store) -> None:
    await store.set_limit(Limit("key", TASK, concurrency=1))
    for n in range(40):
        await _keyed(store, f"k{n}", 3)
    plain = [r.id for r in await store.enqueue_many([new_job() for _ in range(3)], now=T0)]
    unkeyed = await _enqueue(store, None, 2)  # no key: the task's own limits only
    first = await claim_ids(store, now=T0 + 1, limit=100)
    assert len(first) == 40 + 3 + 2
    assert set(plain + unkeyed) <= set(first)
    assert await claim_ids(store, now=T0 + 2) == []
    [usage] = [u for u in await store.limits(now=T0 + 2) if u.limit.kind == "key"]
    assert (usage.keys_at_limit, usage.running) == (40, 42)


async def test_a_killed_workers_slot_frees_when_its_lease_runs_out_and_counts_once(
        store: Store) -> None:
    await store.set_limit(Limit("key", TASK, concurrency=1))
    a = await _keyed(store, "a", 3)
    assert await claim_ids(store, now=T0) == [a[0]]
    assert await claim_ids(store, now=T0 + LEASE - 1) == []  # the worker died; lease holds
    after = T0 + LEASE + 1
    assert await claim_ids(store, now=after) == [a[1]]  # the lease ran out: the slot is free
    assert await store.rescue_expired(now=after) == 1  # a[0] goes back, counted once
    assert await claim_ids(store, now=after) == []
    held = await store.get(a[0])
    assert held is not None and (held.state, held.attempt) == (JobState.QUEUED, 1)


async def test_a_job_held_by_its_key_uses_no_attempt(store: Store) -> None:
    await store.set_limit(Limit("key", TASK, concurrency=1))
    a = await _keyed(store, "a", 2)
    for second in range(5):
        await claim_ids(store, now=T0 + second)
    waiting = await store.get(a[1])
    assert waiting is not None and (waiting.state, waiting.attempt) == (JobState.QUEUED, 0)


async def test_a_retry_waits_its_backoff_and_its_key_comes_back(store: Store) -> None:
    await store.set_limit(Limit("key", TASK, concurrency=1))
    [a] = await _keyed(store, "a", 1)
    [job] = await store.claim(None, "w-1", 1, LEASE, now=T0)
    await store.settle([Fail(job.lease, error(1), retry_in=5.0)], now=T0 + 1)
    assert await claim_ids(store, now=T0 + 2) == []
    await store.promote_scheduled(now=T0 + 7)
    assert await claim_ids(store, now=T0 + 7) == [a]


async def test_drop_leaves_out_a_new_job_whose_key_is_full(store: Store) -> None:
    await store.set_limit(Limit("key", TASK, concurrency=1, strategy="drop"))
    kept = await store.enqueue_many([new_job(task=TASK, limit_key="a")], now=T0)
    dropped = await store.enqueue_many([new_job(task=TASK, limit_key="a"),
                                        new_job(task=TASK, limit_key="b")], now=T0)
    assert [r.dropped for r in kept + dropped] == [False, True, False]
    assert dropped[0].state == JobState.CANCELLED
    assert await store.get(dropped[0].id) is None  # nothing stored
    jobs = await store.claim(None, "w-1", 10, LEASE, now=T0 + 1)
    assert {j.id for j in jobs} == {kept[0].id, dropped[1].id}
    [again] = await store.enqueue_many([new_job(task=TASK, limit_key="a")], now=T0 + 2)
    assert again.dropped  # a's job runs
    await store.settle([Complete(j.lease) for j in jobs], now=T0 + 3)
    [after] = await store.enqueue_many([new_job(task=TASK, limit_key="a")], now=T0 + 4)
    assert not after.dropped


async def test_debounce_keeps_only_the_newest_waiting_job(store: Store) -> None:
    await store.set_limit(Limit("key", TASK, concurrency=1, strategy="debounce"))
    first = await _keyed(store, "a", 1)
    [job] = await store.claim(None, "w-1", 1, LEASE, now=T0)
    older = await _keyed(store, "a", 2, now=T0 + 1)
    [newest] = await _keyed(store, "a", 1, now=T0 + 2)
    other = await _keyed(store, "b", 1, now=T0 + 2)
    for job_id, by in zip(older, [older[1], newest], strict=True):  # a batch keeps its last
        gone = await store.get(job_id)
        assert gone is not None and gone.state == JobState.CANCELLED
        assert gone.dead_reason == f"superseded by {by}"
    running = await store.get(first[0])
    assert running is not None and running.state == JobState.RUNNING  # untouched
    assert await claim_ids(store, now=T0 + 3) == other
    await store.settle([Complete(job.lease)], now=T0 + 4)
    assert await claim_ids(store, now=T0 + 5) == [newest]


async def test_a_key_limit_changed_at_run_time_applies_at_the_next_claim(
        store: Store) -> None:
    await store.set_limit(Limit("key", TASK, concurrency=1))
    await _keyed(store, "a", 5)
    assert len(await claim_ids(store, now=T0)) == 1
    await store.set_limit(Limit("key", TASK, concurrency=3))
    assert len(await claim_ids(store, now=T0 + 1)) == 2  # its key looked at again: 3 now
    assert len(await claim_ids(store, now=T0 + 2)) == 0
    got = {(u.limit.kind, u.limit.name): u.limit for u in await store.limits(now=T0)}
    assert got[("key", TASK)] == Limit("key", TASK, concurrency=3)


async def test_claimers_together_never_run_two_jobs_of_one_key(store_setup: StoreSetup,
                                                               store: Store) -> None:
    if not store_setup.shared:
        pytest.skip("the in-memory store cannot be shared between store instances")
    await store.set_limit(Limit("key", TASK, concurrency=1))
    for key in "abcde":
        await _keyed(store, key, 6)
    stores: list[Store] = [store_setup.make() for _ in range(6)]  # type: ignore[misc]
    for other in stores:
        await other.open()
    try:
        rounds = await asyncio.gather(*[
            other.claim(None, f"w-{i}", 3, LEASE, now=T0) for i, other in enumerate(stores)])
        taken = [j.id for jobs in rounds for j in jobs]
        assert await _keys_of(store, taken) == dict.fromkeys("abcde", 1)
    finally:
        for other in stores:
            await other.close()


async def test_a_dead_job_retried_comes_back_under_its_key(store: Store) -> None:
    await store.set_limit(Limit("key", TASK, concurrency=1))
    [a] = await _keyed(store, "a", 1)
    [job] = await store.claim(None, "w-1", 1, LEASE, now=T0)
    await store.settle([Fail(job.lease, error(1), retry_in=None)], now=T0 + 1)
    assert await claim_ids(store, now=T0 + 2) == []  # the key has nothing left: its row goes
    assert await store.requeue([a], now=T0 + 3) == {a: "queued"}
    assert await claim_ids(store, now=T0 + 3) == [a]


async def test_a_dead_workers_job_keeps_its_key_until_it_is_rescued(store: Store) -> None:
    await store.set_limit(Limit("key", TASK, concurrency=1))
    [a] = await _keyed(store, "a", 1)
    assert await claim_ids(store, now=T0) == [a]
    after = T0 + LEASE + 1  # the worker died: nothing queued, its lease ran out
    assert await claim_ids(store, now=after) == []
    assert await store.rescue_expired(now=after) == 1
    assert await claim_ids(store, now=after + 1) == [a]  # its key was kept for it


async def test_a_claim_from_other_queues_leaves_a_keys_jobs_to_their_own(store: Store) -> None:
    await store.set_limit(Limit("key", TASK, concurrency=1))
    a = await _keyed(store, "a", 2)
    assert await claim_ids(store, now=T0, queues=["elsewhere"]) == []
    assert await claim_ids(store, now=T0, queues=["default"]) == [a[0]]  # not parked by it
    [other] = await store.enqueue_many([new_job(task=TASK, limit_key="b", queue="other")],
                                       now=T0)
    [here] = await store.enqueue_many([new_job(task=TASK, limit_key="b")], now=T0 + 1)
    [job] = await store.claim(["default"], "w-1", 5, LEASE, now=T0 + 2)
    assert job.id == here.id  # the key's row points at "default", where its last job went
    assert await claim_ids(store, now=T0 + 3, queues=["other"]) == []  # b: one running
    await store.settle([Complete(job.lease)], now=T0 + 4)
    assert await claim_ids(store, now=T0 + 5, queues=["default"]) == []  # b moves to "other"
    assert await claim_ids(store, now=T0 + 5, queues=["other"]) == [other.id]


async def test_a_jobs_key_and_its_use_say_what_holds_it(store: Store) -> None:
    limit = Limit("key", TASK, concurrency=1, rate=5, period=60.0)
    await store.set_limit(limit)
    a = await _keyed(store, "a", 2)
    [plain] = await _enqueue(store, None, 1)
    assert await claim_ids(store, now=T0) == [a[0], plain]
    use = await store.key_use(a[1], now=T0 + 1)
    assert use is not None and (use.key, use.running, use.starts) == ("a", 1, [T0])
    assert use.holding(limit, T0 + 1) == (
        "each key of task 't.sync': key 'a' at its limit (concurrency 1, rate 5/min; "
        "1 running, 1 started in the window)")
    assert await store.key_use(plain, now=T0 + 1) is None
    later = await store.key_use(a[1], now=T0 + LEASE + 1)  # the lease ran out: room again
    assert later is not None and later.holding(limit, T0 + LEASE + 1) is None


async def test_a_keys_slot_frees_at_the_settle_of_its_own_job_only(store: Store) -> None:
    """Settles of other jobs, and progress of the key's own, leave the key at its limit."""
    await store.set_limit(Limit("key", TASK, concurrency=1))
    a = await _keyed(store, "a", 2)
    [plain] = await store.enqueue_many([new_job(task="t.plain")], now=T0)
    first = {j.id: j for j in await store.claim(None, "w-1", 10, LEASE, now=T0 + 1)}
    assert set(first) == {a[0], plain.id}
    await store.settle([Complete(first[plain.id].lease),
                        Progress(first[a[0]].lease, 50.0)], now=T0 + 2)
    assert await claim_ids(store, now=T0 + 3) == []
    await store.settle([Complete(first[a[0]].lease)], now=T0 + 4)
    assert await claim_ids(store, now=T0 + 5) == [a[1]]


async def test_a_slowed_key_starts_nothing_until_its_time_other_keys_go_on(
        store: Store) -> None:
    """RateLimited(retry_in, slow="key"): the job's key waits, on every claimer."""
    await store.set_limit(Limit("key", TASK, concurrency=5))
    a = await _keyed(store, "a", 4)
    b = await _keyed(store, "b", 2)
    [first] = await store.claim(None, "w-1", 1, LEASE, now=T0)
    assert first.id == a[0]
    assert await store.slow_key(first.id, 30.0, now=T0 + 1)
    await store.settle([Snooze(first.lease, 30.0)], now=T0 + 1)  # unparks the key
    await _keyed(store, "a", 1, now=T0 + 2)  # an enqueue unparks it too
    assert sorted(await claim_ids(store, now=T0 + 3)) == sorted(b)
    assert await claim_ids(store, now=T0 + 30.9) == []
    use = await store.key_use(a[1], now=T0 + 11)
    assert use is not None and use.slowed_until == T0 + 31
    assert use.holding(Limit("key", TASK, concurrency=5), T0 + 11) == (
        "each key of task 't.sync': key 'a' slowed down for 20 s more (RateLimited)")
    await store.promote_scheduled(now=T0 + 31)
    assert len(await claim_ids(store, now=T0 + 31)) == 5  # a's 3 left, the new one, a[0]


async def test_slowing_a_key_keeps_the_longer_wait_and_needs_a_key(store: Store) -> None:
    await store.set_limit(Limit("key", TASK, rate=100, period=60.0))
    a = await _keyed(store, "a", 3)
    [plain] = await _enqueue(store, None, 1)
    assert await store.slow_key(a[0], 60.0, now=T0)
    assert not await store.slow_key(a[1], 10.0, now=T0)  # the later end stays: no change
    assert not await store.slow_key(plain, 10.0, now=T0)  # no key: nothing slowed
    assert await claim_ids(store, now=T0 + 59) == [plain]
    assert len(await claim_ids(store, now=T0 + 60)) == 3


async def test_a_key_limit_without_caps_can_be_slowed_down(store: Store) -> None:
    """A task declared with key=KeyLimit(...) and no caps stores keys but no key limit."""
    a = await _keyed(store, "a", 2)
    b = await _keyed(store, "b", 1)
    assert await store.slow_key(a[0], 20.0, now=T0)
    assert await claim_ids(store, now=T0 + 1) == b
    assert sorted(await claim_ids(store, now=T0 + 20)) == sorted(a)
