"""What the overview page shows: counts, rates, percentiles and the charts over time."""

from __future__ import annotations

import asyncio
from typing import Any

from ..job import JobFilter, JobState
from . import analytics_pages, charts, throughput
from .auth import Principal
from .charts import Series
from .context import WebContext
from .history import Sample
from .serialize import queue_json

MAX_QUEUES_CHARTED = 8


async def gather(ctx: WebContext, principal: Principal) -> dict[str, Any]:
    """What the page shows: the store's figures from a copy at most CONVEYOR_DASHBOARD_SNAPSHOT
    seconds old, shared by every viewer of the same scope (snapshot.py); its age is shown."""
    scope = principal.scope
    read, age = await ctx.overview.get(scope, lambda: read_store(ctx, principal))
    samples = ctx.history.samples(scope)
    return {**read, "charts": [*read["charts"], *build_charts(samples, ctx.history.every)],
            "title": "Overview", "sample_every": ctx.history.every, "snapshot_age": age,
            "snapshot_max": ctx.overview.max_age}


async def read_store(ctx: WebContext, principal: Principal) -> dict[str, Any]:
    scope = principal.scope
    # the page's store reads at once: on PostgreSQL each runs on its own pooled connection,
    # so the page waits for the slowest read, not for their sum (SQLite runs them inline,
    # one after another, as before)
    stats, queues, dead, workers, stored, hour = await asyncio.gather(
        ctx.call(ctx.conveyor.stats, tenant=scope),
        ctx.call(ctx.conveyor.queues, tenant=scope),
        ctx.call(ctx.conveyor.list_jobs, JobFilter(states=(JobState.DEAD,), tenant=scope),
                 limit=5, redacted=True),
        ctx.call(ctx.conveyor.workers) if principal.scope is None else _none(),
        analytics_pages.stored_chart(ctx, principal, "24h"),
        throughput.last_hour(ctx, principal))
    return {"stats": stats, "queues": [queue_json(q) for q in queues], "recent_dead": dead,
            "workers": workers, "charts": [throughput.throughput_chart(*hour), stored]}


async def _none() -> None:
    return None


def build_charts(samples: list[Sample], every: float) -> list[Any]:
    now = samples[-1].at if samples else None
    # show what there is: from the first sample (at least a minute) up to the full history
    span = max(60.0, min(every * 180, samples[-1].at - samples[0].at)) if samples else 60.0
    queues = _busiest(samples)
    waiting = "No queues yet." if samples else ""
    finished = "No jobs finished since the server started." if samples else ""
    durations = "No jobs completed in the last hour." if samples else ""
    return [
        charts.line_chart("Backlog by queue (queued + scheduled)", [
            charts.queue_series(q, [(s.at, float(s.backlog.get(q, 0))) for s in samples])
            for q in queues],
            unit=charts.count, now=now, span=span, least_top=4, empty=waiting),
        charts.line_chart("Running by queue", [
            charts.queue_series(q, [(s.at, float(s.running.get(q, 0))) for s in samples])
            for q in queues],
            unit=charts.count, now=now, span=span, least_top=4, empty=waiting),
        charts.line_chart("Rates since this server started (per minute)", [
            Series("completed", [(s.at, s.throughput) for s in samples]),
            Series("enqueued", [(s.at, s.enqueue_rate) for s in samples])],
            unit=charts.count, now=now, span=span, least_top=4),
        charts.line_chart("Failure rate (failed attempts / finished)", [
            Series("failure rate", [(s.at, s.failure_rate) for s in samples])],
            unit=charts.percent, now=now, span=span, empty=finished),
        charts.line_chart("Duration percentiles (last hour)", [
            Series("p50", [(s.at, s.p50) for s in samples]),
            Series("p95", [(s.at, s.p95) for s in samples])],
            unit=charts.seconds, now=now, span=span, empty=durations),
        charts.line_chart("Dead letters (stored)", [
            Series("dead", [(s.at, float(s.dead)) for s in samples])],
            unit=charts.count, now=now, span=span, least_top=4),
    ]


def _busiest(samples: list[Sample]) -> list[str]:
    totals: dict[str, int] = {}
    for s in samples:
        for name, n in s.backlog.items():
            totals[name] = totals.get(name, 0) + n + s.running.get(name, 0)
    return sorted(totals, key=lambda q: (-totals[q], q))[:MAX_QUEUES_CHARTED]
