"""What the dead page shows: the latest to die first, and the queues that hold dead jobs,
from a copy at most CONVEYOR_DASHBOARD_SNAPSHOT seconds old per scope, queue filter and page
(snapshot.py), shared by every viewer of them and dropped by every change made through this
server (a retry, a discard: fresh.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from ..job import Job, JobFilter, JobState
from .auth import Principal
from .bodies import jobs_in_pieces
from .context import WebContext

PAGE = 50


async def gather(ctx: WebContext, principal: Principal, queue: str | None,
                 cursor: str | None) -> dict[str, Any]:
    if cursor is not None:  # later pages are read as asked: only first pages are shared (a
        # viewer walking cursors must not fill the server's memory with copies)
        return {**await read_store(ctx, principal, queue, cursor), "snapshot_age": 0.0,
                "snapshot_max": 0.0}
    key = (principal.scope, queue, cursor)
    read, age = await ctx.dead_page.get(key, lambda: read_store(ctx, principal, queue, cursor))
    return {**read, "snapshot_age": age, "snapshot_max": ctx.dead_page.max_age}


async def read_store(ctx: WebContext, principal: Principal, queue: str | None,
                     cursor: str | None) -> dict[str, Any]:
    conveyor = ctx.conveyor
    where = JobFilter(states=(JobState.DEAD,), queue=queue, tenant=principal.scope)

    def dead_letters(where: JobFilter, *, after: str | None, limit: int,
                     redacted: bool, budget: int | None = None) -> list[Job]:
        jobs = conveyor.call(lambda store: store.dead_letters(queue, principal.scope, after,
                                                              limit, budget=budget))
        return [conveyor.decode(job, redacted=redacted) for job in jobs]

    # the latest to die first, from an index of dead rows only (migration 0009), read off the
    # loop, a byte budget of bodies per read (bodies.py); beside it (on PostgreSQL on a pooled
    # connection of its own), the queues that hold dead jobs from the kept counts (0011)
    found, queues = await asyncio.gather(
        jobs_in_pieces(dead_letters, where, cursor, PAGE + 1),
        ctx.call(conveyor.call, lambda store: store.dead_queues(principal.scope)))
    return {"jobs": found[:PAGE], "where": where, "queues": queues,
            "next_cursor": found[PAGE - 1].id if len(found) > PAGE else None}
