"""A worker whose claim a full concurrency cap cut short (the store's answer says so) retries
soon instead of waiting its poll (worker/caps.py, issue 14). A real SQLite file; two workers
are two apps on it, as two processes would be."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor, FakeClock, JobContext, JobState, Settings
from conveyor.job import new_id
from conveyor.limits.model import Limit
from conveyor.store.base import ClaimAsk, Exchange, NewJob, Release
from conveyor.worker.caps import CAPPED_RETRY, Caps
from conveyor.worker.worker import Worker

from .conftest import T0

pytestmark = pytest.mark.anyio


def test_the_retry_follows_the_store_answer() -> None:
    caps = Caps()
    assert caps.delay(1.0) == 1.0  # nothing said yet: the poll
    caps.after_claim(Exchange([], [], cut_short=True))
    assert caps.delay(1.0) <= 1.5 * CAPPED_RETRY
    assert caps.delay(0.001) == 0.001  # never later than the poll
    caps.after_claim(Exchange([True], []))  # a round that was not cut short
    assert (caps.full, caps.delay(1.0)) == (False, 1.0)


async def test_a_claim_cut_short_by_a_full_cap_retries_soon(app: Conveyor) -> None:
    store = app.store
    await store.set_limit(Limit("queue", "capped", concurrency=2), now=T0)
    await store.enqueue_many([NewJob(new_id(), "t", "capped", b"{}") for _ in range(3)],
                             now=T0)
    caps = Caps()
    answer = await store.settle_and_claim([], ClaimAsk(["capped"], "w", 4, 30), now=T0)
    caps.after_claim(answer)
    assert (len(answer.jobs), caps.full) == (2, True)
    assert caps.delay(1.0) <= 1.5 * CAPPED_RETRY
    answer = await store.settle_and_claim([], ClaimAsk(["capped"], "w", 0, 30), now=T0)
    caps.after_claim(answer)  # a round that claimed nothing (no free slot)
    assert (caps.full, caps.delay(1.0)) == (False, 1.0)


async def test_an_empty_capped_queue_waits_its_poll(app: Conveyor) -> None:
    store = app.store
    await store.set_limit(Limit("queue", "capped", concurrency=5), now=T0)
    caps = Caps()
    answer = await store.settle_and_claim([], ClaimAsk(["capped"], "w", 4, 30), now=T0)
    caps.after_claim(answer)
    assert (len(answer.jobs), caps.full, caps.delay(1.0)) == (0, False, 1.0)


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[list[tuple[Conveyor, Worker]]]:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    made = []
    for name in ("a", "b"):
        app = Conveyor(url, settings=Settings(), clock=FakeClock(T0))
        worker = app.worker(concurrency=2, queues=["capped"], poll_interval=30.0,
                            grace=0, worker_id=name)
        made.append((app, worker))
    yield made
    for app, worker in made:
        worker.threads.shutdown(wait=True)
        worker.close()
        app.close()


async def test_two_workers_waiting_on_a_full_cap_both_run_its_freed_slots(
        pair: list[tuple[Conveyor, Worker]]) -> None:
    """Limit 4, all 4 slots held by another claimer, two workers of 2 slots polling every
    30 s: nothing wakes them when the slots free up, yet both start jobs within seconds
    (before, each waited its poll: issue 14)."""
    release = asyncio.Event()
    running: Counter[str] = Counter()
    four = asyncio.Event()
    for app, _ in pair:
        @app.task(queue="capped", name="hold")
        async def hold(ctx: JobContext, payload: dict[str, Any]) -> None:
            running[ctx.worker_id] += 1
            if sum(running.values()) == 4:
                four.set()
            await release.wait()

    first_app, _ = pair[0]
    store = first_app.store
    await store.set_limit(Limit("queue", "capped", concurrency=4), now=T0)
    ids = [job.id for job in first_app.enqueue_many([{"task": "hold", "payload": {}}] * 8)]
    other = await store.claim(["capped"], "elsewhere", 4, 30, now=T0)  # the cap is full
    assert len(other) == 4
    runs = [asyncio.create_task(worker.run(install_signals=False)) for _, worker in pair]
    try:
        for _, worker in pair:  # each has found the cap full (a grant of 0: grants.py), waits
            while not (worker.caps.full or worker.grants.slots_of(("queue", "capped")) == 0):
                await asyncio.sleep(0.01)
        await store.settle([Release(job.lease) for job in other], now=T0)  # no wake-up
        await asyncio.wait_for(four.wait(), 10)  # well before either worker's poll
        assert running == {"a": 2, "b": 2}
        release.set()
        while sum(running.values()) < 8:
            await asyncio.sleep(0.01)
    finally:
        release.set()
        for _, worker in pair:
            worker.stop()
        await asyncio.wait_for(asyncio.gather(*runs), 10)
    assert {first_app.get(job_id).state for job_id in ids} == {JobState.COMPLETED}
