"""The app bench/soak.py runs in its 4 `conveyor worker` processes: a mixed load.

Every successful end appends `done JOB_ID ATTEMPT PID TIME` to SOAK_LEDGER (one O_APPEND write
per line, so lines from many processes never interleave); the soak counts lost and duplicated
jobs from it.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from conveyor import Conveyor, JobContext, Retry

app = Conveyor()


def ledger(ctx: JobContext) -> None:
    path = os.environ.get("SOAK_LEDGER")
    if not path:
        return
    line = f"done {ctx.job_id} {ctx.attempt} {os.getpid()} {time.time():.3f}\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@app.task(queue="soak")
async def fast(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    ledger(ctx)
    return {"n": payload.get("n")}


@app.task(queue="soak")
async def slow(ctx: JobContext, payload: dict[str, Any]) -> None:
    await asyncio.sleep(float(payload.get("sleep", 1.0)))
    ledger(ctx)


@app.task(queue="soak", retry=Retry(attempts=3, backoff="fixed", base=0.2))
def flaky(ctx: JobContext, payload: dict[str, Any]) -> None:
    if ctx.attempt == 1:
        raise RuntimeError("flaky: the first attempt fails on purpose")
    ledger(ctx)


@app.task(queue="soak", retry=Retry(attempts=2, backoff="fixed", base=0.1))
def failing(ctx: JobContext, payload: dict[str, Any]) -> None:
    raise ValueError("failing: every attempt fails on purpose")


@app.task(queue="soak")
async def tick(ctx: JobContext, payload: dict[str, Any]) -> None:
    ledger(ctx)


app.cron("* * * * * */5", "tick", {}, name="soak-tick")
