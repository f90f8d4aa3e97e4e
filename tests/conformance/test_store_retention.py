"""Retention by count (prune_kept) and the maintenance calls that tell which jobs changed
(rescue_expired_jobs, expire_jobs): the same behaviour on every store."""

from __future__ import annotations

import pytest

from conveyor.job import JobState
from conveyor.store.base import Complete, Fail, Store

from .support import LEASE, T0, claim_one, enqueue, error

pytestmark = pytest.mark.anyio


async def finish(store: Store, count: int, *, queue: str = "default", task: str = "demo.task",
                 dead: bool = False, at: float = T0) -> list[str]:
    """`count` jobs finished one second apart, oldest first (completed, or dead)."""
    ids = []
    for i in range(count):
        job_id = await enqueue(store, queue=queue, task=task, max_attempts=1, now=at + i)
        claimed = await claim_one(store, now=at + i, queues=[queue])
        item = Fail(claimed.lease, error(1), None) if dead else Complete(claimed.lease)
        assert await store.settle([item], now=at + i + 0.5) == [True]
        ids.append(job_id)
    return ids


async def states(store: Store, ids: list[str]) -> list[str | None]:
    found = [await store.get(job_id) for job_id in ids]
    return [None if job is None else str(job.state) for job in found]


async def test_keeps_the_newest_completed_jobs_of_a_queue(store: Store) -> None:
    done = await finish(store, 5)
    assert await store.prune_kept("completed", 2, queue="default", now=T0 + 100) == 3
    assert await states(store, done) == [None, None, None, "completed", "completed"]
    assert await store.prune_kept("completed", 2, queue="default", now=T0 + 100) == 0


async def test_other_queues_states_and_tasks_are_left_alone(store: Store) -> None:
    emails = await finish(store, 3, queue="emails")
    dead = await finish(store, 3, dead=True)
    mine = await finish(store, 3, task="other.task")
    waiting = await enqueue(store)
    assert await store.prune_kept("completed", 0, queue="default", task="demo.task",
                                  now=T0 + 100) == 0
    assert await store.prune_kept("dead", 1, queue="default", now=T0 + 100) == 2
    assert await states(store, dead) == [None, None, "dead"]
    assert await states(store, emails) == ["completed"] * 3
    assert await states(store, mine) == ["completed"] * 3
    assert (await store.get(waiting)).state == JobState.QUEUED  # type: ignore[union-attr]


async def test_a_task_limit_counts_across_queues(store: Store) -> None:
    first = await finish(store, 2, queue="a", task="report")
    second = await finish(store, 2, queue="b", task="report", at=T0 + 10)
    assert await store.prune_kept("completed", 1, task="report", now=T0 + 100) == 3
    assert await states(store, first + second) == [None, None, None, "completed"]


async def test_pruning_by_count_is_bounded_by_its_limit(store: Store) -> None:
    await finish(store, 6)
    assert await store.prune_kept("completed", 1, queue="default", limit=2,
                                  now=T0 + 100) == 2
    assert await store.prune_kept("completed", 1, queue="default", limit=10,
                                  now=T0 + 100) == 3


async def test_a_reserved_idempotency_key_is_kept(store: Store) -> None:
    job_id = await enqueue(store, idempotency_key="k", unique_for=1000.0)
    claimed = await claim_one(store)
    await store.settle([Complete(claimed.lease)], now=T0 + 1)
    assert await store.prune_kept("completed", 0, now=T0 + 10) == 0
    assert await store.get(job_id) is not None
    assert await store.prune_kept("completed", 0, now=T0 + 2000) == 1


async def test_bad_arguments_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="state"):
        await store.prune_kept("running", 1)
    with pytest.raises(ValueError, match="keep"):
        await store.prune_kept("completed", -1)


async def test_rescue_and_expire_tell_which_jobs_changed(store: Store) -> None:
    lost = await enqueue(store, max_attempts=1, task="lost.task", queue="q1", tenant="t1")
    again = await enqueue(store, max_attempts=2, task="again.task", queue="q1")
    await store.claim(["q1"], "worker-gone", 2, LEASE, now=T0)
    events = await store.rescue_expired_jobs(now=T0 + LEASE + 1)
    got = {(e.id, e.state, e.queue, e.task, e.tenant) for e in events}
    assert got == {(lost, "dead", "q1", "lost.task", "t1"),
                   (again, "queued", "q1", "again.task", None)}
    stale = await enqueue(store, ttl=10.0, task="stale.task")
    [event] = await store.expire_jobs(now=T0 + 11)
    assert (event.id, event.state, event.task) == (stale, "dead", "stale.task")
    assert await store.expire_jobs(now=T0 + 12) == []
    assert await store.rescue_expired_jobs(now=T0 + 2 * LEASE) == []
