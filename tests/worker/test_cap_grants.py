"""A worker under a queue's concurrency cap holds a grant of its slots (worker/grants.py,
limits/grants.py): it runs at most the grant's slots of that queue at once, and claims ahead
of it (its prefetched jobs count against no one). A real SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
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


async def _stop_all(apps: list[Conveyor], workers: list[Any], runs: list[Any]) -> None:
    """Stop the workers, wait for their runs, and close them and their apps."""
    for worker in workers:
        worker.stop()
    await asyncio.wait_for(asyncio.gather(*runs), 10)
    for app, worker in zip(apps, workers, strict=True):
        worker.threads.shutdown(wait=True)
        worker.close()
        app.close()


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
        await _stop_all(apps, workers, runs)
    assert most <= 12


async def test_a_task_cap_is_not_shared_with_workers_whose_queues_never_carry_it(
        tmp_path: Path) -> None:
    """Cap 1 on a task whose jobs go to queue `emails`; three workers of one app, one queue
    each, the `emails` one's id last: the task's jobs all run (the other two take no share
    of a cap they could never use: split 1, 0, 0 by id they shut the `emails` worker out),
    never two at once, and only the `emails` worker ever holds a grant of the cap."""
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    running = 0
    most = 0
    apps = [Conveyor(url, settings=Settings()) for _ in range(3)]
    names = [("a", "critical"), ("b", "default"), ("c", "emails")]
    workers = [app.worker(concurrency=5, queues=[queue], poll_interval=0.1, grace=0,
                          worker_id=name) for app, (name, queue) in zip(apps, names, strict=True)]
    for app in apps:
        @app.task(queue="emails", name="send", concurrency=1)
        async def send(ctx: JobContext, payload: dict[str, Any]) -> None:
            nonlocal running, most
            running += 1
            most = max(most, running)
            await asyncio.sleep(0.01)
            running -= 1

        @app.task(queue="critical", name="other")
        async def other(ctx: JobContext, payload: dict[str, Any]) -> None:
            await asyncio.sleep(0.01)

    await apps[0].store.set_limit(Limit("task", "send", concurrency=1))
    runs = [asyncio.create_task(w.run(install_signals=False)) for w in workers[:2]]
    try:
        await asyncio.sleep(1.5)  # the two others renew first (their ids sort first)
        ids = [j.id for j in apps[0].enqueue_many([{"task": "send", "payload": {}}] * 200)]
        runs.append(asyncio.create_task(workers[2].run(install_signals=False)))
        deadline = time.monotonic() + 30
        holders: set[str] = set()
        while any(apps[0].get(i).state != JobState.COMPLETED for i in ids):
            assert time.monotonic() < deadline, "the capped task's jobs stalled"
            usage = next(u for u in await apps[0].store.limits() if u.limit.kind == "task")
            holders |= {worker for worker, _ in usage.grants}
            await asyncio.sleep(0.05)
    finally:
        await _stop_all(apps, workers, runs)
    assert most == 1
    assert holders == {"c"}


async def test_a_first_grant_counts_the_jobs_running_when_its_answer_arrives() -> None:
    """A job that ends while the worker's first renewal is out (no grant held yet, so no
    `ended` takes it off) is not counted as running when the grant arrives: counted from the
    slots' jobs when it was sent, the worker would count 1 of 1 forever and start nothing."""
    from types import SimpleNamespace

    ended, going = _job("q"), _job("q")
    slots = SimpleNamespace(running={j.id: SimpleNamespace(job=j) for j in (ended, going)},
                            gate=None, give_back=lambda caps: 0, fill=lambda: None)

    async def renew(asks: list[GrantAsk]) -> list[Grant]:
        del slots.running[ended.id]  # it ends while the renewal is out
        return [Grant("queue", "q", 2, 2, 2, 2, T0 + 30)]

    grants = WorkerGrants(renew, lease_for=30.0, slots=slots)  # type: ignore[arg-type]
    await grants.renew_round()
    assert grants.running[("queue", "q")] == 1
    assert grants.allows(_job("q"))  # 1 of 2 runs: one more may start


