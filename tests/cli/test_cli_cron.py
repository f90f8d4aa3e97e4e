"""`conveyor cron`: the app's schedules and when each runs next."""

from __future__ import annotations

import subprocess
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from .conftest import Cli, conveyor_command


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


def test_cron_without_an_app_fails_clearly(cli: Cli) -> None:
    """Issue 13, edge 10: without --app there is no code to read schedules from; it said
    "no cron schedules" and exited 0, as if the app had none."""
    result = cli("cron")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "--app" in result.stderr and "CONVEYOR_APP" in result.stderr
    assert "no cron schedules" not in result.stdout


def test_cron_names_stay_whole_at_80_columns(cli: Cli) -> None:
    """At 80 columns the name column was squeezed to nothing (rich shrank it first)."""
    result = subprocess.run([*conveyor_command(), "cron", "--app", "cronapp:app"], cwd=cli.cwd,
                            env={**cli.env, "COLUMNS": "80"}, capture_output=True, text=True,
                            timeout=30, check=True)
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any(line.split()[:1] == ["sales"] for line in lines), result.stdout
    assert any(line.split()[:1] == ["quarterly"] for line in lines), result.stdout


def test_cron_pause_and_resume(cli: Cli) -> None:
    cli.ok("migrate")
    paused = cli("cron", "pause", "sales", "--app", "cronapp:app")
    assert paused.returncode == 0, paused.stderr
    assert "paused cron schedule sales" in paused.stdout
    rows = {r["name"]: r for r in cli.json("cron", "--app", "cronapp:app")}
    assert (rows["sales"]["paused"], rows["quarterly"]["paused"]) == (True, False)
    table = cli.ok("cron", "--app", "cronapp:app")
    assert "paused" in next(line for line in table.splitlines() if line.split()[:1] == ["sales"])
    narrow = cli.wide(80, "cron", "--app", "cronapp:app")
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 80
    assert cli.ok("cron", "resume", "sales", "--app", "cronapp:app").startswith("resumed")
    assert not any(r["paused"] for r in cli.json("cron", "--app", "cronapp:app"))
    unknown = cli("cron", "pause", "sale", "--app", "cronapp:app")
    assert unknown.returncode == 1
    assert "no cron schedule named 'sale'" in unknown.stderr and "'sales'" in unknown.stderr
    assert cli("cron", "pause", "sales").returncode == 2  # no app: no schedules to name
