"""Queue and task limits over HTTP (conveyor.limits): read with their use, changed by an
admin. Thin: each handler checks its input and calls one app method.

    PATCH /api/v1/queues/ai   {"concurrency": 3, "rate": "20/min"}
    PATCH /api/v1/queues/ai   {"rate": null}          # removes the rate, keeps concurrency
    PATCH /api/v1/queues/ai   {"reset": true}         # back to the limit declared in code
    PATCH /api/v1/tasks/sync  {"key_concurrency": 1, "key_rate": "10/min",
                               "key_strategy": "drop"}  # each key's (limits/keys.py)
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..limits.control import UNSET
from ..limits.model import KINDS, STRATEGIES, usage_json
from ..names import QUEUE_NAME_RULE, is_queue_name
from .actions import _form_principal
from .bodies import json_body
from .context import WebContext
from .problems import ApiError, JSONResponse
from .views import redirect

FIELDS = frozenset({"concurrency", "rate", "reset"})
KEY_FIELDS = frozenset({"key_concurrency", "key_rate", "key_strategy"})  # tasks only


def _ctx(request: Request) -> WebContext:
    return request.app.state.web


def _concurrency(data: dict[str, Any], field: str) -> Any:
    value = data.get(field, UNSET)
    if value is not UNSET and value is not None and (
            type(value) is not int or not 0 <= value <= 1_000_000):
        raise ApiError(422, f"bad_{field}", f"{field} is a whole number from 0 to 1000000, "
                       "or null to remove it", {"field": field})
    return value


def _rate(data: dict[str, Any], field: str) -> Any:
    value = data.get(field, UNSET)
    if value is not UNSET and value is not None and not isinstance(value, str):
        raise ApiError(422, f"bad_{field}", f"{field} is COUNT/PERIOD (e.g. \"10/min\", "
                       "\"20/s\", \"100/10s\"), or null to remove it", {"field": field})
    return value


def key_changes(data: dict[str, Any]) -> tuple[Any, Any, Any] | None:
    """(key_concurrency, key_rate, key_strategy) from a task's PATCH body, or None."""
    if not KEY_FIELDS & set(data):
        return None
    strategy = data.get("key_strategy", UNSET)
    if strategy is not UNSET and strategy not in STRATEGIES:
        raise ApiError(422, "bad_key_strategy", f"key_strategy is one of "
                       f"{', '.join(STRATEGIES)}", {"field": "key_strategy"})
    return _concurrency(data, "key_concurrency"), _rate(data, "key_rate"), strategy


def limit_changes(data: Any, keyed: bool = False) -> tuple[Any, Any, bool]:
    """(concurrency, rate, reset) from a PATCH body; UNSET for a field not given."""
    if not isinstance(data, dict) or not data:
        raise ApiError(400, "bad_limits", "the body is an object with concurrency, rate "
                       "and/or reset")
    unknown = sorted(set(data) - FIELDS - (KEY_FIELDS if keyed else frozenset()))
    if unknown:
        more = ", key_concurrency, key_rate, key_strategy" if keyed else ""
        raise ApiError(422, "unknown_field", f"unknown field {unknown[0]!r}: give "
                       f"concurrency, rate{more} and/or reset", {"field": unknown[0]})
    concurrency = _concurrency(data, "concurrency")
    rate = _rate(data, "rate")
    reset = data.get("reset", False)
    if not isinstance(reset, bool):
        raise ApiError(422, "bad_reset", "reset is true or false", {"field": "reset"})
    return concurrency, rate, reset


async def patch_limits(request: Request) -> Response:
    return await _patch(request, "queue")


async def patch_task_limits(request: Request) -> Response:
    return await _patch(request, "task")


async def _patch(request: Request, kind: str) -> Response:
    ctx = _ctx(request)
    await ctx.auth.require(request, admin=True, allow_cookie=False)
    name = request.path_params["name"]
    if kind == "queue" and not is_queue_name(name):
        raise ApiError(400, "bad_queue", f"a queue name is {QUEUE_NAME_RULE}")
    if kind == "task" and not 0 < len(name) <= 200:
        raise ApiError(400, "bad_task", "a task name is 1 to 200 characters")
    async with json_body(request, 64 * 1024, ctx.body_slots,
                         ctx.conveyor.settings.max_body_values) as data:
        concurrency, rate, reset = limit_changes(data, keyed=kind == "task")
        keys = key_changes(data) if kind == "task" else None
    limits = ctx.conveyor.limits
    try:
        if reset:
            await ctx.call(limits.reset, kind, name)
            if kind == "task":
                await ctx.call(limits.reset, "key", name)
        if concurrency is not UNSET or rate is not UNSET:
            await ctx.call(limits.set, kind, name, concurrency=concurrency, rate=rate)
        if keys is not None:
            await ctx.call(limits.set, "key", name, concurrency=keys[0], rate=keys[1],
                           strategy=keys[2])
    except ValueError as exc:
        raise ApiError(422, "bad_limits", str(exc)) from None
    body = await limit_json(ctx, kind, name)
    if kind == "task":
        body["key_limit"] = (await limit_json(ctx, "key", name))["limit"]
    return JSONResponse(body)


