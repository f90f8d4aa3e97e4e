"""Cron over HTTP: GET /api/v1/cron (the app's schedules, next run and whether each is
paused) and POST /api/v1/cron/{name}/pause and /resume (admin tokens). Schedules live in the
code of the app the server was started with (`conveyor serve --app ...`); a pause is kept in
the store and holds on every worker (scheduler.py). Thin: cron_control.py does the work."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..errors import ConveyorError
from .context import WebContext
from .problems import JSONResponse, from_conveyor


def _ctx(request: Request) -> WebContext:
    return request.app.state.web


async def schedules(request: Request) -> Response:
    ctx = _ctx(request)
    await ctx.auth.require(request)
    conveyor = ctx.conveyor
    states = await ctx.call(conveyor.schedule_states) if conveyor.schedules else {}
    now = time.time()
    return JSONResponse({"schedules": [{
        "name": entry.name, "cron": entry.expression, "timezone": entry.timezone,
        "task": entry.task, "next_run": entry.next_slot(now),
        "paused": bool(entry.name in states and states[entry.name].paused),
        "changed_at": states[entry.name].changed_at if entry.name in states else None}
        for entry in conveyor.schedules.values()]})


async def pause(request: Request) -> Response:
    return await _change(request, paused=True)


async def resume(request: Request) -> Response:
    return await _change(request, paused=False)


async def _change(request: Request, *, paused: bool) -> Response:
    ctx = _ctx(request)
    await ctx.auth.require(request, admin=True, allow_cookie=False)  # bearer only: no CSRF
    name = request.path_params["name"]
    method = ctx.conveyor.pause_schedule if paused else ctx.conveyor.resume_schedule
    try:
        await ctx.call(method, name)
    except ConveyorError as exc:
        raise from_conveyor(exc, admin=True) from None
    return JSONResponse({"name": name, "paused": paused})


def openapi_paths(op: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    changed = (200, {"type": "object", "properties": {"name": {"type": "string"},
                                                      "paused": {"type": "boolean"}}}, "Done")
    return {
        "/api/v1/cron": {"get": op("The app's cron schedules: next run, paused or not",
                                   (200, {"type": "object"}, "Schedules"), 401)},
        "/api/v1/cron/{name}/pause": {"post": {**op(
            "Pause a schedule on every node (admin)", changed, 401, 403, 404),
            "parameters": [name]}},
        "/api/v1/cron/{name}/resume": {"post": {**op(
            "Resume a schedule from its next slot (admin)", changed, 401, 403, 404),
            "parameters": [name]}}}


def routes() -> list[BaseRoute]:
    # {name:path}: a schedule's name may hold "/" ("report daily/eu")
    return [Route("/api/v1/cron", schedules, methods=["GET"]),
            Route("/api/v1/cron/{name:path}/pause", pause, methods=["POST"]),
            Route("/api/v1/cron/{name:path}/resume", resume, methods=["POST"])]
