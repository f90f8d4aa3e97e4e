"""When a rate has room again (Store.room_at): the earliest store time at which a full
window of a queue's or a task's rate lets another job start, or a slow-down ends; None when
nothing is held back by a rate. A worker sleeps until then instead of polling. Exact times
on a fixed clock."""

from __future__ import annotations

import pytest

from conveyor.limits.claiming import BOOK_AHEAD
from conveyor.limits.model import Limit
from conveyor.store.base import Complete, Store

from .support import T0, claim_ids, new_job

pytestmark = pytest.mark.anyio


async def _enqueue(store: Store, count: int, **fields: object) -> list[str]:
    results = await store.enqueue_many([new_job(**fields) for _ in range(count)], now=T0)
    return [r.id for r in results]


async def test_nothing_held_by_a_rate_has_no_room_time(store: Store) -> None:
    assert await store.room_at(["ai"], now=T0) is None  # no limits at all
    await store.set_limit(Limit("queue", "ai", concurrency=1))
    await _enqueue(store, 3, queue="ai")
    assert len(await claim_ids(store, now=T0, queues=["ai"])) == 1
    assert await store.room_at(["ai"], now=T0 + 1) is None  # full, but by concurrency
    await store.set_limit(Limit("queue", "ai", rate=2, period=10.0))
    assert len(await claim_ids(store, now=T0 + 2, limit=1, queues=["ai"])) == 1
    assert await store.room_at(["ai"], now=T0 + 3) is None  # one start of two in the window


async def test_a_full_window_has_room_when_its_oldest_counted_start_leaves(
        store: Store) -> None:
    # 2 per 10 s: starts at T0 + 1 and T0 + 3 fill the window until T0 + 11
    await store.set_limit(Limit("queue", "ai", rate=2, period=10.0))
    await _enqueue(store, 6, queue="ai")
    assert len(await claim_ids(store, now=T0 + 1, limit=1, queues=["ai"])) == 1
    assert await store.room_at(["ai"], now=T0 + 2) is None
    assert len(await claim_ids(store, now=T0 + 3, limit=1, queues=["ai"])) == 1
    assert await store.room_at(["ai"], now=T0 + 4) == T0 + 11
    assert await store.room_at(None, now=T0 + 10.5) == T0 + 11  # every queue
    assert await claim_ids(store, now=T0 + 10.9, queues=["ai"]) == []
    assert len(await claim_ids(store, now=T0 + 11, queues=["ai"])) == 1  # it was right
    assert await store.room_at(["ai"], now=T0 + 11) == T0 + 13  # T0 + 3 leaves next


async def test_only_the_limits_a_claim_answers_to_count(store: Store) -> None:
    await store.set_limit(Limit("queue", "ai", rate=1, period=60.0))
    await store.set_limit(Limit("queue", "mail", rate=1, period=30.0))
    await _enqueue(store, 2, queue="ai")
    await _enqueue(store, 2, queue="mail")
    assert len(await claim_ids(store, now=T0 + 5, queues=["ai", "mail"])) == 2
    assert await store.room_at(["ai"], now=T0 + 6) == T0 + 65
    assert await store.room_at(["mail"], now=T0 + 6) == T0 + 35
    assert await store.room_at(["ai", "mail"], now=T0 + 6) == T0 + 35  # the earliest
    assert await store.room_at(["other"], now=T0 + 6) is None


async def test_a_task_rate_counts_for_every_queue(store: Store) -> None:
    await store.set_limit(Limit("task", "t.rated", rate=1, period=20.0))
    [job] = await store.claim(None, "w-1", 5, 30, now=T0 + 2) or [None]
    assert job is None  # nothing enqueued yet
    await _enqueue(store, 2, task="t.rated", queue="any")
    [job] = await store.claim(["any"], "w-1", 5, 30, now=T0 + 2)
    await store.settle([Complete(job.lease)], now=T0 + 3)  # a finished start still counts
    assert await store.room_at(["elsewhere"], now=T0 + 4) == T0 + 22


