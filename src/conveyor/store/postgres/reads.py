"""The PostgreSQL store's reads: jobs, lists, stats and queues for the API and dashboard,
and the scans of key rotation. A part of PostgresStore (store.py), kept apart for
size; its methods run on the store's sessions.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import psycopg

from ...job import Job, JobFilter, QueueInfo, WorkerInfo
from ...lookup import after_prefix
from ..base import Sealable, Stats
from ..counting import (
    CLAIMED_FRESH,
    claimed_ahead,
    completed_last_minute,
    dead_queues,
    queue_rows,
    stats_rows,
)
from ..filters import where_clause
from ..summaries import build_queue_infos, build_stats
from . import queries as q
from .counters import (
    FINISHED_ALL,
    FINISHED_TENANT,
    KEPT_ALL,
    KEPT_TENANT,
    NO_JIT,
    OLDEST_QUEUED_ALL,
    OLDEST_QUEUED_TENANT,
    OUTCOMES_ALL,
    OUTCOMES_TENANT,
    Counters,
)
from .rows import job_from_row, worker_from_row

Rows = list[tuple[Any, ...]]


class Sessions(Protocol):
    """What the reads need of the store (PostgresStore's own session helpers)."""

    def _session(self, tenant: str | None = None, atomic: bool = False
                 ) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]: ...

    async def _fetch(self, conn: psycopg.AsyncConnection[Any], template: str,
                     params: dict[str, Any] | None = None) -> Rows: ...

    async def _count(self, template: str, params: dict[str, Any]) -> int: ...

    async def _one(self, template: str, params: dict[str, Any] | None = None,
                   tenant: str | None = None) -> Rows: ...

    # the counters (counters.py)
    async def _kept_count(self, where: JobFilter) -> int | None: ...

    async def _kept_rows(self, conn: psycopg.AsyncConnection[Any], tenant: str | None
                         ) -> Rows: ...

    def statement(self, template: str) -> str: ...


