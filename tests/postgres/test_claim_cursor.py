"""Claim cursors (postgres/cursor.py): while full claims are slow, a claimer continues after
its last claimed job; a wake-up for jobs that sort before it makes the next claim full."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from conveyor.job import NewJob, new_id
from conveyor.store.base import Release
from conveyor.store.postgres import cursor as cursor_module
from conveyor.store.postgres.store import PostgresStore

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


def job(n: int, priority: int = 0) -> NewJob:
    return NewJob(id=new_id(), task="t", queue="q", payload=b'{"n":%d}' % n, priority=priority)


@pytest.fixture
def always_slow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every full claim counts as slow, as under a transaction held open elsewhere."""
    monkeypatch.setattr(cursor_module, "SLOW", -1.0)


@pytest.fixture
async def listening(store: PostgresStore) -> AsyncIterator[None]:
    """A wake-up listener on the store, as every worker has: cursors need one."""
    stop = await store.listen(lambda queue: None)
    try:
        yield
    finally:
        await stop()


async def insert_unannounced(store: PostgresStore, queue: str, n: int, priority: int) -> None:
    """A job whose wake-up was lost: inserted without one."""
    await store._one("INSERT INTO {schema}.conveyor_jobs (id, task, queue, state, priority,"
                     " payload) VALUES (%(id)s, 't', %(queue)s, 'queued', %(priority)s,"
                     " %(payload)s) RETURNING id",
                     {"id": new_id(), "queue": queue, "priority": priority,
                      "payload": b'{"n":%d}' % n})


async def claim_ns(store: PostgresStore, limit: int) -> list[int]:
    claimed = await store.claim(["q"], "w1", limit, 30)
    return [int(c.payload.decode().split(":")[1].rstrip("}")) for c in claimed]


async def test_slow_claims_continue_after_the_cursor(store: PostgresStore, always_slow: None,
                                                     listening: None) -> None:
    await store.enqueue_many([job(n) for n in range(6)])
    assert await claim_ns(store, 2) == [0, 1]   # a full claim: slow, so the cursor is kept
    assert store.cursors.get("w1", "q").continues()
    assert await claim_ns(store, 2) == [2, 3]   # continued after job 1
    # A job that sorts first (priority) whose wake-up was lost (inserted here without one):
    # the continuation does not see it (the next full claim does, at most FULL_EVERY later)
    await insert_unannounced(store, "q", 100, 5)
    assert await claim_ns(store, 1) == [4]
    # ... and once the continuation finds nothing, the claim is a full one at once.
    assert await claim_ns(store, 5) == [5]
    assert await claim_ns(store, 5) == [100]


async def test_a_wakeup_for_jobs_before_the_cursor_makes_the_next_claim_full(
        store: PostgresStore, always_slow: None) -> None:
    woken: list[str] = []
    stop = await store.listen(woken.append)
    try:
        await store.enqueue_many([job(n) for n in range(4)])
        assert await claim_ns(store, 1) == [0]
        await store.enqueue_many([job(100, priority=5)])   # its wake-up is marked
        for _ in range(100):
            if "q" in woken[1:]:
                break
            await asyncio.sleep(0.02)
        assert woken[-1] == "q"  # the callback sees the plain queue name
        assert await claim_ns(store, 2) == [100, 1]  # full: the priority job first
    finally:
        await stop()


async def test_without_a_listener_slow_claims_stay_full(store: PostgresStore,
                                                       always_slow: None) -> None:
    """Nothing would tell the store of a job that sorts before a cursor: exact order."""
    await store.enqueue_many([job(n) for n in range(4)])
    assert await claim_ns(store, 1) == [0]
    assert await claim_ns(store, 1) == [1]
    await store.enqueue_many([job(100, priority=5)])
    assert await claim_ns(store, 1) == [100]
    stop = await store.listen(lambda queue: None)
    await stop()
    await stop()  # a second stop changes nothing
    assert store.cursors.listeners == 0
    assert await claim_ns(store, 1) == [2]
    await store.enqueue_many([job(101, priority=5)])
    assert await claim_ns(store, 1) == [101]


async def test_fast_claims_are_always_full(store: PostgresStore, listening: None,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cursor_module, "SLOW", 60.0)  # every claim fast, on any machine
    await store.enqueue_many([job(n) for n in range(3)])
    assert await claim_ns(store, 1) == [0]
    assert not store.cursors.get("w1", "q").continues()
    await store.enqueue_many([job(100, priority=5)])
    assert await claim_ns(store, 1) == [100]


async def test_claims_from_several_queues_continue_each_queue(
        store: PostgresStore, always_slow: None, listening: None) -> None:
    def on(queue: str, n: int) -> NewJob:
        return NewJob(id=new_id(), task="t", queue=queue, payload=b'{"n":%d}' % n)

    await store.enqueue_many([on("a", n) for n in range(3)] + [on("b", 10 + n)
                                                              for n in range(3)])
    first = await store.claim(["a", "b"], "w1", 2, 30)   # full (slow): cursors on a and b
    assert sorted(c.queue for c in first) == ["a", "a"]
    second = await store.claim(["a", "b"], "w1", 3, 30)  # continues: after a's cursor, b from 0
    assert sorted(c.payload for c in second) == [b'{"n":10}', b'{"n":11}', b'{"n":2}']
    rest = await store.claim(["a", "b"], "w1", 5, 30)
    assert [c.payload for c in rest] == [b'{"n":12}']
    assert await store.claim(["a", "b"], "w1", 5, 30) == []


