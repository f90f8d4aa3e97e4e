"""The app the API and browser tests serve: a few tasks with and without a schema."""

from __future__ import annotations

import asyncio
import threading
from typing import Annotated, Any

from pydantic import BaseModel

from conveyor import Conveyor, JobContext, Retry, Sensitive


class Evaluate(BaseModel):
    assessment_id: str
    transcript: Annotated[str, Sensitive]
    score: int = 0


def build_app(url: str) -> tuple[Conveyor, dict[str, Any]]:
    """The app plus a `flags` dict the tests flip (e.g. to make `flaky` succeed)."""
    app = Conveyor(url)
    flags: dict[str, Any] = {"fail": True, "release": threading.Event()}

    @app.task(queue="default", retry=Retry(attempts=1))
    def echo(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        return {"echo": payload}

    @app.task(queue="ai", schema=Evaluate)
    def evaluate(ctx: JobContext, payload: Evaluate) -> dict[str, Any]:
        return {"assessment_id": payload.assessment_id, "length": len(payload.transcript)}

    @app.task(queue="flaky", retry=Retry(attempts=1))
    def flaky(ctx: JobContext, payload: dict[str, Any]) -> str:
        if flags["fail"]:
            raise RuntimeError("flaky failed on purpose")
        return "ok"

    @app.task(queue="patient", retry=Retry(attempts=3, backoff="fixed", base=600, jitter=0))
    def patient(ctx: JobContext, payload: dict[str, Any]) -> str:
        raise ConnectionError("the partner API is down")  # retried in 10 minutes

    @app.task(queue="slow")
    async def slow(ctx: JobContext, payload: dict[str, Any]) -> str:
        steps = int(payload.get("steps", 4))
        for step in range(steps):
            ctx.progress(100 * (step + 1) / steps, step=f"step {step + 1}")
            await asyncio.sleep(float(payload.get("pause", 0.2)))
        return "done"

    return app, flags
