"""The app of the flow-control system tests (test_sys_limits.py), run by real
`conveyor worker` processes. Every run appends "start|end job_id pid time" to the ledger in
LIMITS_LEDGER: one short O_APPEND write each, so lines stay whole when a worker is killed.
A run of `rated` first writes "booked job_id pid time STARTED_AT": the store's start time."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from conveyor import Conveyor, JobContext, KeyLimit, Retry

app = Conveyor()
app.queue("capped", concurrency=3)


def _write(event: str, job_id: str, extra: str = "") -> None:
    descriptor = os.open(os.environ["LIMITS_LEDGER"], os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                         0o644)
    try:
        os.write(descriptor, f"{event} {job_id} {os.getpid()} {time.time():.6f}{extra}\n".encode())
    finally:
        os.close(descriptor)


async def _run(ctx: JobContext, payload: dict[str, Any]) -> int:
    _write("start", ctx.job_id)
    await asyncio.sleep(payload.get("ms", 60) / 1000)
    _write("end", ctx.job_id)
    return os.getpid()


@app.task(queue="capped", retry=Retry(attempts=20, backoff="fixed", base=0.1))
async def capped(ctx: JobContext, payload: dict[str, Any]) -> int:
    return await _run(ctx, payload)


@app.task(queue="mixed", concurrency=1, retry=Retry(attempts=20, backoff="fixed", base=0.1))
async def solo(ctx: JobContext, payload: dict[str, Any]) -> int:
    return await _run(ctx, payload)


@app.task(queue="rated", retry=Retry(attempts=20, backoff="fixed", base=0.1))
async def rated(ctx: JobContext, payload: dict[str, Any]) -> int:
    # the store's start time of this run (what the rate counts), beside the body's own
    _write("booked", ctx.job_id, f" {ctx.started_at:.6f}")
    return await _run(ctx, payload)


@app.task(queue="keyed", key=KeyLimit("payload.customer", concurrency=1),
          retry=Retry(attempts=20, backoff="fixed", base=0.1))
async def per_customer(ctx: JobContext, payload: dict[str, Any]) -> int:
    return await _run(ctx, payload)


@app.task(queue="fair", key=KeyLimit("payload.customer", concurrency=2),
          retry=Retry(attempts=20, backoff="fixed", base=0.1))
async def fair(ctx: JobContext, payload: dict[str, Any]) -> int:
    return await _run(ctx, payload)


@app.task(queue="changing")
async def changing(ctx: JobContext, payload: dict[str, Any]) -> int:
    return await _run(ctx, payload)