async def test_released_jobs_wake_their_queue_and_are_claimed_next(
        store: PostgresStore, always_slow: None) -> None:
    """A stopping worker releases prefetched jobs: they sort before the cursor of a worker
    that kept claiming, and their wake-up (marked) makes its next claim a full one."""
    woken: list[str] = []
    stop = await store.listen(woken.append)
    try:
        await store.enqueue_many([job(n) for n in range(5)])
        [first] = await store.claim(["q"], "stopping", 1, 30)
        assert await claim_ns(store, 1) == [1]        # w1's cursor is now past job 0
        assert await store.settle([Release(first.lease)]) == [True]
        for _ in range(100):
            if woken.count("q") >= 2:  # the enqueue's wake-up, then the release's
                break
            await asyncio.sleep(0.02)
        assert woken.count("q") >= 2
        assert await claim_ns(store, 1) == [0]        # full: the released job first
    finally:
        await stop()


async def wait_known(store: PostgresStore, queue: str) -> None:
    for _ in range(200):
        if queue in store.cursors.known:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{queue} never became known")


async def any_ns(store: PostgresStore, limit: int) -> list[int]:
    claimed = await store.claim(None, "w1", limit, 30)
    return [int(c.payload.decode().split(":")[1].rstrip("}")) for c in claimed]


async def test_a_claimer_on_every_queue_claims_from_the_queues_it_has_heard_of(
        store: PostgresStore, listening: None) -> None:
    """Wake-ups and claimed jobs name the queues; claims go to those (no skip scan) until
    they have nothing, when a CLAIM_ANY finds the rest."""
    await insert_unannounced(store, "early", 1, 0)           # before anyone listened
    assert await any_ns(store, 5) == [1]                      # CLAIM_ANY finds it
    assert store.cursors.known.keys() == {"early"}
    await store.enqueue_many([NewJob(id=new_id(), task="t", queue="fresh", payload=b'{"n":2}')])
    await wait_known(store, "fresh")                          # its wake-up named it
    await insert_unannounced(store, "hidden", 3, 9)           # sorts first, but unheard of
    before = time.monotonic()
    assert await any_ns(store, 1) == [2]                      # from the known queues
    assert store.cursors.known["fresh"] >= before             # seen again: stays known
    assert await any_ns(store, 1) == [3]                      # they had none: CLAIM_ANY
    assert "hidden" in store.cursors.known
    await insert_unannounced(store, "other", 4, 9)
    store.cursors.woken("*")                                  # a reconnect: may have missed
    await insert_unannounced(store, "early", 5, 0)
    assert await any_ns(store, 1) == [4]                      # CLAIM_ANY, exact order


async def test_without_a_listener_a_claim_from_every_queue_is_exact(
        store: PostgresStore) -> None:
    await store.enqueue_many([NewJob(id=new_id(), task="t", queue="a", payload=b'{"n":1}')])
    assert await any_ns(store, 1) == [1]
    await insert_unannounced(store, "b", 2, 0)
    await store.enqueue_many([NewJob(id=new_id(), task="t", queue="a", payload=b'{"n":3}',
                                     priority=-1)])
    assert await any_ns(store, 1) == [2]


async def test_known_queues_are_forgotten_and_capped(store: PostgresStore, listening: None,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    cursors = store.cursors
    for n in range(cursor_module.MAX_KNOWN + 1):
        cursors.woken(f"q{n}")
    await insert_unannounced(store, "zz", 7, 0)
    assert await any_ns(store, 1) == [7]      # too many known queues: CLAIM_ANY
    monkeypatch.setattr(cursor_module, "FORGET_AFTER", -1.0)
    await insert_unannounced(store, "zz", 8, 0)
    assert await any_ns(store, 1) == [8]
    assert cursors.known.keys() == {"zz"}     # the rest forgotten, zz just claimed from


def test_a_listener_hearing_many_queues_remembers_a_bounded_number(
        monkeypatch: pytest.MonkeyPatch) -> None:
    cursors = cursor_module.Cursors()
    for n in range(1000):
        cursors.woken(f"tenant-{n}")
    assert len(cursors.known) == 4 * cursor_module.MAX_KNOWN
    cursors._cursor("w1", "tenant-0")
    monkeypatch.setattr(cursor_module, "FORGET_AFTER", -1.0)
    cursors.woken("fresh")  # full: the stale ones are forgotten, with their cursors
    assert cursors.known.keys() == {"fresh"} and cursors.get("w1", "tenant-0") is None


def test_a_rewind_during_a_full_claim_is_kept(always_slow: None) -> None:
    cursor = cursor_module.ClaimCursor()
    began = time.monotonic()
    cursor.rewind()                 # a marked wake-up while the claim is in flight
    cursor.timed_full(began, cursor_module.since(began))
    assert cursor.slow and not cursor.continues()   # the next claim is full again
    cursor.timed_full(time.monotonic(), 0.0)
    assert cursor.continues()
