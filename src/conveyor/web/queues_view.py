"""What the queues page shows: the store's figures from a copy at most
CONVEYOR_DASHBOARD_SNAPSHOT seconds old, one per scope (a tenant's own, or all tenants'),
shared by every viewer of that scope (snapshot.py) and dropped by every change made through
this server (fresh.py); the backlog trends from this server's own samples, per request."""

from __future__ import annotations

import asyncio
from typing import Any

from . import charts, queue_limits, throughput
from .auth import Principal
from .consumers import consumers_of, starving
from .context import WebContext
from .serialize import queue_json

TREND_SAMPLES = 120


async def gather(ctx: WebContext, principal: Principal) -> dict[str, Any]:
    read, age = await ctx.queues_page.get(principal.scope, lambda: read_store(ctx, principal))
    samples = ctx.history.samples(principal.scope)[-TREND_SAMPLES:]
    trends = {name: charts.sparkline(f"backlog of {name}",
                                     [float(s.backlog.get(name, 0)) for s in samples])
              for name in read["names"]}
    return {**read, "trends": trends, "snapshot_age": age,
            "snapshot_max": ctx.queues_page.max_age, "title": "Queues"}


async def read_store(ctx: WebContext, principal: Principal) -> dict[str, Any]:
    """The page's reads at once (on PostgreSQL each on its own pooled connection), and what
    is worked out from them alone: the rows, consumers, starving queues, minute sparklines."""
    found, workers, (found_hour, hour, first), limits = await asyncio.gather(
        ctx.call(ctx.conveyor.queues, tenant=principal.scope), ctx.call(ctx.conveyor.workers),
        throughput.last_hour(ctx, principal), queue_limits.limits_view(ctx))
    names = [q.name for q in found]
    shown = [queue_json(q) for q in found]
    takers = consumers_of(names, workers, ctx.conveyor.settings.lease)
    return {"names": names, "queues": shown, "consumers": takers,
            "starving": starving(shown, takers), "limits": limits,
            "minutes": throughput.queue_sparklines(found_hour, names, hour, first)}
