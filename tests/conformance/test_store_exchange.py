"""Settle and claim in one trip (Store.settle_and_claim): the settle's outcomes are written,
then the claim runs and sees the slots they freed; its answer says when a full concurrency
cap cut the claim short (the worker asks again soon: worker/caps.py). Exact counts on a fixed
clock; a cap is never exceeded, also by several exchanges at once."""

from __future__ import annotations

import asyncio

import pytest

from conveyor.limits.model import Limit
from conveyor.store.base import ClaimAsk, Complete, Fail, Release, Store

from .support import LEASE, T0, error, new_job

pytestmark = pytest.mark.anyio


def ask(limit: int, queues: list[str] | None = None, worker: str = "worker-1") -> ClaimAsk:
    return ClaimAsk(queues, worker, limit, LEASE)


async def _enqueue(store: Store, count: int, **fields: object) -> list[str]:
    results = await store.enqueue_many([new_job(**fields) for _ in range(count)], now=T0)
    return [r.id for r in results]


async def _running(store: Store, name: str, now: float) -> int:
    return {u.limit.name: u.running for u in await store.limits(now=now)}[name]


async def test_the_slots_a_settle_frees_are_refilled_in_the_same_trip(store: Store) -> None:
    await store.set_limit(Limit("queue", "ai", concurrency=3))
    await _enqueue(store, 7, queue="ai")
    first = await store.settle_and_claim([], ask(5, ["ai"]), now=T0 + 1)
    assert (len(first.applied), len(first.jobs), first.cut_short) == (0, 3, True)
    assert first.claim_failed is None

    done = [Complete(job.lease) for job in first.jobs[:2]]
    second = await store.settle_and_claim(done, ask(5, ["ai"]), now=T0 + 2)
    assert second.applied == [True, True]
    assert (len(second.jobs), second.cut_short) == (2, True)  # the two freed slots, no more
    assert not {j.id for j in second.jobs} & {j.id for j in first.jobs}
    assert await _running(store, "ai", T0 + 2) == 3
    for job in first.jobs[:2]:
        assert (await store.get(job.id)).state.value == "completed"  # type: ignore[union-attr]

    # the last two queued jobs: a full claim of two is not cut short, nor is an empty queue
    rest = [Complete(job.lease) for job in [first.jobs[2], *second.jobs]]
    third = await store.settle_and_claim(rest, ask(2, ["ai"]), now=T0 + 3)
    assert (third.applied, len(third.jobs), third.cut_short) == ([True] * 3, 2, False)
    last = await store.settle_and_claim([Complete(j.lease) for j in third.jobs],
                                        ask(4, ["ai"]), now=T0 + 4)
    assert (last.applied, last.jobs, last.cut_short) == ([True, True], [], False)


async def test_cut_short_only_when_a_full_cap_bounded_the_claim(store: Store) -> None:
    await _enqueue(store, 2, queue="plain")
    plain = await store.settle_and_claim([], ask(4, ["plain"]), now=T0 + 1)
    assert (len(plain.jobs), plain.cut_short) == (2, False)  # no cap: the queue ran dry

    await store.set_limit(Limit("queue", "roomy", concurrency=5))
    await _enqueue(store, 2, queue="roomy")
    roomy = await store.settle_and_claim([], ask(4, ["roomy"]), now=T0 + 1)
    assert (len(roomy.jobs), roomy.cut_short) == (2, False)  # a cap with room: ran dry

    await store.set_limit(Limit("queue", "rated", rate=2, period=60.0))
    await _enqueue(store, 5, queue="rated")
    rated = await store.settle_and_claim([], ask(4, ["rated"]), now=T0 + 1)
    assert (len(rated.jobs), rated.cut_short) == (2, False)  # a rate is no concurrency cap

    await store.set_limit(Limit("queue", "tight", concurrency=2))
    await _enqueue(store, 5, queue="tight")
    whole = await store.settle_and_claim([], ask(1, ["tight"]), now=T0 + 1)
    assert (len(whole.jobs), whole.cut_short) == (1, False)  # all it asked for
    short = await store.settle_and_claim([], ask(4, ["tight"]), now=T0 + 1)
    assert (len(short.jobs), short.cut_short) == (1, True)
    none = await store.settle_and_claim([], ask(4, ["tight"]), now=T0 + 1)
    assert (len(none.jobs), none.cut_short) == (0, True)  # full already
    nothing = await store.settle_and_claim([], ask(0, ["tight"]), now=T0 + 1)
    assert (nothing.jobs, nothing.cut_short) == ([], False)  # asked for none


async def test_a_full_task_cap_cuts_a_claim_short(store: Store) -> None:
    await store.set_limit(Limit("task", "send", concurrency=2))
    await _enqueue(store, 4, queue="mail", task="send")
    got = await store.settle_and_claim([], ask(3, ["mail"]), now=T0 + 1)
    assert (len(got.jobs), got.cut_short) == (2, True)
    every = await store.settle_and_claim([], ask(3), now=T0 + 1)  # a worker of every queue
    assert (len(every.jobs), every.cut_short) == (0, True)


async def test_outcomes_whose_lease_moved_on_are_refused_and_the_claim_still_runs(
        store: Store) -> None:
    await store.set_limit(Limit("queue", "ai", concurrency=2))
    await _enqueue(store, 4, queue="ai")
    first = await store.settle_and_claim([], ask(2, ["ai"]), now=T0 + 1)
    stale = first.jobs[0].lease
    assert (await store.settle([Release(stale)], now=T0 + 2)) == [True]  # slot freed
    got = await store.settle_and_claim(
        [Complete(stale), Fail(first.jobs[1].lease, error(1), retry_in=None)],
        ask(2, ["ai"]), now=T0 + 3)
    assert got.applied == [False, True]
    assert (len(got.jobs), got.cut_short) == (2, False)  # both freed slots, all it asked
    assert await _running(store, "ai", T0 + 3) == 2


async def test_exchanges_at_once_never_exceed_a_cap(store: Store) -> None:
    await store.set_limit(Limit("queue", "ai", concurrency=4))
    await _enqueue(store, 30, queue="ai")
    held = (await store.settle_and_claim([], ask(4, ["ai"], "w0"), now=T0 + 1)).jobs
    assert len(held) == 4
    answers = await asyncio.gather(
        store.settle_and_claim([Complete(held[0].lease)], ask(4, ["ai"], "w1"), now=T0 + 2),
        store.settle_and_claim([Complete(held[1].lease)], ask(4, ["ai"], "w2"), now=T0 + 2),
        store.settle_and_claim([], ask(4, ["ai"], "w3"), now=T0 + 2))
    assert sum(len(a.jobs) for a in answers) == 2  # exactly the two freed slots
    assert all(a.cut_short for a in answers)
    assert await _running(store, "ai", T0 + 2) == 4
