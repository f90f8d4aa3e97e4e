"""The app of the cron pause system test: a schedule every second, run by real workers."""

from __future__ import annotations

from typing import Any

from conveyor import Conveyor, JobContext

app = Conveyor()


@app.task(queue="cron")
async def tick(ctx: JobContext, payload: dict[str, Any]) -> None:
    return None


app.cron("* * * * * *", "tick", name="every-second")
