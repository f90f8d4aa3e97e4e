"""The app the multi-host tests run in real `conveyor worker` processes (and producers).

The store comes from CONVEYOR_URL. Every task appends one line per event to MH_LEDGER, a file
outside every namespace (one O_APPEND write per line, so lines never interleave):

    start JOB_ID ATTEMPT HOST PID
    done  JOB_ID ATTEMPT HOST PID

HOST is MH_HOST, the name of the namespace the process runs in. MH_CRON=1 registers a
schedule that ticks every 2 s.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from conveyor import Conveyor, JobContext, Retry

app = Conveyor()
HOST = os.environ.get("MH_HOST", "root")


def record(ctx: JobContext, event: str) -> None:
    path = os.environ.get("MH_LEDGER")
    if not path:
        return
    line = f"{event} {ctx.job_id} {ctx.attempt} {HOST} {os.getpid()}\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@app.task(retry=Retry(attempts=5, backoff="fixed", base=0.2))
async def step(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    record(ctx, "start")
    await asyncio.sleep(float(payload.get("sleep", 0.0)))
    record(ctx, "done")
    return {"host": HOST, "pid": os.getpid()}


@app.task
async def tick(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    record(ctx, "start")
    record(ctx, "done")
    return {"host": HOST}


if os.environ.get("MH_CRON") == "1":
    app.cron("* * * * * */2", "tick", {}, name="mh-tick")
