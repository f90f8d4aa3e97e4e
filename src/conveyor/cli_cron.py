"""`conveyor cron` (the app's schedules, when each runs next, and which are paused) and
`conveyor cron pause NAME` / `resume NAME`. Schedules live in code, so each needs the app
(--app or CONVEYOR_APP); the pauses live in the store and hold on every node. Registered by
cli.py."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from typing import Annotated

import typer

from .cli import AppOption, JsonOption, err, fail, load_app, out, print_json
from .cli_views import schedules_table
from .errors import ConveyorError, ScheduleNotFound
from .store.base import ScheduleState

cron_cli = typer.Typer(help="Cron schedules: list them (the default), pause and resume them.")
NameArgument = Annotated[str, typer.Argument(help="the schedule's name (conveyor cron lists "
                                                  "them)")]


def _need_app(app: str | None) -> None:
    if not (app or os.environ.get("CONVEYOR_APP")):  # schedules live in code, not the store
        fail("conveyor cron needs --app package.module:attribute (or CONVEYOR_APP): cron "
             "schedules are declared in your app's code", 2)


@cron_cli.callback(invoke_without_command=True)
def cron_schedules(context: typer.Context, app: AppOption = None,
                   json_out: JsonOption = False) -> None:
    """The app's cron schedules (app.cron), when each runs next, and which are paused."""
    if context.invoked_subcommand is not None:
        return
    _need_app(app)
    conveyor = load_app(app)
    now = time.time()
    states = _states(conveyor.schedule_states) if conveyor.schedules else {}
    rows = []
    for entry in conveyor.schedules.values():
        spec = conveyor.registry.find(entry.task)
        state = (states or {}).get(entry.name)
        rows.append({"name": entry.name, "cron": entry.expression, "timezone": entry.timezone,
                     "task": entry.task,
                     "queue": entry.options.get("queue") or (spec.queue if spec else "default"),
                     "next_run": entry.next_slot(now),
                     "paused": None if states is None else bool(state and state.paused)})
    if json_out:
        print_json(rows)
    elif not rows:
        out.print("no cron schedules: register them with app.cron(expression, task, payload)")
    else:
        out.print(schedules_table(rows))


def _states(read: Callable[[], dict[str, ScheduleState]]) -> dict[str, ScheduleState] | None:
    """The stored pauses, or None (said on stderr) when the store cannot tell."""
    try:
        return read()
    except (ConveyorError, sqlite3.Error, OSError) as exc:
        err.print(f"note: which schedules are paused is unknown: {exc}", highlight=False)
        return None


@cron_cli.command("pause")
def pause(name: NameArgument, app: AppOption = None) -> None:
    """Stop NAME from enqueueing on every node until `conveyor cron resume NAME`."""
    _change(name, app, paused=True)


@cron_cli.command("resume")
def resume(name: NameArgument, app: AppOption = None) -> None:
    """Let NAME run again from its next slot (slots missed while paused do not run)."""
    _change(name, app, paused=False)


def _change(name: str, app: str | None, *, paused: bool) -> None:
    _need_app(app)
    conveyor = load_app(app)
    try:
        (conveyor.pause_schedule if paused else conveyor.resume_schedule)(name)
    except ScheduleNotFound as exc:
        fail(str(exc))
    out.print(f"{'paused' if paused else 'resumed'} cron schedule {name}")