async def test_a_slow_down_holds_until_it_ends_or_the_window_frees_later(
        store: Store) -> None:
    await store.set_limit(Limit("queue", "ai", rate=1, period=100.0))
    await _enqueue(store, 2, queue="ai")
    assert await store.slow_down("queue", "mail", 30.0, now=T0)
    assert await store.room_at(["mail"], now=T0 + 1) == T0 + 30
    assert await store.room_at(["mail"], now=T0 + 30) is None  # it has ended
    assert len(await claim_ids(store, now=T0 + 1, queues=["ai"])) == 1
    assert await store.slow_down("queue", "ai", 10.0, now=T0 + 2)
    assert await store.room_at(["ai"], now=T0 + 3) == T0 + 101  # the window is later


# --- booked starts (limits/claiming.claim_time): a claim up to BOOK_AHEAD before the room
# time happens at the room time; its jobs' started_at (ClaimedJob.starts_at) is that time.


async def test_a_claim_just_before_the_room_time_books_its_start_there(store: Store) -> None:
    await store.set_limit(Limit("queue", "ai", rate=2, period=10.0))
    await _enqueue(store, 6, queue="ai")
    assert len(await claim_ids(store, now=T0 + 1, limit=1, queues=["ai"])) == 1
    assert len(await claim_ids(store, now=T0 + 3, limit=1, queues=["ai"])) == 1
    assert await claim_ids(store, now=T0 + 11 - 2 * BOOK_AHEAD, queues=["ai"]) == []  # too far
    [job] = await store.claim(["ai"], "w-1", 5, 30, now=T0 + 11 - BOOK_AHEAD / 2)
    assert job.starts_at == T0 + 11  # booked: the start of T0 + 1 leaves the window then
    assert (await store.get(job.id)).started_at == T0 + 11
    assert await claim_ids(store, now=T0 + 11 - BOOK_AHEAD / 4, queues=["ai"]) == []  # full
    assert await store.room_at(["ai"], now=T0 + 11) == T0 + 13
    [job] = await store.claim(["ai"], "w-1", 5, 30, now=T0 + 13)  # at once: no booking
    assert job.starts_at == T0 + 13
    assert len(await claim_ids(store, now=T0 + 21 - BOOK_AHEAD, queues=["ai"])) == 1


async def test_a_task_rate_books_too_and_a_key_rate_stops_it(store: Store) -> None:
    await store.set_limit(Limit("task", "t.rated", rate=1, period=5.0))
    await _enqueue(store, 4, task="t.rated", queue="a")
    assert len(await claim_ids(store, now=T0, queues=["a"])) == 1
    [job] = await store.claim(["a", "b"], "w-1", 5, 30, now=T0 + 5 - BOOK_AHEAD / 2)
    assert job.starts_at == T0 + 5
    await store.set_limit(Limit("key", "t.other", concurrency=1))  # answers to every claim
    [job] = await store.claim(["a"], "w-1", 5, 30, now=T0 + 10 - BOOK_AHEAD / 2)
    assert job.starts_at == T0 + 10  # a key's concurrency: booked all the same
    await store.set_limit(Limit("key", "t.other", concurrency=1, rate=5, period=1.0))
    assert await claim_ids(store, now=T0 + 15 - BOOK_AHEAD / 2, queues=["a"]) == []
    assert len(await claim_ids(store, now=T0 + 15, queues=["a"])) == 1  # a key's rate: at once


async def test_claims_at_odd_times_keep_the_starts_a_period_apart(store: Store) -> None:
    """3 a second, claims of at most 2 every 3/64 s for 4 s (never at a room time): each
    window's starts are the first window's moved by whole periods, and no window of the
    store's start times holds more than 3."""
    await store.set_limit(Limit("queue", "ai", rate=3, period=1.0))
    await _enqueue(store, 40, queue="ai")
    starts: list[float] = []
    for step in range(84):  # the last at 3.89 s: the room at 4 s is too far
        jobs = await store.claim(["ai"], "w-1", 2, 30, now=T0 + step * 3 / 64)
        starts.extend(job.starts_at - T0 for job in jobs if job.starts_at is not None)
    first = [at for at in starts if at < 1]
    assert first == [0.0, 0.0, 3 / 64]
    assert starts == [at + period for period in range(4) for at in first]
    assert max(sum(1 for at in starts if t - 1 < at <= t) for t in starts) == 3
