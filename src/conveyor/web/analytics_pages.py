"""The dashboard's analytics pages, read from the stored attempt history (so they survive
restarts and cover any range from an hour to 30 days): Tasks (a row per task with
sparklines of runs and failures), Errors (groups, with retry / discard of a group's dead
jobs) and the workers' figures shown on the Workers page. Scoped to the signed-in tenant."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..analytics import check_fingerprint
from ..errors import ConfigError
from ..history.records import TaskSummary, TimeRange, WorkerSummary
from . import charts
from .actions import _form_principal
from .auth import Principal
from .charts import Series
from .context import WebContext
from .problems import ApiError
from .views import local_path, redirect, render

RANGES = ("1h", "24h", "7d", "30d")


def ctx_of(request: Request) -> WebContext:
    return request.app.state.web


def range_of(request: Request) -> str:
    span = request.query_params.get("range") or "24h"
    return span if span in RANGES else "24h"


def window(ctx: WebContext, principal: Principal, span: str) -> TimeRange:
    return ctx.conveyor.analytics.window(span, tenant=principal.scope)


async def _principal(request: Request) -> Principal | None:
    return await ctx_of(request).auth.principal(request)


async def tasks_page(request: Request) -> Response:
    principal = await _principal(request)
    if principal is None:
        return redirect(f"/login?next={request.url.path}")
    ctx, span = ctx_of(request), range_of(request)
    found = await ctx.call(ctx.conveyor.analytics.tasks, window(ctx, principal, span), 30)
    rows: list[dict[str, Any]] = [{
        "summary": t, "runs": charts.sparkline(f"runs of {t.task}", [float(v) for v in t.series]),
        "failures": charts.sparkline(f"failures of {t.task}", [float(v) for v in t.failures]),
    } for t in found]
    chart = history_chart(found, window(ctx, principal, span), span)
    return render(request, "tasks.html", principal, rows=rows, span=span, ranges=RANGES,
                  chart=chart, title="Tasks")


def history_chart(found: list[TaskSummary], where: TimeRange, span: str) -> Any:
    """Attempts and failures per point over the range, every task summed: from the stored
    rollups, so it has the whole range after a restart."""
    length = max((len(t.series) for t in found), default=0)
    if not length:
        return charts.line_chart(f"Attempts, last {span} (stored)", [],
                                 empty=f"No attempts recorded in the last {span}.")
    step = (where.end - where.start) / length
    times = [where.start + (i + 1) * step for i in range(length)]
    runs = [sum(t.series[i] for t in found if i < len(t.series)) for i in range(length)]
    failed = [sum(t.failures[i] for t in found if i < len(t.failures)) for i in range(length)]
    return charts.line_chart(f"Attempts, last {span} (stored)", [
        Series("attempts", list(zip(times, map(float, runs), strict=True))),
        Series("failed", list(zip(times, map(float, failed), strict=True)))],
        unit=charts.count, now=where.end, span=where.end - where.start, least_top=4)


async def errors_page(request: Request) -> Response:
    principal = await _principal(request)
    if principal is None:
        return redirect(f"/login?next={request.url.path}")
    ctx, span = ctx_of(request), range_of(request)
    found = await ctx.call(ctx.conveyor.analytics.errors, window(ctx, principal, span), 100)
    return render(request, "errors.html", principal, groups=found, span=span, ranges=RANGES,
                  title="Errors")


async def group_action(request: Request) -> Response:
    """Retry or discard every dead job of one error group (a form on the Errors page)."""
    principal = await _form_principal(request)
    ctx = ctx_of(request)
    form = await request.form()
    action = str(form.get("action") or "")
    if action not in ("retry", "discard"):
        raise ApiError(400, "bad_action", "an error group's actions are retry and discard")
    try:
        fingerprint = check_fingerprint(request.path_params["fingerprint"])
    except ConfigError as exc:
        raise ApiError(400, "bad_fingerprint", str(exc)) from None
    analytics = ctx.conveyor.analytics
    method = analytics.retry_group if action == "retry" else analytics.discard_group
    count = await ctx.call(method, fingerprint, principal.scope)
    verb = "Retried" if action == "retry" else "Discarded"
    return redirect(local_path(form.get("next"), "/errors"),
                    f"{verb} {count} dead job{'s' if count != 1 else ''} of group "
                    f"{fingerprint}.")


async def stored_chart(ctx: WebContext, principal: Principal, span: str) -> Any:
    """The overview's chart of the last `span` from the rollups (it survives restarts)."""
    where = window(ctx, principal, span)
    found = await ctx.call(ctx.conveyor.analytics.queues, where, 30)
    return history_chart(found, where, span)


async def worker_figures(ctx: WebContext, principal: Principal,
                         span: str = "1h") -> list[WorkerSummary]:
    """The Workers page's figures over the last `span` (dashboard.workers_page)."""
    return await ctx.call(ctx.conveyor.analytics.workers, window(ctx, principal, span))


def routes() -> list[BaseRoute]:
    return [
        Route("/tasks", tasks_page), Route("/errors", errors_page),
        Route("/errors/{fingerprint}", group_action, methods=["POST"]),
    ]
