"""The dashboard pages: server-rendered, live through the event stream. Thin like the API:
each page asks the app for what it shows, scoped to the signed-in tenant."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .. import lookup
from ..errors import ConveyorError, JobNotFound
from ..job import Job
from ..search import Search
from . import (
    actions,
    analytics_pages,
    bulk,
    dead_view,
    overview,
    queues_view,
    search_view,
)
from .auth import Principal
from .bodies import jobs_in_pieces
from .context import WebContext
from .inputs import cursor_of, job_filter, trail_of
from .problems import ApiError, from_conveyor
from .search_api import search_of
from .serialize import worker_json
from .views import fragment, redirect, render, render_off_loop

PAGE = 50


def ctx_of(request: Request) -> WebContext:
    return request.app.state.web


async def signed_in(request: Request) -> Principal | None:
    return await ctx_of(request).auth.principal(request)


def to_login(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(f"/login?next={target}" if target != "/" else "/login")


async def home(request: Request) -> Response:
    principal = await signed_in(request)
    if principal is None:
        return to_login(request)
    data = await overview.gather(ctx_of(request), principal)
    return render(request, "overview.html", principal, **data)


async def jobs_page(request: Request) -> Response:
    principal = await signed_in(request)
    if principal is None:
        return to_login(request)
    ctx = ctx_of(request)
    params = dict(request.query_params)
    if states := request.query_params.getlist("state"):  # checkboxes: state=a&state=b
        params["state"] = ",".join(states)
    wanted = (params.get("id") or "").strip()
    if wanted:  # a whole id, or any unique start or end of one (lookup.py)
        try:
            job_id = await ctx.call(lookup.resolve_sync, ctx.conveyor, wanted, principal.scope)
        except lookup.AmbiguousId as exc:
            many = f"{len(exc.candidates)}{'+' if len(exc.candidates) >= lookup.SHOWN else ''}"
            return redirect("/jobs", f"{many} jobs have ids that start or end with "
                                     f"{wanted[:40]}: give more of it.")
        except JobNotFound:
            return redirect("/jobs", f"No job id starts or ends with {wanted[:40]}.")
        return redirect(f"/jobs/{quote(job_id, safe='')}")
    where = job_filter(request.query_params, principal)
    cursor = cursor_of(request.query_params)
    trail = trail_of(request.query_params)  # the cursors of the newer pages, for "← Newer"
    can_discard = hasattr(ctx.conveyor, "discard")
    common = {"bulk_actions": bulk.fitting_actions(where, can_discard=can_discard),
              "verbs": bulk.VERBS, "trail": trail, "params": params, "title": "Jobs"}
    search = searched(request.query_params)
    if isinstance(search, ApiError) or not search.empty:
        return await search_view.search_page(request, ctx, principal, where, search, cursor,
                                             common)
    matching = await ctx.call(ctx.conveyor.call, lambda store: store.count_jobs(
        where, bulk.COUNT_CAP))
    found = await jobs_in_pieces(ctx.conveyor.list_jobs, where, cursor, PAGE + 1)
    return await render_off_loop(
        request, "jobs.html", principal, jobs=found[:PAGE], where=where,
        matching=matching, matching_label=bulk.count_label(matching),
        filter_fields=bulk.filter_fields(where), cursor=cursor, next_cursor=found[PAGE - 1].id
        if len(found) > PAGE else None, **common)


def searched(params: Any) -> Search | ApiError:
    """The page's search, or the 400 that refuses it (shown on the page, not as an error
    page: the form stays, with what was typed)."""
    try:
        return search_of(params)
    except ApiError as exc:
        return exc


async def dead_page(request: Request) -> Response:
    principal = await signed_in(request)
    if principal is None:
        return to_login(request)
    queue = request.query_params.get("queue") or None
    cursor = cursor_of(request.query_params)
    data = await dead_view.gather(ctx_of(request), principal, queue, cursor)
    return await render_off_loop(request, "dead.html", principal, **data, cursor=cursor,
                                 params=dict(request.query_params), title="Dead letters")


async def job_page(request: Request) -> Response:
    principal = await signed_in(request)
    if principal is None:
        return to_login(request)
    job = await _job(request, principal)
    held = await ctx_of(request).call(ctx_of(request).conveyor.limits.holding, job)
    return render(request, "job.html", principal, job=job, title=f"Job {job.id}", held=held)


async def job_row(request: Request) -> Response:
    """One row of a jobs table, for the live updates of the list pages."""
    principal = await signed_in(request)
    if principal is None:
        raise ApiError(401, "unauthorized", "sign in again")
    job = await _job(request, principal)
    templates = request.app.state.templates
    macro = templates.env.get_template("_rows.html").module.job_row
    selectable = request.query_params.get("select") == "1"
    when = "finished" if request.query_params.get("when") == "finished" else "created"
    return fragment(str(macro(job, selectable=selectable, now=time.time(), when=when)))


async def _job(request: Request, principal: Principal) -> Job:
    ctx = ctx_of(request)
    try:
        return await ctx.call(ctx.conveyor.get, request.path_params["id"],
                              tenant=principal.scope, redacted=True)
    except ConveyorError as exc:
        raise from_conveyor(exc) from None


async def queues_page(request: Request) -> Response:
    principal = await signed_in(request)
    if principal is None:
        return to_login(request)
    data = await queues_view.gather(ctx_of(request), principal)
    return render(request, "queues.html", principal, **data)


async def workers_page(request: Request) -> Response:
    principal = await signed_in(request)
    if principal is None:
        return to_login(request)
    ctx = ctx_of(request)
    found = await ctx.call(ctx.conveyor.workers) if principal.scope is None else []
    lease = ctx.conveyor.settings.lease
    figures = await analytics_pages.worker_figures(ctx, principal)
    return render(request, "workers.html", principal, workers=[worker_json(w) for w in found],
                  lease=lease, figures=figures, title="Workers")


async def error_page(request: Request, error: ApiError) -> Response:
    try:
        principal = await signed_in(request)
    except ConveyorError:  # the store is down: the page says so, to no one in particular
        principal = None
    if principal is None:
        if error.status in (401, 403, 404):
            return to_login(request)
        principal = Principal(role="tenant", tenant="?")
    return render(request, "error.html", principal, error=error, status=error.status,
                  title=f"Error {error.status}")


def routes() -> list[BaseRoute]:
    return [
        Route("/", home), Route("/jobs", jobs_page), Route("/jobs/{id}", job_page),
        Route("/jobs/{id}/row", job_row), Route("/dead", dead_page),
        Route("/queues", queues_page), Route("/workers", workers_page),
        *actions.routes(), *analytics_pages.routes(),
    ]
