"""A worker group (`conveyor worker --queues a:N,b:M`) whose worker fails stops the others
and returns the failure: none is left running on the loop (its store calls would open
connections that nobody closes, and the loop's end would wait for them)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor, JobContext
from conveyor.worker.groups import WorkerGroup, parse_queues

pytestmark = pytest.mark.anyio


async def test_a_group_whose_worker_fails_stops_the_others(tmp_path: Path) -> None:
    app = Conveyor(f"sqlite:///{tmp_path / 'group.db'}")
    app.migrate()

    @app.task(queue="critical")
    async def page(ctx: JobContext, payload: dict[str, Any]) -> None:
        return None

    @app.task(queue="emails")
    async def mail(ctx: JobContext, payload: dict[str, Any]) -> None:
        return None

    group = WorkerGroup.build(app, parse_queues("critical:1,emails:1"), concurrency=2)
    healthy, broken = group.workers

    async def fails() -> None:
        await asyncio.sleep(0.3)  # the healthy one is running by then
        raise RuntimeError("declaring the limits failed")

    broken.declare_limits = fails  # type: ignore[method-assign]
    try:
        with pytest.raises(RuntimeError, match="declaring the limits failed"):
            await asyncio.wait_for(group.run(), 20)
        assert healthy._stopping
        running = [task for task in asyncio.all_tasks()
                   if "Worker.run" in repr(task.get_coro())]
        assert running == []
    finally:
        loop = asyncio.get_running_loop()
        for sig in (2, 15):
            loop.remove_signal_handler(sig)
        app.close()
