"""An app with cron schedules, for `conveyor cron --app cronapp:app`."""

from __future__ import annotations

from typing import Any

from conveyor import Conveyor, JobContext

app = Conveyor()


@app.task(queue="reports")
def report(ctx: JobContext, payload: dict[str, Any]) -> None:
    return None


app.cron("0 7 * * mon-fri", "report", {"kind": "sales"}, name="sales", timezone="Europe/Paris")
app.cron("*/15 * * * *", "report", name="quarterly", queue="urgent")
