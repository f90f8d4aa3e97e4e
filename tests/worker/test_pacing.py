"""A worker whose claim came back short under a full rate window wakes when the window has
room again (worker/pacing.py, Store.room_at), never later than its next poll. A real SQLite
file and fixed times."""

from __future__ import annotations

import pytest

from conveyor import Conveyor
from conveyor.job import new_id
from conveyor.limits.model import Limit
from conveyor.store.base import NewJob
from conveyor.worker.pacing import SLACK, Pacing
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
    assert pacing.delay(60.0, T0 + 4) == pytest.approx(7.0 + SLACK)
    assert pacing.delay(0.5, T0 + 4) == 0.5  # never later than the poll
    assert pacing.delay(60.0, T0 + 12) == SLACK  # already past: claim now
    # the room time still ahead is kept without asking again; once passed, asked again
    await store.set_limit(Limit("queue", "rated", rate=1, period=100.0), now=T0 + 2)
    await pacing.after_claim(0, 4, T0 + 5, T0 + 5)
    assert pacing.room_at == T0 + 11
    await pacing.after_claim(0, 4, T0 + 11, T0 + 11)
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
