"""The dashboard's cron page: each schedule with its expression, zone, next run and its last
runs with their outcomes, and "Run now" for admins.

Schedules live in code (app.cron), so the page lists those of the app the server was started
with (`conveyor serve --app ...`). A slot's job has an id made from the schedule's name and
the slot's time (scheduler.slot_id), so a schedule's last runs are found by id, without a
search: a slot with no job is shown as missed (no worker ran the scheduler then, or the job
was pruned).
"""

from __future__ import annotations

import time
from collections import deque
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..errors import ConveyorError
from ..scheduler import Schedule, slot_id
from .actions import _form_principal
from .context import WebContext
from .problems import ApiError, from_conveyor
from .views import redirect, render

LAST_RUNS = 5
LOOKBACK = 31 * 24 * 3600.0  # how far back the last runs of a rare schedule are looked for


def _ctx(request: Request) -> WebContext:
    return request.app.state.web


def last_slots(entry: Schedule, now: float, count: int = LAST_RUNS) -> list[float]:
    """The schedule's latest `count` slot times up to now, newest first; a frequent schedule
    is searched over a short span first, so a once-a-second schedule costs no month of slots."""
    for span in (60.0, 3600.0, 86400.0, LOOKBACK):
        found = deque(entry.slots(now - span, now), maxlen=count)
        if len(found) >= count or span == LOOKBACK:
            return list(reversed(found))
    return []


async def schedule_rows(ctx: WebContext, tenant: str | None) -> list[dict[str, Any]]:
    now = time.time()
    rows = []
    states = await ctx.call(ctx.conveyor.schedule_states) if ctx.conveyor.schedules else {}
    for entry in ctx.conveyor.schedules.values():
        runs = []
        for slot in last_slots(entry, now):
            job_id = slot_id(entry.name, slot)
            job = await ctx.call(ctx.conveyor.call,
                                 lambda store, i=job_id: store.get(i, tenant))
            runs.append({"slot": slot, "id": job_id, "state": None if job is None
                         else ("retrying" if job.retrying else str(job.state))})
        upcoming = entry.next_slot(now)
        zone = ZoneInfo(entry.timezone)
        rows.append({"name": entry.name, "expression": entry.expression, "task": entry.task,
                     "queue": entry.options.get("queue") or _task_queue(ctx, entry.task),
                     "timezone": entry.timezone, "next_run": upcoming,
                     "next_local": datetime.fromtimestamp(upcoming, zone)
                     .strftime("%Y-%m-%d %H:%M:%S"), "runs": runs,
                     "paused": bool(entry.name in states and states[entry.name].paused)})
    return rows


def _task_queue(ctx: WebContext, task: str) -> str:
    found = ctx.conveyor.registry.get(task) if task in ctx.conveyor.registry else None
    return found.queue if found is not None else "default"


async def cron_page(request: Request) -> Response:
    ctx = _ctx(request)
    principal = await ctx.auth.principal(request)
    if principal is None:
        return redirect("/login?next=/cron")
    rows = await schedule_rows(ctx, principal.scope)
    return render(request, "cron.html", principal, schedules=rows, title="Cron")


async def run_now(request: Request) -> Response:
    """Enqueue the schedule's job now, besides its slots (an ordinary job, not a slot)."""
    await _form_principal(request, admin=True)
    ctx = _ctx(request)
    entry = ctx.conveyor.schedules.get(request.path_params["name"])
    if entry is None:
        raise ApiError(404, "not_found", "no such schedule in this server's app")
    options = {**entry.options, "correlation_id": f"cron:{entry.name}:now"}
    try:
        job = await ctx.call(ctx.conveyor.enqueue, entry.task, entry.payload, **options)
    except ConveyorError as exc:
        raise from_conveyor(exc, admin=True) from None
    return redirect("/cron", f"Enqueued {entry.task} of schedule {entry.name} now: job "
                             f"{job.id}.")


async def pause_or_resume(request: Request) -> Response:
    """The Pause / Resume button: holds on every node (scheduler.py)."""
    name, action = request.path_params["name"], request.path_params["action"]
    if action not in ("pause", "resume"):
        raise ApiError(404, "not_found", "no such page")
    await _form_principal(request, admin=True)
    ctx = _ctx(request)
    try:
        await ctx.call(ctx.conveyor.pause_schedule if action == "pause"
                       else ctx.conveyor.resume_schedule, name)
    except ConveyorError as exc:
        raise from_conveyor(exc, admin=True) from None
    done = ("Paused schedule {name}: no node enqueues it until it is resumed." if action ==
            "pause" else "Resumed schedule {name}: it runs from its next slot.")
    return redirect("/cron", done.format(name=name))


def routes() -> list[BaseRoute]:
    return [Route("/cron", cron_page),
            Route("/cron/{name:path}/run", run_now, methods=["POST"]),
            Route("/cron/{name:path}/{action:str}", pause_or_resume, methods=["POST"])]