class Reads(Counters):
    # --- reading --------------------------------------------------------------------------

    async def get(self: Sessions, job_id: str, tenant: str | None = None) -> Job | None:
        rows = await self._one(q.GET_JOB, {"id": job_id, "tenant": tenant}, tenant)
        return job_from_row(rows[0]) if rows else None

    async def find_ids(self: Sessions, fragment: str, tenant: str | None = None,
                       limit: int = 5) -> list[str]:
        """Ids that start with `fragment`, then ids that end with it (lookup.py)."""
        prefix, suffix = fragment.rstrip("-"), fragment.lstrip("-")
        found = [r[0] for r in await self._one(q.FIND_BY_PREFIX, {
            "low": prefix, "high": after_prefix(prefix), "fragment": prefix, "tenant": tenant,
            "limit": limit}, tenant)]
        found += [r[0] for r in await self._one(q.FIND_BY_SUFFIX, {
            "reversed": suffix[::-1] + "%", "tenant": tenant, "limit": limit}, tenant)]
        return list(dict.fromkeys(found))[:limit]

    async def dead_letters(self: Sessions, queue: str | None = None, tenant: str | None = None,
                           after: str | None = None, limit: int = 50, *,
                           budget: int | None = None) -> list[Job]:
        """Dead jobs, the latest to die first; `after`: the last id of the previous page."""
        template = q.DEAD_LETTERS if budget is None else q.DEAD_LETTERS_BUDGETED
        rows = await self._one(template, {"queue": queue, "tenant": tenant, "after": after,
                                          "limit": limit, "budget": budget}, tenant)
        return [job_from_row(r) for r in rows]

    async def dead_queues(self: Sessions, tenant: str | None = None) -> list[str]:
        """From the kept counts (counters.py): no look at the jobs."""
        async with self._session(tenant, atomic=True) as conn:
            return dead_queues(await self._kept_rows(conn, tenant))

    async def list_jobs(self: Sessions, where: JobFilter, after: str | None = None,
                        limit: int = 50, *, bodies: bool = True,
                        budget: int | None = None) -> list[Job]:
        where_sql, params = _where(where, after, limit)
        select = q.LIST_SELECT if bodies else q.LIST_SELECT_LIGHT
        statement = f"{select}{where_sql} {q.LIST_ORDER}"
        if bodies and budget is not None:  # one read, cut at the budget (store/budget.py)
            statement = q.LIST_BUDGETED.replace("{where}", where_sql)
            params["budget"] = budget
        # the counters know a filter that matches nothing: no walk of every id for it (asked
        # once, on the first page: a page after it has a job that matched)
        if after is None and await self._kept_count(where) == 0:
            return []
        rows = await self._one(statement, params, where.tenant)
        return [job_from_row(r) for r in rows]

    async def count_jobs(self: Sessions, where: JobFilter, cap: int = 10_000) -> int:
        kept = await self._kept_count(where)
        if kept is not None:  # capped as the scan below is: the same answer, without it
            return min(kept, cap)
        where_sql, params = _where(where, None, cap)
        rows = await self._one(q.COUNT_UP_TO.replace("{where}", where_sql), params,
                               where.tenant)
        return int(rows[0][0])

    async def stats(self: Sessions, tenant: str | None = None, now: float | None = None) -> Stats:
        params = {"tenant": tenant, "now": now}
        # one round trip: every statement goes out in the pipeline before any row is read
        async with self._session(tenant, atomic=True) as conn:
            sent = [await _send(self, conn, KEPT_ALL if tenant is None else KEPT_TENANT, params),
                    await _send(self, conn, q.DURATION_PERCENTILES, params),
                    await _send(self, conn, q.CLOCK, params),
                    # the hour's outcomes summed in the database; the last minute's rows
                    # (two minutes' worth) for completed_last_minute
                    await _send(self, conn, OUTCOMES_ALL if tenant is None else OUTCOMES_TENANT,
                                {**params, "window": 3600}),
                    await _send(self, conn, FINISHED_ALL if tenant is None else FINISHED_TENANT,
                                {**params, "window": 60}),
                    await _send_claimed(self, conn, tenant, now)]
        kept, [(p50, p95, p99)], [(clock,)], [hour], minutes, claimed = [
            await _rows(c) for c in sent]
        return build_stats(stats_rows(kept), {"p50": p50, "p95": p95, "p99": p99}, hour,
                           sum(completed_last_minute(minutes, clock).values()),
                           _claimed_of(tenant, claimed))

    async def queues(self: Sessions, tenant: str | None = None,
                     now: float | None = None) -> list[QueueInfo]:
        params = {"tenant": tenant, "now": now}
        # one round trip: the oldest queued job's lookup finds its queues from the kept
        # counts itself (counters.OLDEST_QUEUED_ALL), so nothing waits for the counts' rows
        async with self._session(tenant, atomic=True) as conn:
            sent = [await _send(self, conn, NO_JIT, {}),  # counters.NO_JIT: for the lookup
                    await _send(self, conn, KEPT_ALL if tenant is None else KEPT_TENANT,
                                params),
                    await _send(self, conn, OLDEST_QUEUED_ALL if tenant is None
                                else OLDEST_QUEUED_TENANT, params),
                    await _send(self, conn, q.QUEUE_FLAGS, params),
                    await _send(self, conn, q.CLOCK, params),
                    await _send(self, conn, FINISHED_ALL if tenant is None else FINISHED_TENANT,
                                {**params, "window": 60}),
                    await _send_claimed(self, conn, tenant, now)]
        _, kept, oldest, flags, [(clock,)], finished, claimed = [await _rows(c) for c in sent]
        return build_queue_infos(
            queue_rows(kept, {name: float(first) for name, first in oldest if first is not None}),
            completed_last_minute(finished, clock), {r[0]: r[1] for r in flags}, clock,
            _claimed_of(tenant, claimed))

    async def workers(self: Sessions, now: float | None = None) -> list[WorkerInfo]:
        return [worker_from_row(r) for r in await self._one(q.WORKERS)]

    # --- key rotation ---------------------------------------------------------------------

    async def scan_sealable(self: Sessions, after: str | None, limit: int) -> list[Sealable]:
        """Every job's payload, result and errors in id order, a page at a time."""
        rows = await self._one(q.SCAN_SEALABLE, {"after": after or "", "limit": limit})
        return [Sealable(r[0], r[1] or None, bytes(r[2]), None if r[3] is None else bytes(r[3]),
                         r[4]) for r in rows]

    async def replace_sealable(self: Sessions,
                               swaps: Sequence[tuple[Sealable, Sealable]]) -> int:
        """Write each (old, new), every field compare-and-set; how many jobs took all."""
        if not swaps:
            return 0
        rows = await self._one(q.REPLACE_SEALABLE, {
            "ids": [old.id for old, _ in swaps],
            "old_payloads": [old.payload for old, _ in swaps],
            "new_payloads": [new.payload for _, new in swaps],
            "old_results": [old.result for old, _ in swaps],
            "new_results": [new.result for _, new in swaps],
            "old_errors": [old.errors for old, _ in swaps],
            "new_errors": [new.errors for _, new in swaps]})
        return sum(1 for (taken,) in rows if taken)


async def _send(store: Sessions, conn: psycopg.AsyncConnection[Any], template: str,
                params: dict[str, Any]) -> psycopg.AsyncCursor[Any]:
    """Queue a statement in the session's pipeline; its rows are read after the trip."""
    return await conn.execute(store.statement(template), params)


async def _send_claimed(store: Sessions, conn: psycopg.AsyncConnection[Any],
                        tenant: str | None, now: float | None
                        ) -> psycopg.AsyncCursor[Any] | None:
    """Live workers' claimed-ahead jobs by queue; none for a tenant's view (workers count
    them by queue, not by tenant)."""
    if tenant is not None:
        return None
    return await _send(store, conn, q.CLAIMED_AHEAD, {"now": now, "fresh": CLAIMED_FRESH})


async def _rows(cursor: psycopg.AsyncCursor[Any] | None) -> Rows:
    return [] if cursor is None else await cursor.fetchall()


def _claimed_of(tenant: str | None, rows: Rows) -> dict[str, int]:
    return {} if tenant is not None else claimed_ahead(rows)


def _where(where: JobFilter, after: str | None, limit: int) -> tuple[str, dict[str, Any]]:
    """The WHERE clause of a list or count, and its parameters."""
    return where_clause(where, after, limit, q.LIST_CLAUSES, list)
