"""A worker whose claim came back short under a full rate window wakes LEAD before the window
has room again (worker/pacing.py, Store.room_at), never later than its next poll; the store
books its claim at the room time, and the worker starts the job no sooner. A real SQLite
file and fixed times."""

from __future__ import annotations

import time

import pytest

from conveyor import Conveyor, FakeClock, JobContext
from conveyor.job import new_id
from conveyor.limits.claiming import BOOK_AHEAD
from conveyor.limits.model import Limit
from conveyor.store.base import NewJob
from conveyor.worker.pacing import LEAD, Pacing
from conveyor.worker.worker import Worker

from .conftest import T0

pytestmark = pytest.mark.anyio


async def test_a_short_claim_under_a_full_rate_waits_for_the_window(app: Conveyor) -> None:
    store = app.store
    await store.set_limit(Limit("queue", "rated", rate=2, period=10.0), now=T0)
    await store.enqueue_many([NewJob(new_id(), "t", "rated", b"{}") for _ in range(4)], now=T0)
    pacing = Pacing(store, ["rated"])
    assert pacing.delay(0.5, T0) == 0.5  # nothing known: the poll
    jobs = await store.claim(["rated"], "w", 4, 30, now=T0 + 1)
    assert len(jobs) == 2
    await pacing.after_claim(len(jobs), 4, T0 + 1, T0 + 1)
    assert pacing.room_at == T0 + 11
    assert pacing.delay(60.0, T0 + 4) == pytest.approx(7.0 - LEAD)
    assert pacing.delay(0.5, T0 + 4) == 0.5  # never later than the poll
    assert pacing.delay(60.0, T0 + 11 - LEAD) == 0.0  # the claim goes now, booked at T0 + 11
    # the room time still ahead is kept without asking again; once passed, asked again
    await store.set_limit(Limit("queue", "rated", rate=1, period=100.0), now=T0 + 2)
    await pacing.after_claim(0, 4, T0 + 5, T0 + 5)
    assert pacing.room_at == T0 + 11
    await pacing.after_claim(0, 4, T0 + 11 - LEAD, T0 + 11 - LEAD)
    assert pacing.room_at == T0 + 101  # the newest start (T0 + 1) under 1 per 100 s
    await pacing.after_claim(4, 4, T0 + 102, T0 + 102)  # a full claim: nothing held back
    assert pacing.room_at is None


async def test_a_queue_without_a_rate_keeps_its_poll(app: Conveyor, worker: Worker) -> None:
    await app.store.set_limit(Limit("queue", "capped", concurrency=1), now=T0)
    await app.store.enqueue_many([NewJob(new_id(), "t", "capped", b"{}") for _ in range(2)],
                                 now=T0)
    pacing = Pacing(app.store, ["capped"])
    jobs = await app.store.claim(["capped"], "w", 4, 30, now=T0 + 1)
    await pacing.after_claim(len(jobs), 4, T0 + 1, T0 + 1)
    assert (len(jobs), pacing.room_at, pacing.delay(0.5, T0 + 1)) == (1, None, 0.5)
    assert worker.pacing.queues == worker.queues  # every worker paces its own queues


async def test_a_job_booked_ahead_starts_no_sooner_than_its_booked_time(
        app: Conveyor, clock: FakeClock) -> None:
    began: list[float] = []

    @app.task(queue="rated")
    def rated(ctx: JobContext, payload: dict[str, object]) -> None:
        began.append(time.monotonic())

    await app.store.set_limit(Limit("queue", "rated", rate=1, period=10.0), now=T0)
    app.enqueue_many([{"task": "rated", "payload": {}}] * 2)
    worker = app.worker(concurrency=2, worker_id="booked")
    try:
        assert await worker.run_once() == 1  # at T0: the window is full until T0 + 10
        clock.set(T0 + 10 - BOOK_AHEAD)  # FakeClock: a sleep does not move it
        sent = time.monotonic()
        assert await worker.run_once() == 1  # booked at T0 + 10, run BOOK_AHEAD later
        assert began[-1] - sent >= BOOK_AHEAD * 0.9  # the worker waited for it
    finally:
        worker.threads.shutdown(wait=True)
        worker.close()
