"""A running job that is cancelled, or whose lease is lost, as the worker sees it through its
heartbeat (driven by hand: no threads, no sleeping)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from conveyor import Conveyor, FakeClock, JobContext, JobState
from conveyor.worker.worker import Worker

pytestmark = pytest.mark.anyio


async def _start_blocking(app: Conveyor, worker: Worker) -> tuple[str, asyncio.Task[int]]:
    started = asyncio.Event()

    @app.task
    async def slow(ctx: JobContext, payload: dict[str, Any]) -> None:
        started.set()
        await asyncio.Event().wait()  # until the worker stops it

    job = slow.enqueue()
    run = asyncio.create_task(worker.run_once())
    await asyncio.wait_for(started.wait(), 5)
    return job.id, run


async def test_cancel_of_a_running_job_reaches_it_through_the_heartbeat(
        app: Conveyor, worker: Worker) -> None:
    job_id, run = await _start_blocking(app, worker)
    assert app.cancel(job_id).state == JobState.RUNNING

    reply = worker.heartbeat.run_once()
    assert reply.cancel_requested == frozenset({job_id})
    assert await asyncio.wait_for(run, 5) == 1
    got = app.get(job_id)
    assert got.state == JobState.CANCELLED
    assert [w.id for w in app.workers()] == ["worker-test"]


async def test_a_lost_lease_stops_the_job_and_writes_nothing(
        app: Conveyor, worker: Worker, clock: FakeClock) -> None:
    job_id, run = await _start_blocking(app, worker)
    clock.advance(worker.lease + 1)
    assert app.call(lambda s: s.rescue_expired(clock.now())) == 1

    reply = worker.heartbeat.run_once()
    assert reply.lost == frozenset({job_id})
    await asyncio.wait_for(run, 5)
    got = app.get(job_id)
    assert got.state == JobState.QUEUED  # as the rescue left it: the stale worker wrote nothing
    assert [e.type for e in got.errors] == ["WorkerLost"]


async def test_heartbeat_keeps_a_long_job_alive(app: Conveyor, worker: Worker,
                                                clock: FakeClock) -> None:
    job_id, run = await _start_blocking(app, worker)
    for _ in range(5):
        clock.advance(worker.lease * 0.5)
        worker.heartbeat.run_once()
        assert app.call(lambda s: s.rescue_expired(clock.now())) == 0
    assert app.get(job_id).state == JobState.RUNNING
    app.cancel(job_id)
    worker.heartbeat.run_once()
    await asyncio.wait_for(run, 5)


async def test_a_stale_worker_cannot_complete_a_job_another_worker_took(
        app: Conveyor, worker: Worker, clock: FakeClock) -> None:
    started, release = threading.Event(), threading.Event()

    @app.task
    def slow(ctx: JobContext, payload: dict[str, Any]) -> str:
        started.set()
        release.wait(10)
        return "stale result"

    job = slow.enqueue()
    run = asyncio.create_task(worker.run_once())
    await asyncio.to_thread(started.wait, 10)
    clock.advance(worker.lease + 1)     # the worker looks dead: its lease ran out
    assert app.call(lambda s: s.rescue_expired(clock.now())) == 1
    [taken] = app.call(lambda s: s.claim(None, "worker-2", 1, 30.0, clock.now()))
    assert taken.id == job.id

    release.set()
    await asyncio.wait_for(run, 10)
    assert worker.lost == 1
    got = app.get(job.id)
    assert (got.state, got.worker_id, got.result) == (JobState.RUNNING, "worker-2", None)
    assert got.attempt == 2


async def test_a_worker_runs_only_its_queues_and_skips_paused_ones(app: Conveyor) -> None:
    @app.task
    async def work(ctx: JobContext, payload: dict[str, Any]) -> str:
        return ctx.queue

    mine = work.enqueue(queue="mine")
    theirs = work.enqueue(queue="theirs")
    paused = work.enqueue(queue="paused")
    app.pause("paused")
    worker = app.worker(queues=["mine", "paused"], worker_id="worker-queues")
    try:
        assert await worker.run_until_idle() == 1
        assert app.get(mine.id).result == "mine"
        assert app.get(theirs.id).state == JobState.QUEUED
        assert app.get(paused.id).state == JobState.QUEUED
        app.resume("paused")
        assert await worker.run_until_idle() == 1
        assert app.get(paused.id).state == JobState.COMPLETED
    finally:
        worker.close()