async def test_after_a_failed_renewal_the_worker_claims_nothing_until_one_answers() -> None:
    """A renewal whose answer is lost may still have been booked (PostgreSQL committed, the
    reply never came): the store then answers this worker's claims as a holder's while the
    worker, holding no grant it knows of, would not gate its starts. So after a failed
    renewal the worker claims nothing until a renewal answers."""
    answers: list[list[Grant]] = [[]]

    async def renew(asks: list[GrantAsk]) -> list[Grant]:
        if answers and answers[-1] is None:
            answers.pop()
            raise ConnectionError("the reply was lost")
        return answers.pop() if answers else []

    grants = WorkerGrants(renew, lease_for=30.0)
    assert grants.claim_room(10, ("q",)) == 10
    answers.append(None)  # type: ignore[arg-type]
    assert await grants.renew([]) == []
    assert grants.claim_room(10, ("q",)) == 0
    assert grants.until_due() <= 0.25  # and it tries again soon
    await grants.renew([])  # answers (no cap): claims again
    assert grants.claim_room(10, ("q",)) == 10


async def _granted(app: Conveyor, slots: int) -> None:
    """Wait (up to 5 s) until worker 'w' alone holds a grant of `slots`."""
    deadline = time.monotonic() + 5
    while True:
        [usage] = await app.store.limits()
        if usage.grants == (("w", slots),):
            return
        assert time.monotonic() < deadline, f"granted {usage.grants}, not {slots}"
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def _busy_worker(tmp_path: Path, concurrency: int, busy: int
                       ) -> AsyncIterator[tuple[Conveyor, asyncio.Event]]:
    """Worker 'w' of `concurrency` slots serving queue 'capped' (a cap of 20) and 'busy',
    with `busy` of its slots running the busy queue's jobs until the event is set; its app.
    Its task 'quick' runs on 'capped'."""
    app = Conveyor(f"sqlite:///{tmp_path / 'jobs.db'}", settings=Settings())
    release = asyncio.Event()
    busy_running = 0
    worker = app.worker(concurrency=concurrency, queues=["capped", "busy"],
                        poll_interval=0.05, grace=0, worker_id="w")

    @app.task(queue="busy", name="long")
    async def long(ctx: JobContext, payload: dict[str, Any]) -> None:
        nonlocal busy_running
        busy_running += 1
        await release.wait()

    @app.task(queue="capped", name="quick")
    async def quick(ctx: JobContext, payload: dict[str, Any]) -> None:
        await asyncio.sleep(0.001)

    await app.store.set_limit(Limit("queue", "capped", concurrency=20))
    app.enqueue_many([{"task": "long", "payload": {}}] * busy)
    run = asyncio.create_task(worker.run(install_signals=False))
    try:
        while busy_running < busy:
            await asyncio.sleep(0.01)
        yield app, release
    finally:
        release.set()
        await _stop_all([app], [worker], [run])


async def test_a_worker_asks_a_cap_only_for_the_slots_another_queue_leaves_it(
        tmp_path: Path) -> None:
    """A worker of 10 slots serving a capped queue and a busy one: while 8 of its slots run
    the busy queue's jobs, it asks the cap (20) for the 2 it could use, and is granted 2,
    not 10 (a share it could not use, that the cap's other workers could); once they end,
    it asks for all 10 again."""
    async with _busy_worker(tmp_path, 10, 8) as (app, release):
        await _granted(app, 2)
        app.enqueue_many([{"task": "quick", "payload": {}}] * 20)  # it runs them, 2 at once
        release.set()
        await _granted(app, 10)


async def test_a_worker_whose_every_slot_runs_another_queue_still_asks_a_cap_for_one(
        tmp_path: Path) -> None:
    """What runs depends on the grant: a worker asking a cap for 0 while another queue's
    jobs filled its slots was granted 0, and with that queue's backlog refilling each freed
    slot it claimed the capped queue no more until the backlog ran dry. It asks for 1."""
    async with _busy_worker(tmp_path, 2, 2) as (app, _):
        await _granted(app, 1)
