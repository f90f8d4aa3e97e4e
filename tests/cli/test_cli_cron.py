"""`conveyor cron`: the app's schedules and when each runs next."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

from .conftest import Cli


def test_cron_lists_the_schedules_with_their_next_run(cli: Cli) -> None:
    before = time.time()
    rows = cli.json("cron", "--app", "cronapp:app")
    assert [(r["name"], r["cron"], r["task"], r["queue"], r["timezone"]) for r in rows] == [
        ("sales", "0 7 * * mon-fri", "report", "reports", "Europe/Paris"),
        ("quarterly", "*/15 * * * *", "report", "urgent", "UTC")]
    sales = datetime.fromtimestamp(rows[0]["next_run"], ZoneInfo("Europe/Paris"))
    assert (sales.hour, sales.minute, sales.weekday() < 5) == (7, 0, True)
    assert before < rows[1]["next_run"] <= before + 15 * 60 + 1
    assert rows[1]["next_run"] % 900 == 0
    table = cli.ok("cron", "--app", "cronapp:app")
    assert "2 cron schedules" in table and "Europe/Paris" in table and "sales" in table
    assert cli.ok("cron", "--app", "cliapp:app").startswith("no cron schedules")
