"""The SQLite store's reads: jobs, lists, stats and queues for the API and dashboard, and
the scans of key rotation. A part of SQLiteStore (store.py), kept apart for size;
its methods run on the store's connections.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Protocol

import orjson

from ...job import Job, JobFilter, QueueInfo, WorkerInfo
from ...lookup import after_prefix
from ..base import Sealable, Stats
from ..budget import within_budget
from ..counting import (
    CLAIMED_FRESH,
    claimed_ahead,
    completed_last_minute,
    dead_queues,
    first_minute,
    outcomes,
    queue_rows,
    queued_queues,
    stats_rows,
)
from ..summaries import build_queue_infos, build_stats, duration_percentiles
from . import queries as q
from .connection import Connections
from .counters import Counters
from .listing import keyed_applies, list_statement, list_where, planned_list
from .rows import job_from_row


class Database(Protocol):
    """What the reads need of the store: its connections and its clock."""

    db: Connections

    def _now(self, now: float | None) -> float: ...

    # the counters (counters.py)
    def _kept_count(self, conn: sqlite3.Connection, where: JobFilter) -> int | None: ...

    def _kept_rows(self, conn: sqlite3.Connection, tenant: str | None
                   ) -> list[tuple[Any, ...]]: ...

    def _oldest_queued(self, conn: sqlite3.Connection, queues: Sequence[str],
                       tenant: str | None) -> dict[str, float]: ...

    def _finished(self, conn: sqlite3.Connection, tenant: str | None,
                  since: int) -> list[tuple[Any, ...]]: ...


class Reads(Counters):
    # --- reading --------------------------------------------------------------------------

    async def get(self: Database, job_id: str, tenant: str | None = None) -> Job | None:
        with self.db.read() as conn:
            row = conn.execute(q.GET_JOB, {"id": job_id, "tenant": tenant}).fetchone()
        return None if row is None else job_from_row(row)

    async def find_ids(self: Database, fragment: str, tenant: str | None = None,
                       limit: int = 5) -> list[str]:
        """Ids that start with `fragment`, then ids that end with it (lookup.py)."""
        prefix, suffix = fragment.rstrip("-"), fragment.lstrip("-")[::-1]
        key = suffix[:q.ID_TAIL_WIDTH]  # the index's key: the id's last characters, reversed
        with self.db.read() as conn:
            found = [r[0] for r in conn.execute(q.FIND_BY_PREFIX, {
                "low": prefix, "high": after_prefix(prefix), "tenant": tenant,
                "limit": limit})]
            found += [r[0] for r in conn.execute(q.FIND_BY_SUFFIX, {
                "low": key, "high": after_prefix(key), "fragment": suffix[::-1],
                "tenant": tenant, "limit": limit})]
        return list(dict.fromkeys(found))[:limit]

    async def dead_letters(self: Database, queue: str | None = None, tenant: str | None = None,
                           after: str | None = None, limit: int = 50, *,
                           budget: int | None = None) -> list[Job]:
        """Dead jobs, the latest to die first; `after`: the last id of the previous page."""
        params = {"queue": queue, "tenant": tenant, "after": after, "limit": limit}
        with self.db.read() as conn:
            rows = within_budget(conn.execute(q.DEAD_LETTERS, params), budget, _body_bytes)
        return [job_from_row(r) for r in rows]

    async def dead_queues(self: Database, tenant: str | None = None) -> list[str]:
        """From the kept counts (counters.py): no look at the jobs."""
        with self.db.read() as conn:
            return dead_queues(self._kept_rows(conn, tenant))

    async def list_jobs(self: Database, where: JobFilter, after: str | None = None,
                        limit: int = 50, *, bodies: bool = True,
                        budget: int | None = None) -> list[Job]:
        with self.db.read() as conn:
            # the counters choose the plan (listing.py), and know a filter that matches
            # nothing: no walk of every id for it
            if keyed_applies(where):
                chosen = planned_list(conn, where, after, limit, bodies)
                if chosen is None:
                    return []
                sql, params = chosen
            elif after is None and self._kept_count(conn, where) == 0:
                return []  # (a page after the first has a job that matched)
            else:
                sql, params = list_statement(where, after, limit, bodies)
            # stepped row by row: the rows past the budget are never read
            rows = within_budget(conn.execute(sql, params), budget if bodies else None,
                                 _body_bytes)
        return [job_from_row(r) for r in rows]

    async def count_jobs(self: Database, where: JobFilter, cap: int = 10_000) -> int:
        where_sql, params = list_where(where, None, cap)
        with self.db.read() as conn:
            kept = self._kept_count(conn, where)
            if kept is not None:  # capped as the scan below is: the same answer, without it
                return min(kept, cap)
            row = conn.execute(q.COUNT_UP_TO.format(where=where_sql), params).fetchone()
        return int(row[0])

    async def stats(self: Database, tenant: str | None = None, now: float | None = None) -> Stats:
        now = self._now(now)
        with self.db.read() as conn:
            counts = stats_rows(self._kept_rows(conn, tenant))
            durations = [r[0] for r in conn.execute(
                q.DURATIONS, {"since": now - 3600, "tenant": tenant})]
            finished = self._finished(conn, tenant, first_minute(now, 3600))
            claimed = _claimed(conn, tenant, now)
        return build_stats(counts, duration_percentiles(durations), outcomes(finished),
                           sum(completed_last_minute(finished, now).values()), claimed)

    async def queues(self: Database, tenant: str | None = None,
                     now: float | None = None) -> list[QueueInfo]:
        now = self._now(now)
        with self.db.read() as conn:
            kept = self._kept_rows(conn, tenant)
            oldest = self._oldest_queued(conn, queued_queues(kept), tenant)
            throughput = completed_last_minute(
                self._finished(conn, tenant, first_minute(now, 60)), now)
            flags = dict(conn.execute(q.QUEUE_FLAGS).fetchall())
            claimed = _claimed(conn, tenant, now)
        return build_queue_infos(queue_rows(kept, oldest), throughput, flags, now, claimed)

    async def workers(self: Database, now: float | None = None) -> list[WorkerInfo]:
        with self.db.read() as conn:
            rows = conn.execute(q.WORKERS).fetchall()
        return [WorkerInfo(id=r[0], host=r[1], pid=r[2],
                           queues=tuple(filter(None, r[3].split(","))), concurrency=r[4],
                           started_at=r[5], heartbeat_at=r[6], running=r[7], claimed=r[8],
                           claimed_queues=orjson.loads(r[9] or "{}"))
                for r in rows]

    # --- key rotation ---------------------------------------------------------------------

    async def scan_sealable(self: Database, after: str | None, limit: int) -> list[Sealable]:
        """Every job's payload, result and errors in id order, a page at a time."""
        with self.db.read() as conn:
            rows = conn.execute(q.SCAN_SEALABLE, {"after": after or "", "limit": limit})
            return [Sealable(r[0], r[1] or None, bytes(r[2]),
                             None if r[3] is None else bytes(r[3]), r[4] or "[]") for r in rows]

    async def replace_sealable(self: Database,
                               swaps: Sequence[tuple[Sealable, Sealable]]) -> int:
        """Write each (old, new), every field compare-and-set; how many jobs took all."""
        with self.db.write() as conn:
            return sum(_all_taken(conn.execute(q.REPLACE_SEALABLE, {
                "id": old.id, "old_payload": old.payload, "new_payload": new.payload,
                "old_result": old.result, "new_result": new.result,
                "old_errors": old.errors, "new_errors": new.errors}).fetchone())
                for old, new in swaps)


def _claimed(conn: sqlite3.Connection, tenant: str | None, now: float) -> dict[str, int]:
    """Live workers' claimed-ahead jobs by queue; none for a tenant's view (workers count
    them by queue, not by tenant)."""
    if tenant is not None:
        return {}
    return claimed_ahead(conn.execute(q.CLAIMED_AHEAD, {"now": now, "fresh": CLAIMED_FRESH})
                         .fetchall())


def _body_bytes(row: tuple[Any, ...]) -> int:
    """A job row's stored bodies: payload, progress step, result and errors."""
    return sum(len(row[at]) for at in (3, 17, 18, 19) if row[at] is not None)


def _all_taken(row: tuple[Any, ...] | None) -> int:
    return 1 if row is not None and row[0] else 0
