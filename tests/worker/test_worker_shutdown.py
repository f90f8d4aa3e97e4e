"""The real claim loop (Worker.run): stop() with and without a grace period. Events, not
sleeps, tell the test when the job has started."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from conveyor import Conveyor, JobContext, JobState

pytestmark = pytest.mark.anyio


async def test_stop_with_no_grace_releases_the_running_job(app: Conveyor) -> None:
    started = asyncio.Event()

    @app.task
    async def long(ctx: JobContext, payload: dict[str, Any]) -> None:
        started.set()
        await asyncio.Event().wait()

    job = long.enqueue()
    worker = app.worker(concurrency=2, grace=0, poll_interval=0.05, worker_id="worker-stop")
    run = asyncio.create_task(worker.run(install_signals=False))
    await asyncio.wait_for(started.wait(), 10)
    worker.stop()
    await asyncio.wait_for(run, 10)

    got = app.get(job.id)
    assert (got.state, got.attempt, got.errors) == (JobState.QUEUED, 0, ())
    assert app.workers() == []  # it deregistered


async def test_stop_lets_a_running_job_finish_within_the_grace(app: Conveyor) -> None:
    started = threading.Event()
    finish = threading.Event()

    @app.task
    def report(ctx: JobContext, payload: dict[str, Any]) -> str:
        started.set()
        finish.wait(10)
        return "written"

    job = report.enqueue()
    worker = app.worker(concurrency=1, grace=10, poll_interval=0.05, worker_id="worker-grace")
    run = asyncio.create_task(worker.run(install_signals=False))
    await asyncio.to_thread(started.wait, 10)
    worker.stop()
    finish.set()
    await asyncio.wait_for(run, 10)
    got = app.get(job.id)
    assert (got.state, got.result) == (JobState.COMPLETED, "written")


async def test_stop_gives_back_prefetched_jobs_untouched(app: Conveyor) -> None:
    started = asyncio.Event()

    @app.task
    async def hold(ctx: JobContext, payload: dict[str, Any]) -> None:
        started.set()
        await asyncio.Event().wait()

    jobs = [hold.enqueue({"i": i}) for i in range(4)]
    worker = app.worker(concurrency=1, prefetch=3, grace=0, poll_interval=0.05,
                        worker_id="worker-prefetch")
    run = asyncio.create_task(worker.run(install_signals=False))
    await asyncio.wait_for(started.wait(), 10)
    worker.stop()
    await asyncio.wait_for(run, 10)
    states = [(app.get(j.id).state, app.get(j.id).attempt) for j in jobs]
    assert states == [(JobState.QUEUED, 0)] * 4


@pytest.mark.parametrize("report", ["lost", "cancel"])
async def test_a_report_about_a_job_not_running_here_leaves_nothing_behind(
        app: Conveyor, report: str) -> None:
    """A lost-lease or cancel report for a job this worker does not run (finished already,
    or run by another worker) must not mark that job: if this worker claims it later and
    then stops, the job goes back to its queue, neither left running nor cancelled."""
    started = asyncio.Event()

    @app.task
    async def long(ctx: JobContext, payload: dict[str, Any]) -> None:
        started.set()
        await asyncio.Event().wait()

    job = long.enqueue()
    worker = app.worker(concurrency=1, grace=0, poll_interval=0.05, worker_id="worker-report")
    if report == "lost":
        worker.slots.lose(job.id)
    else:
        assert not worker.slots.cancel(job.id)  # nothing held: no outcome to write
    run = asyncio.create_task(worker.run(install_signals=False))
    await asyncio.wait_for(started.wait(), 10)
    worker.stop()
    await asyncio.wait_for(run, 10)
    got = app.get(job.id)
    assert (got.state, got.attempt) == (JobState.QUEUED, 0)


async def test_a_claim_loop_that_fails_still_gives_back_hand_offs_arriving_late(
        app: Conveyor) -> None:
    """Shutdown closes the slots itself, so a job that arrives while a worker whose claim
    loop failed winds down is given back, not started."""
    ran: list[str] = []

    @app.task
    async def quick(ctx: JobContext, payload: dict[str, Any]) -> None:
        ran.append(ctx.job_id)

    worker = app.worker(concurrency=1, grace=0, poll_interval=0.05, worker_id="worker-fails")

    async def broken() -> None:
        raise RuntimeError("claim loop bug")

    worker._claim_loop = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await worker.run(install_signals=False)
    assert worker.slots.closed
    job = quick.enqueue()
    [claimed] = await app.store.claim(None, "someone", 1, 30.0)
    worker.slots.hold([claimed])
    assert ran == [] and not worker.slots.running and job.id == claimed.id


async def test_prefetched_jobs_are_claimed_not_running(app: Conveyor) -> None:
    """A worker that claims ahead reports those jobs as claimed: the workers page shows 2
    running on 2 slots and 3 claimed, not 5 running (issue 16)."""
    release = asyncio.Event()
    started: list[str] = []

    @app.task
    async def hold(ctx: JobContext, payload: dict[str, Any]) -> None:
        started.append(ctx.job_id)
        await release.wait()

    for i in range(6):
        hold.enqueue({"i": i})
    worker = app.worker(concurrency=2, prefetch=3, grace=0, poll_interval=0.05,
                        worker_id="worker-claims-ahead")
    worker.slots.average_duration = 0.01  # recent jobs were short: it prefetches
    run = asyncio.create_task(worker.run(install_signals=False))
    try:
        for _ in range(200):
            if len(started) == 2 and len(worker.slots.buffer) == 3:
                break
            await asyncio.sleep(0.02)
        assert (len(started), len(worker.slots.buffer)) == (2, 3)
        await asyncio.to_thread(worker.heartbeat.run_once)
        [info] = [w for w in app.workers() if w.id == "worker-claims-ahead"]
        assert (info.running, info.claimed, info.concurrency) == (2, 3, 2)
        assert info.claimed_queues == {hold.queue: 3}  # by queue too
        assert sum(1 for j in app.list_jobs() if j.state == JobState.RUNNING) == 5
        # the queue's running count is of started jobs, with the claimed-ahead beside it
        [queue] = [q for q in app.queues() if q.name == hold.queue]
        assert (queue.counts["running"], queue.claimed) == (2, 3)
    finally:
        worker.stop()
        release.set()
        await asyncio.wait_for(run, 10)
