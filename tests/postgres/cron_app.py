"""The app of the PostgreSQL cron test, run in real `conveyor worker` processes: a schedule
every second whose job appends its id and pid to CONVEYOR_TEST_RUN_LOG."""

from __future__ import annotations

import os

from conveyor import Conveyor, JobContext

app = Conveyor()


@app.task(queue="cron")
async def tick(ctx: JobContext, payload: dict[str, str]) -> None:
    descriptor = os.open(os.environ["CONVEYOR_TEST_RUN_LOG"],
                         os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, f"{ctx.job_id} {os.getpid()}\n".encode())
    finally:
        os.close(descriptor)


app.cron("* * * * * *", "tick", {"from": "cron"}, name="every-second")
