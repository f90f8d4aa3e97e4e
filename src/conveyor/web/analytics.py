"""The analytics API (/api/v1/analytics/...): tasks, errors, workers and slow attempts over
a time range (?range=1h ... 30d), a job's attempts, and the error-group actions (retry or
discard every dead job of a group). Tenant tokens see their tenant's figures only; admins
may pass ?tenant=. The dashboard pages (web/analytics_pages.py) read the same methods."""

from __future__ import annotations

import dataclasses
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..analytics import check_fingerprint, parse_span
from ..errors import ConfigError, ConveyorError
from ..history.records import TimeRange
from .api import ctx_of, reader, writer
from .auth import Principal
from .inputs import _text, limit_of
from .problems import ApiError

API = "/api/v1/analytics"


def window_of(request: Request, principal: Principal) -> TimeRange:
    """The range (?range=, default 1h), task, queue and tenant of an analytics query."""
    params = request.query_params
    try:
        span = parse_span(params.get("range") or "1h")
    except ConfigError as exc:
        raise ApiError(400, "bad_query", str(exc), {"field": "range"}) from None
    tenant = principal.tenant if not principal.admin else _text(params, "tenant")
    analytics = ctx_of(request).conveyor.analytics
    return analytics.window(span, tenant=tenant, task=_text(params, "task"),
                            queue=_text(params, "queue"))


def _range_json(window: TimeRange) -> dict[str, Any]:
    return {"start": window.start, "end": window.end, "tenant": window.tenant}


async def tasks(request: Request) -> Response:
    ctx = ctx_of(request)
    window = window_of(request, await reader(request))
    points = limit_of(request.query_params, default=30, most=200) if (
        "limit" in request.query_params) else 30
    found = await ctx.call(ctx.conveyor.analytics.tasks, window, points)
    return JSONResponse({"range": _range_json(window), "tasks": [
        {**dataclasses.asdict(t), "total": t.total, "failed": t.failed} for t in found]})


async def errors(request: Request) -> Response:
    ctx = ctx_of(request)
    window = window_of(request, await reader(request))
    found = await ctx.call(ctx.conveyor.analytics.errors, window,
                           limit_of(request.query_params, default=50, most=500))
    return JSONResponse({"range": _range_json(window),
                         "errors": [dataclasses.asdict(g) for g in found]})


async def workers(request: Request) -> Response:
    ctx = ctx_of(request)
    window = window_of(request, await reader(request))
    found = await ctx.call(ctx.conveyor.analytics.workers, window)
    return JSONResponse({"range": _range_json(window),
                         "workers": [dataclasses.asdict(w) for w in found]})


async def slow(request: Request) -> Response:
    ctx = ctx_of(request)
    window = window_of(request, await reader(request))
    found = await ctx.call(ctx.conveyor.analytics.slow, window,
                           limit_of(request.query_params, default=20, most=500))
    return JSONResponse({"range": _range_json(window),
                         "attempts": [dataclasses.asdict(a) for a in found]})


async def attempts(request: Request) -> Response:
    ctx = ctx_of(request)
    principal = await reader(request)
    found = await ctx.call(ctx.conveyor.analytics.attempts, request.path_params["id"],
                           principal.scope)
    return JSONResponse({"attempts": [dataclasses.asdict(a) for a in found]})


async def group_action(request: Request) -> Response:
    ctx = ctx_of(request)
    principal = await writer(request)
    action = request.path_params["action"]
    if action not in ("retry", "discard"):
        raise ApiError(404, "not_found", "an error group's actions are retry and discard")
    try:
        fingerprint = check_fingerprint(request.path_params["fingerprint"])
        analytics = ctx.conveyor.analytics
        method = analytics.retry_group if action == "retry" else analytics.discard_group
        count = await ctx.call(method, fingerprint, principal.scope)
    except ConfigError as exc:
        raise ApiError(400, "bad_fingerprint", str(exc), {"field": "fingerprint"}) from None
    except ConveyorError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    return JSONResponse({"fingerprint": fingerprint, "action": action, "jobs": count})


def routes() -> list[BaseRoute]:
    return [
        Route(f"{API}/tasks", tasks, methods=["GET"]),
        Route(f"{API}/errors", errors, methods=["GET"]),
        Route(f"{API}/errors/{{fingerprint}}/{{action}}", group_action, methods=["POST"]),
        Route(f"{API}/workers", workers, methods=["GET"]),
        Route(f"{API}/slow", slow, methods=["GET"]),
        Route("/api/v1/jobs/{id}/attempts", attempts, methods=["GET"]),
    ]


def _param(name: str, text: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": text,
            "schema": {"type": kind}}


def openapi_paths() -> dict[str, Any]:
    """The analytics paths of the OpenAPI document (web/openapi.py merges them in)."""
    scope = [_param("range", "how far back: 90m, 1h, 24h, 7d, 30d (default 1h; at most 60d)"),
             _param("tenant", "admin tokens only; a tenant token sees its own tenant"),
             _param("task", "one task"), _param("queue", "one queue")]
    limit = _param("limit", "how many rows (1 to 500)", "integer")

    def get(summary: str, params: list[dict[str, Any]]) -> dict[str, Any]:
        return {"get": {"summary": summary, "parameters": params, "responses": {
            "200": {"description": summary, "content": {"application/json": {
                "schema": {"type": "object"}}}},
            "400": {"description": "Bad range, limit or filter"},
            "401": {"description": "Missing or invalid token"}}}}

    group = {"name": "fingerprint", "in": "path", "required": True,
             "schema": {"type": "string", "pattern": "^[0-9a-f]{16}$"}}
    action = {"name": "action", "in": "path", "required": True,
              "schema": {"enum": ["retry", "discard"]}}
    return {
        f"{API}/tasks": get("Per task and queue: counts by outcome, p50/p95/p99 and a series "
                            "of attempts and failures (limit = points, default 30)",
                            [*scope, limit]),
        f"{API}/errors": get("Error groups by fingerprint: count, first and last seen, tasks, "
                             "a sample job and dead jobs still stored", [*scope, limit]),
        f"{API}/errors/{{fingerprint}}/{{action}}": {"post": {
            "summary": "Retry or discard every dead job of an error group",
            "parameters": [group, action], "responses": {
                "200": {"description": "How many jobs", "content": {"application/json": {
                    "schema": {"type": "object"}}}},
                "400": {"description": "Not a fingerprint"},
                "401": {"description": "Missing or invalid token"}}}},
        f"{API}/workers": get("Per worker: attempts, failures, busy share, CPU, peak RSS, "
                              "throughput and what it runs now", scope),
        f"{API}/slow": get("The slowest attempts", [*scope, limit]),
        "/api/v1/jobs/{id}/attempts": get("Every recorded attempt of a job (kept after the "
                                          "job is pruned)", [{"name": "id", "in": "path",
                                                             "required": True,
                                                             "schema": {"type": "string"}}]),
    }
