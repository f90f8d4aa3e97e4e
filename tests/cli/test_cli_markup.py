"""Job data is never read as Rich markup: a queue, a task, a payload, a progress step or an
error that holds `[/]` or `[bold]` prints as it is, and "[redacted]" is not swallowed. The
real `conveyor` command, and the demo's live view drawn from a real store."""

from __future__ import annotations

import io
import random
import sqlite3
from typing import Any

from rich.console import Console

from conveyor import JobContext, Retry
from conveyor.demo.tasks import JobStream, Producer
from conveyor.demo.view import Status, Throughput, fit_rows, render, take_snapshot
from conveyor.testing import run_until_idle

from .conftest import Cli

ODD = "[/]"
LEGACY = "legacy"  # queue names are checked now; older releases stored any, like ODD
PAYLOAD = {"note": "[bold]loud[/bold] and [/] and [redacted]"}


def seed(cli: Cli) -> dict[str, str]:
    app = cli.app()

    @app.task(name="[bold]shout", queue=LEGACY, retry=Retry(attempts=1))
    def shout(ctx: JobContext, payload: dict[str, Any]) -> dict[str, str]:
        ctx.progress(10, "step [/] [red]one")
        raise RuntimeError(f"failed on {payload['note']}")

    try:
        ids = {"queued": app.enqueue("send_welcome", PAYLOAD, queue=LEGACY, tenant=ODD).id,
               "dead": app.enqueue("[bold]shout", PAYLOAD).id}
        run_until_idle(app, queues=[LEGACY])
        ids["signup"] = app.enqueue("signup", {"user_id": "u1", "password_hint": "cat"}).id
    finally:
        app.close()
    with sqlite3.connect(cli.url.removeprefix("sqlite:///")) as conn:  # a row of an old release
        conn.execute("UPDATE conveyor_jobs SET queue = ? WHERE queue = ?", (ODD, LEGACY))
    return ids


def test_jobs_and_stats_print_a_queue_named_like_markup(cli: Cli) -> None:
    seed(cli)
    jobs = cli("jobs")
    assert jobs.returncode == 0, jobs.stderr
    assert ODD in jobs.stdout and "[bold]shout" in jobs.stdout
    stats = cli("stats")
    assert stats.returncode == 0, stats.stderr
    assert ODD in stats.stdout


def test_job_prints_payload_errors_and_progress_as_they_are(cli: Cli) -> None:
    ids = seed(cli)
    queued = cli("job", ids["queued"])
    assert queued.returncode == 0, queued.stderr
    assert '"note":"[bold]loud[/bold] and [/] and [redacted]"' in queued.stdout
    assert f"tenant           {ODD}" in queued.stdout
    dead = cli.ok("job", ids["dead"])
    assert "RuntimeError: failed on [bold]loud[/bold] and [/] and [redacted]" in dead
    assert "step [/] [red]one" in dead and "[bold]shout" in dead


def test_redacted_fields_print_as_redacted(cli: Cli) -> None:
    ids = seed(cli)
    for app in ((), ("--app", "cliapp:app")):
        shown = cli.ok("job", ids["signup"], *app)
        assert '"password_hint":"[redacted]"' in shown and "cat" not in shown


def test_the_demo_view_draws_job_data_as_it_is(cli: Cli) -> None:
    seed(cli)
    app = cli.app()
    try:
        snapshot = take_snapshot(app, Throughput(), fit_rows(None))
        status = Status("jobs.db", Producer(app, JobStream(random.Random(1))))
    finally:
        app.close()
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(render(snapshot, status))
    drawn = out.getvalue()
    assert ODD in drawn and "[bold]shout" in drawn
    assert "failed on [bold]loud[/bold] and [/] and [redacted]" in drawn
