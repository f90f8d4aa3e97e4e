"""Throughput in per-minute buckets, read from the stored minute rollups (conveyor_rollups,
width 60: written with each settle when the attempt history is on), so the charts have the
whole last hour after a restart, not only what this server saw since it started. One store
read per page: every queue's attempts per minute of the hour (store.queue_analytics), summed
here over the queues for the overview."""

from __future__ import annotations

import math
from typing import Any

from markupsafe import Markup

from ..history.records import TaskSummary, TimeRange
from . import charts
from .auth import Principal
from .charts import Series
from .context import WebContext

HOUR = 3600.0


async def last_hour(ctx: WebContext, principal: Principal) -> tuple[list[TaskSummary],
                                                                     TimeRange, int]:
    """The hour's rollups, one point per minute: (summaries, range, first minute). The
    read reaches a minute past now (analytics.window: workers' clocks may run ahead); the
    range returned, and the charts, stop at now."""
    where = ctx.conveyor.analytics.window(HOUR, tenant=principal.scope)
    first = int(where.start // 60)
    minutes = max(1, math.ceil(where.end / 60) - first)
    found = await ctx.call(ctx.conveyor.analytics.queues, where, minutes)
    now = ctx.conveyor.clock.now()
    return found, TimeRange(where.start, now, tenant=where.tenant), first


def per_minute(found: list[TaskSummary], queue: str | None = None, length: int | None = None
               ) -> tuple[list[float], list[float]]:
    """Attempts ended and failed in each of the first `length` minutes (of one queue, or of
    all): one pass over the summaries (each adds its minutes to the sums)."""
    chosen = [t for t in found if queue is None or t.queue == queue]
    if length is None:
        length = max((len(t.series) for t in chosen), default=0)
    ended, failed = [0] * length, [0] * length
    for summary in chosen:
        _add(ended, summary.series)
        _add(failed, summary.failures)
    return [float(n) for n in ended], [float(n) for n in failed]


def per_queue(found: list[TaskSummary], length: int) -> dict[str, list[float]]:
    """Per queue: attempts ended in each of the first `length` minutes, every queue's sums
    made in one pass over the summaries (not one pass per queue)."""
    sums: dict[str, list[int]] = {}
    for summary in found:
        into = sums.get(summary.queue)
        if into is None:
            into = sums[summary.queue] = [0] * length
        _add(into, summary.series)
    return {name: [float(n) for n in ended] for name, ended in sums.items()}


def _add(into: list[int], values: tuple[int, ...]) -> None:
    for i, n in enumerate(values[:len(into)]):
        into[i] += n


def throughput_chart(found: list[TaskSummary], where: TimeRange, first: int) -> Markup:
    """The overview's chart: attempts that ended per minute, and failed ones, last hour."""
    title = "Throughput per minute, last hour (stored)"
    # up to the minute now is in (drawn at now: it is still filling), none after it
    ended, failed = per_minute(found, length=max(1, int(where.end // 60) - first + 1))
    if not any(ended):
        return charts.line_chart(title, [], empty="No attempts recorded in the last hour "
                                                  "(the attempt history keeps them).")
    times = [min((first + i + 1) * 60.0, where.end) for i in range(len(ended))]
    return charts.line_chart(title, [
        Series("finished", list(zip(times, ended, strict=True))),
        Series("failed", list(zip(times, failed, strict=True)))],
        unit=charts.count, now=where.end, span=where.end - where.start, least_top=4)


def queue_sparklines(found: list[TaskSummary], queues: list[str], where: TimeRange,
                     first: int) -> dict[str, Any]:
    """Per queue: a sparkline of its attempts per minute over the last hour, up to now."""
    length = max(2, int(where.end // 60) - first + 1)
    sums = per_queue(found, length)
    idle = [0.0] * length
    return {name: charts.sparkline(f"attempts per minute in {name}", sums.get(name, idle),
                                   cut=True)
            for name in queues}
