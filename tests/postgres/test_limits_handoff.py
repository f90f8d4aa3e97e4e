"""Hand-off never leases a job of a limited queue or task: the enqueue leaves it queued for
a claim, which counts it against the limit (store/postgres/limits.py)."""

from __future__ import annotations

import asyncio

import pytest

from conveyor.job import JobState
from conveyor.limits.model import Limit
from conveyor.store.postgres import handoff
from conveyor.store.postgres.store import PostgresStore

from .test_handoff import Waiting, job, job_row

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


@pytest.mark.parametrize("limit", [Limit("queue", "mail", concurrency=5),
                                   Limit("task", "handoff.task", rate=10, period=60.0)],
                         ids=["queue", "task"])
async def test_a_waiting_workers_offer_takes_no_limited_job(
        store: PostgresStore, schema: str, limit: Limit,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handoff.Gate, "PROBE", 0.0)  # every enqueue tries hand-off
    worker = Waiting(store)
    try:
        assert await worker.offer() == []  # offered before the limit was set
        await store.set_limit(limit)
        [result] = await store.enqueue_many([job()])
        assert result.state == JobState.QUEUED
        await asyncio.sleep(0.1)
        assert worker.handed == [] and job_row(schema, result.id)[:2] == ("queued", None)
        await store.set_limit(Limit(limit.kind, limit.name))  # gone: hand-off again
        await store.cancel([result.id])  # (nothing may wait before a handed-off job)
        [plain] = await store.enqueue_many([job()])
        assert plain.state == JobState.RUNNING
    finally:
        await worker.close()
