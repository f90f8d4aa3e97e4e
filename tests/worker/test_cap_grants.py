"""A worker under a queue's concurrency cap holds a grant of its slots (worker/grants.py,
limits/grants.py): it runs at most the grant's slots of that queue at once, and claims ahead
of it (its prefetched jobs count against no one). A real SQLite file."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor, JobContext, JobState, Settings
from conveyor.job import ClaimedJob
from conveyor.limits.grants import Grant, GrantAsk
from conveyor.limits.model import Limit
from conveyor.worker.grants import Held, WorkerGrants

from .conftest import T0

pytestmark = pytest.mark.anyio


async def test_a_worker_of_10_slots_granted_3_runs_3_and_prefetches_more(
        app: Conveyor) -> None:
    now_running = 0
    most = 0
    prefetched = 0
    worker = app.worker(concurrency=10, queues=["capped"], poll_interval=0.05, grace=0,
                        worker_id="w")

    @app.task(queue="capped", name="short")
    async def short(ctx: JobContext, payload: dict[str, Any]) -> None:
        nonlocal now_running, most, prefetched
        now_running += 1
        most = max(most, now_running)
        prefetched = max(prefetched, len(worker.slots.buffer))
        await asyncio.sleep(0.005)
        now_running -= 1

    await app.store.set_limit(Limit("queue", "capped", concurrency=3), now=T0)
    ids = [j.id for j in app.enqueue_many([{"task": "short", "payload": {}}] * 60)]
    run = asyncio.create_task(worker.run(install_signals=False))
    try:
        deadline = time.monotonic() + 20
        while any(app.get(i).state != JobState.COMPLETED for i in ids):
            assert time.monotonic() < deadline, "the queue did not drain"
            await asyncio.sleep(0.05)
    finally:
        worker.stop()
        await asyncio.wait_for(run, 10)
        worker.threads.shutdown(wait=True)
        worker.close()
    assert most == 3
    assert prefetched >= 1  # claimed ahead of the grant, held, not started
    assert worker.grants.held[("queue", "capped")].slots == 3


def _job(queue: str, task: str = "t") -> ClaimedJob:
    return ClaimedJob(f"{queue}-{time.monotonic_ns()}", task, queue, b"{}", 1, 3, 1)


async def test_a_grant_that_ran_out_by_the_workers_clock_starts_nothing() -> None:
    answers: list[list[Grant]] = [[Grant("queue", "q", 5, 2, 2, 2, T0 + 30)]]

    async def renew(asks: list[GrantAsk]) -> list[Grant]:
        if not answers:
            raise ConnectionError("store unreachable")
        return answers.pop()

    grants = WorkerGrants(renew, lease_for=2.0)
    await grants.renew([])
    job = _job("q")
    assert grants.allows(job)
    grants.started(job)
    grants.started(_job("q"))
    assert not grants.allows(job)  # 2 of 2 run
    grants.ended(job)
    assert grants.allows(job)
    assert await grants.renew([]) == []  # the store is gone: the grant stays until it ends
    grants.held[("queue", "q")] = Held(2, time.monotonic())  # its end by this host's clock
    assert not grants.allows(job) and grants.slots_of(("queue", "q")) == 0
    assert grants.allows(_job("other"))  # an uncapped queue's job is no matter


async def test_a_second_worker_gets_its_share_within_two_seconds(tmp_path: Path) -> None:
    """Cap 12, a worker of 10 slots draining alone, then a second of 10: the first gives
    slots back at its renewals, the second runs its fair share (6) within 2 s, and the two
    never run more than 12 at once."""
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    running: Counter[str] = Counter()
    most = 0
    apps = [Conveyor(url, settings=Settings()) for _ in range(2)]
    workers = [app.worker(concurrency=10, queues=["capped"], poll_interval=0.2, grace=0,
                          worker_id=name) for app, name in zip(apps, "ab", strict=True)]
    for app in apps:
        @app.task(queue="capped", name="short")
        async def short(ctx: JobContext, payload: dict[str, Any]) -> None:
            nonlocal most
            running[ctx.worker_id] += 1
            most = max(most, sum(running.values()))
            await asyncio.sleep(0.02)
            running[ctx.worker_id] -= 1

    await apps[0].store.set_limit(Limit("queue", "capped", concurrency=12))
    for _ in range(3):
        apps[0].enqueue_many([{"task": "short", "payload": {}}] * 1000)
    runs = [asyncio.create_task(workers[0].run(install_signals=False))]
    try:
        while running["a"] < 10:
            await asyncio.sleep(0.01)
        runs.append(asyncio.create_task(workers[1].run(install_signals=False)))
        began = time.monotonic()
        while running["b"] < 6:
            assert time.monotonic() - began < 2.0, f"b runs {running['b']} after 2 s"
            await asyncio.sleep(0.005)
    finally:
        for worker in workers:
            worker.stop()
        await asyncio.wait_for(asyncio.gather(*runs), 10)
        for app, worker in zip(apps, workers, strict=True):
            worker.threads.shutdown(wait=True)
            worker.close()
            app.close()
    assert most <= 12
