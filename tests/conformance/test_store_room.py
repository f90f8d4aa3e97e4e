"""When a rate has room again (Store.room_at): the earliest store time at which a full
window of a queue's or a task's rate lets another job start, or a slow-down ends; None when
nothing is held back by a rate. A worker sleeps until then instead of polling. Exact times
on a fixed clock."""

from __future__ import annotations

import pytest

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