async def limit_json(ctx: WebContext, kind: str, name: str) -> dict[str, Any]:
    found = await ctx.call(ctx.conveyor.limits.find, kind, name)
    body: dict[str, Any] = {"kind": kind, "name": name, "limit": None}
    if found is not None:
        body["limit"] = usage_json(found, time.time())
    return body


async def list_limits(request: Request) -> Response:
    ctx = _ctx(request)
    await ctx.auth.require(request)
    usage = await ctx.call(ctx.conveyor.limits.usage)
    now = time.time()
    return JSONResponse({"limits": [usage_json(u, now) for u in usage]})


async def limits_view(ctx: WebContext) -> list[dict[str, Any]]:
    """The queue page's limits: each with its use and what it holds back now."""
    usage = await ctx.call(ctx.conveyor.limits.usage)
    now = time.time()
    return [usage_json(u, now) for u in usage]


async def form_limits(request: Request) -> Response:
    """The queue page's form (admin): set a queue's or a task's caps; blank removes one."""
    await _form_principal(request, admin=True)
    ctx = _ctx(request)
    form = await request.form()
    kind, name = str(form.get("kind") or ""), str(form.get("name") or "").strip()
    if kind not in KINDS or not name or (kind == "queue" and not is_queue_name(name)):
        return redirect("/queues", "Give a queue (or task) name to limit.")
    concurrency_text = str(form.get("concurrency") or "").strip()
    rate = str(form.get("rate") or "").strip() or None
    if concurrency_text and not concurrency_text.isdigit():
        return redirect("/queues", f"Concurrency for {name}: a whole number, or blank.")
    concurrency = int(concurrency_text) if concurrency_text else None
    strategy = str(form.get("strategy") or "queue") if kind == "key" else UNSET
    try:
        await ctx.call(ctx.conveyor.limits.set, kind, name, concurrency=concurrency, rate=rate,
                       strategy=strategy)
    except ValueError as exc:
        return redirect("/queues", f"Limit of {kind} {name} not changed: {exc}")
    return redirect("/queues", f"Limits of {kind} {name} saved; every worker applies them "
                    "within a second.")


def openapi_paths(queue_param: dict[str, Any], op: Any) -> dict[str, Any]:
    """This module's part of the OpenAPI document (openapi.py merges it in)."""
    body: dict[str, Any] = {"type": "object", "additionalProperties": False, "minProperties": 1,
            "properties": {
                "concurrency": {"type": ["integer", "null"], "minimum": 0,
                                "description": "at most this many running across every "
                                               "worker; null removes it"},
                "rate": {"type": ["string", "null"], "examples": ["10/min", "100/10s"],
                         "description": "at most COUNT starts in any sliding window of "
                                        "PERIOD; null removes it"},
                "reset": {"type": "boolean", "description": "drop the change made at run "
                                                           "time: the code's limit applies"}}}
    task_body = {**body, "properties": {
        **body["properties"],
        "key_concurrency": {"type": ["integer", "null"], "minimum": 0,
                            "description": "per key (the task's KeyLimit): at most this many "
                                           "of one key's jobs running; null removes it"},
        "key_rate": {"type": ["string", "null"], "examples": ["10/min"],
                     "description": "per key: at most COUNT starts in any sliding window "
                                    "of PERIOD; null removes it"},
        "key_strategy": {"enum": list(STRATEGIES),
                         "description": "a new job whose key is at its limit: queue (waits), "
                                        "drop (not stored), debounce (older waiting jobs of "
                                        "the key are cancelled)"}}}
    name = {**queue_param, "name": "name"}
    limit = {"type": "object", "properties": {"kind": {"enum": list(KINDS)},
                                              "name": {"type": "string"},
                                              "limit": {"type": ["object", "null"]}}}
    return {
        "/api/v1/queues/{name}": {"patch": {**op(
            "Change a queue's limits (admin); every worker applies it within a second",
            (200, limit, "The queue's limit and its use"), 400, 401, 403, 415, 422,
            body=body), "parameters": [name]}},
        "/api/v1/tasks/{name}": {"patch": {**op(
            "Change a task's limits and each key's (admin)",
            (200, limit, "The task's limit, its keys' (key_limit), and their use"),
            400, 401, 403, 415, 422, body=task_body), "parameters": [name]}},
        "/api/v1/limits": {"get": op("Every limit with its current use (running, starts "
                                     "in its window, what it holds back)",
                                     (200, {"type": "object"}, "Limits"), 401)},
    }


def routes() -> list[BaseRoute]:
    return [Route("/api/v1/queues/{name}", patch_limits, methods=["PATCH"]),
            Route("/api/v1/tasks/{name}", patch_task_limits, methods=["PATCH"]),
            Route("/api/v1/limits", list_limits, methods=["GET"]),
            Route("/limits", form_limits, methods=["POST"])]
