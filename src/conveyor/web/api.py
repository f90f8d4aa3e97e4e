"""The JSON API of SPEC section 4. Thin: every handler checks input, calls one app method."""

from __future__ import annotations

import time
from contextlib import AbstractAsyncContextManager
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ..errors import ConveyorError
from .auth import Principal
from .bodies import caller, fields_of, json_body, page_of_jobs
from .context import WebContext
from .events import EventFilter, stream
from .grants import check_grant
from .inputs import cursor_of, job_filter, job_spec, limit_of
from .problems import ApiError, JSONResponse, from_conveyor
from .search_api import search_of, search_page
from .serialize import accepted_json, job_json, queue_json, stats_json, worker_json


def ctx_of(request: Request) -> WebContext:
    return request.app.state.web


async def writer(request: Request, *, admin: bool = False) -> Principal:
    """The caller of a state-changing call: bearer tokens only (a cookie would invite CSRF)."""
    return await ctx_of(request).auth.require(request, admin=admin, allow_cookie=False)


async def reader(request: Request, *, admin: bool = False) -> Principal:
    return await ctx_of(request).auth.require(request, admin=admin)


async def enqueue(request: Request) -> Response:
    ctx = ctx_of(request)
    principal = await writer(request)
    ctx.enqueue_rate.check(principal)  # CONVEYOR_API_ENQUEUE_RATE: 429 + Retry-After
    async with body_of(request, ctx, ctx.max_body) as data:
        task, payload, options = job_spec(data, principal)
        check_grant(principal.grant, principal.tenant, ctx.conveyor.registry, task, options)
        try:
            job = await caller(request, ctx.call)(ctx.conveyor.enqueue, task, payload,
                                                  **options)
        except ConveyorError as exc:
            raise from_conveyor(exc, admin=principal.admin) from None
    body = accepted_json(job)
    return JSONResponse(body, status_code=202, headers={"Location": body["status_url"]})


async def enqueue_batch(request: Request) -> Response:
    ctx = ctx_of(request)
    principal = await writer(request)
    async with body_of(request, ctx, ctx.max_batch_body) as data:
        if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
            raise ApiError(422, "invalid_request", 'the body must be {"jobs": [...]}',
                           {"errors": [{"field": "jobs", "message": "must be a list"}]})
        if set(data) - {"jobs"}:
            raise ApiError(422, "invalid_request", "only 'jobs' is allowed in a batch body")
        items = data["jobs"]
        limit = ctx.conveyor.settings.max_batch
        if len(items) > limit:
            raise ApiError(413, "batch_too_large", f"batch of {len(items)} jobs is over the "
                           f"limit of {limit} (split it, or raise CONVEYOR_MAX_BATCH)",
                           {"size": len(items), "limit": limit})
        if not items:
            raise ApiError(422, "invalid_request", "the batch is empty")
        ctx.enqueue_rate.check(principal, len(items))
        specs = []
        for index, item in enumerate(items):
            task, payload, options = job_spec(item, principal, f"jobs[{index}]")
            check_grant(principal.grant, principal.tenant, ctx.conveyor.registry, task,
                        options, f"jobs[{index}]")
            specs.append({"task": task, "payload": payload, **options})
        try:
            jobs = await caller(request, ctx.call)(ctx.conveyor.enqueue_many, specs)
        except ConveyorError as exc:
            raise from_conveyor(exc, admin=principal.admin) from None
    return JSONResponse({"batch_id": jobs[0].batch_id, "jobs": [accepted_json(j) for j in jobs]},
                        status_code=202)


async def get_job(request: Request) -> Response:
    ctx = ctx_of(request)
    principal = await reader(request)
    job = await _get(ctx, request.path_params["id"], principal.scope)
    held = await ctx.call(ctx.conveyor.limits.holding, job)  # flow control: which limit
    return JSONResponse({**job_json(job), "held_back_by": held})


async def _get(ctx: WebContext, job_id: str, tenant: str | None) -> Any:
    try:
        return await ctx.call(ctx.conveyor.get, job_id, tenant=tenant, redacted=True)
    except ConveyorError as exc:
        raise from_conveyor(exc) from None


