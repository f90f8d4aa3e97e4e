"""A storm of 429s: jobs raising RateLimited(retry_in, slow="queue") within one slow-down
wake the workers once (the slow-down began), not once per raise (limits/slowing.py). A real
SQLite file; a second store instance on it listens as another worker would."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conveyor import Conveyor, JobContext, RateLimited
from conveyor.store.sqlite.store import SQLiteStore

pytestmark = pytest.mark.anyio


async def test_a_storm_of_rate_limited_jobs_wakes_the_workers_once(
        app: Conveyor, db_url: str) -> None:
    @app.task(queue="api")
    async def call(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise RateLimited(retry_in=30, slow="queue")

    for _ in range(6):
        app.enqueue("call", {}, queue="api")
    other = SQLiteStore(db_url)
    await other.open()
    heard: list[str] = []
    stop = await other.listen(lambda queue: heard.append(queue) if queue == "*" else None)
    worker = app.worker(concurrency=6, worker_id="w-storm")
    try:
        assert await worker.run_once() == 6  # all six raise within one slow-down
        await asyncio.sleep(1.0)
        assert len(heard) == 1
        [usage] = app.limits.usage()
        assert usage.blocked_until is not None
    finally:
        await stop()
        await other.close()
        worker.close()
