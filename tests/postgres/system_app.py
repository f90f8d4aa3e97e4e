"""The app the PostgreSQL system test runs in real `conveyor worker` processes.

Every execution appends its job id to CONVEYOR_TEST_RUN_LOG (one short O_APPEND write, so
lines stay whole even when the process is killed), which lets the test count repeats.
"""

from __future__ import annotations

import asyncio
import os

from conveyor import Conveyor, JobContext, Retry

app = Conveyor()


@app.task(queue="default", retry=Retry(attempts=10, backoff="fixed", base=0.2))
async def record(ctx: JobContext, payload: dict[str, int]) -> dict[str, int]:
    await asyncio.sleep(payload.get("sleep_ms", 40) / 1000)
    log = os.environ["CONVEYOR_TEST_RUN_LOG"]
    descriptor = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, f"{ctx.job_id} {os.getpid()}\n".encode())
    finally:
        os.close(descriptor)
    return {"n": payload["n"], "pid": os.getpid()}
