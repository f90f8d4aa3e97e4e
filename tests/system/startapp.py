"""The app of the start-up test (test_sys_limits.py): a rated queue, and besides it what a
real app declares in code: a dozen tasks with a concurrency of their own and a task limited
per key. Every worker writes these declarations when it starts, while the others claim
under them (every limited claim locks the task and key limit rows)."""

from __future__ import annotations

import asyncio
from typing import Any

from conveyor import Conveyor, JobContext, KeyLimit

app = Conveyor()
app.queue("paced", rate="5/0.1s")


@app.task(queue="paced")
async def paced(ctx: JobContext, payload: dict[str, Any]) -> None:
    await asyncio.sleep(payload.get("ms", 5) / 1000)


def _report(ctx: JobContext, payload: dict[str, Any]) -> None:
    return None


for number in range(12):
    app.task(name=f"report_{number:02d}", queue="reports", concurrency=1)(_report)


@app.task(queue="synced", key=KeyLimit("payload.customer", concurrency=1))
async def synced(ctx: JobContext, payload: dict[str, Any]) -> None:
    return None