async def list_jobs(request: Request) -> Response:
    ctx = ctx_of(request)
    principal = await reader(request)
    params = request.query_params
    where, limit, cursor = job_filter(params, principal), limit_of(params), cursor_of(params)
    search = search_of(params)
    if not search.empty:
        return await search_page(ctx, where, search, cursor, limit, fields_of(params))
    body = await page_of_jobs(ctx.conveyor.list_jobs, where, cursor, limit, fields_of(params),
                              ctx.conveyor.settings.max_list_bytes)
    return Response(body, media_type="application/json")


def body_of(request: Request, ctx: WebContext, limit: int) -> AbstractAsyncContextManager[Any]:
    return json_body(request, limit, ctx.body_slots, ctx.conveyor.settings.max_body_values)


async def cancel_job(request: Request) -> Response:
    return await _control(request, "cancel")


async def retry_job(request: Request) -> Response:
    return await _control(request, "retry")


async def _control(request: Request, action: str) -> Response:
    ctx = ctx_of(request)
    principal = await writer(request)
    method = ctx.conveyor.cancel if action == "cancel" else ctx.conveyor.retry
    try:
        await ctx.call(method, request.path_params["id"], tenant=principal.scope)
    except ConveyorError as exc:
        raise from_conveyor(exc) from None
    job = await _get(ctx, request.path_params["id"], principal.scope)
    return JSONResponse(job_json(job))


async def queues(request: Request) -> Response:
    ctx = ctx_of(request)
    principal = await reader(request)
    found = await ctx.call(ctx.conveyor.queues, tenant=principal.scope)
    return JSONResponse({"queues": [queue_json(q) for q in found]})


async def pause_queue(request: Request) -> Response:
    return await _pause(request, paused=True)


async def resume_queue(request: Request) -> Response:
    return await _pause(request, paused=False)


async def _pause(request: Request, *, paused: bool) -> Response:
    ctx = ctx_of(request)
    await writer(request, admin=True)
    name = request.path_params["name"]
    if not 0 < len(name) <= 100 or any(ord(c) < 32 for c in name):
        raise ApiError(400, "bad_queue", "a queue name is 1 to 100 characters, one line")
    await ctx.call(ctx.conveyor.pause if paused else ctx.conveyor.resume, name)
    return JSONResponse({"name": name, "paused": paused})


async def stats(request: Request) -> Response:
    ctx = ctx_of(request)
    principal = await reader(request)
    found = await ctx.call(ctx.conveyor.stats, tenant=principal.scope)
    return JSONResponse(stats_json(found))


async def workers(request: Request) -> Response:
    ctx = ctx_of(request)
    await reader(request, admin=True)
    found = await ctx.call(ctx.conveyor.workers)
    now = time.time()
    return JSONResponse({"workers": [worker_json(w, now) for w in found]})


async def events(request: Request) -> Response:
    ctx = ctx_of(request)
    principal = await reader(request)
    params = request.query_params

    def items(name: str) -> frozenset[str]:
        return frozenset(v for v in (params.get(name) or "").split(",") if v)

    client = ctx.hub.connect(EventFilter(tenant=principal.scope, queues=items("queue"),
                                         states=items("state"), ids=items("id")))
    return StreamingResponse(stream(ctx.hub, client), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/jobs", enqueue, methods=["POST"]),
        Route("/api/v1/jobs", list_jobs, methods=["GET"]),
        Route("/api/v1/batches", enqueue_batch, methods=["POST"]),
        Route("/api/v1/jobs/{id}", get_job, methods=["GET"]),
        Route("/api/v1/jobs/{id}/cancel", cancel_job, methods=["POST"]),
        Route("/api/v1/jobs/{id}/retry", retry_job, methods=["POST"]),
        Route("/api/v1/queues", queues, methods=["GET"]),
        # {name:path}: a queue name may hold "/" (eu-west/slow)
        Route("/api/v1/queues/{name:path}/pause", pause_queue, methods=["POST"]),
        Route("/api/v1/queues/{name:path}/resume", resume_queue, methods=["POST"]),
        Route("/api/v1/stats", stats, methods=["GET"]),
        Route("/api/v1/workers", workers, methods=["GET"]),
        Route("/api/v1/events", events, methods=["GET"]),
    ]
