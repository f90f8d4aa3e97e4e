"""The app real `conveyor worker --app sysapp:app` subprocesses load in the system tests.

The store comes from CONVEYOR_URL. Every task appends one line per event to the file named by
SYS_EXEC_LOG (O_APPEND, one write per line, so lines from many processes never interleave):

    start JOB_ID ATTEMPT PID TIME
    done  JOB_ID ATTEMPT PID TIME

SYS_FAST=1 makes every task skip its sleep, so a second worker finishes what a first one
left behind at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

from conveyor import Conveyor, JobContext, Retry


def record(ctx: JobContext, event: str) -> None:
    path = os.environ.get("SYS_EXEC_LOG")
    if not path:
        return
    line = f"{event} {ctx.job_id} {ctx.attempt} {os.getpid()} {time.time():.6f}\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def sleep_for(payload: dict[str, Any]) -> float:
    if os.environ.get("SYS_FAST"):
        return 0.0
    return float(payload.get("sleep", 0.0))


def make_app(url: str | None = None) -> Conveyor:
    """The app with every system-test task registered (the test process builds its own)."""
    app = Conveyor(url)

    @app.task(retry=Retry(attempts=3, backoff="fixed", base=0.2))
    async def work(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        record(ctx, "start")
        await asyncio.sleep(sleep_for(payload))
        record(ctx, "done")
        return {"pid": os.getpid(), "n": payload.get("n")}

    @app.task(retry=Retry(attempts=3, backoff="fixed", base=0.2))
    def sync_work(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        record(ctx, "start")
        time.sleep(sleep_for(payload))
        record(ctx, "done")
        return {"pid": os.getpid(), "n": payload.get("n")}

    @app.task(retry=Retry(attempts=3, backoff="fixed", base=0.1))
    def poison(ctx: JobContext, payload: dict[str, Any]) -> None:
        record(ctx, "start")
        raise ValueError(f"poison pill, attempt {ctx.attempt}")

    @app.task(timeout=0.5, retry=Retry(attempts=2, backoff="fixed", base=0.1))
    async def too_slow(ctx: JobContext, payload: dict[str, Any]) -> None:
        record(ctx, "start")
        await asyncio.sleep(30)
        record(ctx, "done")

    @app.task(retry=Retry(attempts=3, backoff="fixed", base=0.1))
    def suicide(ctx: JobContext, payload: dict[str, Any]) -> None:
        record(ctx, "start")
        os.kill(os.getpid(), signal.SIGKILL)  # a job that takes its worker down every time

    @app.task(retry=Retry(attempts=3, backoff="fixed", base=0.1))
    async def block_loop(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        record(ctx, "start")
        end = time.monotonic() + sleep_for(payload)
        while time.monotonic() < end:  # CPU-bound on the worker's event loop, on purpose
            pass
        record(ctx, "done")
        return {"pid": os.getpid()}

    return app


app = make_app()
