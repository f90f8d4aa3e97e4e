"""The SQLite store's job counters (migration 0011): exact counts by queue, task, tenant and
state, kept by row triggers in each writing transaction, read without counting
conveyor_jobs. A part of SQLiteStore (store.py), kept apart for size.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Protocol

import orjson

from ...job import JobFilter
from ..base import JobCount
from ..counting import counted_states, filter_countable
from ..counting import job_counts as counts_of
from .connection import Connections

_TENANT = "(:tenant IS NULL OR tenant = :tenant)"

# All tenants' counts from their own totals (a few rows per queue and task); one tenant's
# from its key range; and every tenant's apart (job_counts(), for checks).
KEPT_ALL = "SELECT queue, task, NULL, state, n FROM conveyor_counts WHERE n <> 0"
KEPT_TENANT = """
SELECT queue, task, tenant, state, n FROM conveyor_tenant_counts
WHERE tenant = :tenant AND n <> 0"""
KEPT_EACH_TENANT = "SELECT queue, task, tenant, state, n FROM conveyor_tenant_counts WHERE n <> 0"

# the same, for the keys a job filter names (count_jobs)
_MATCHING = """(:queue IS NULL OR queue = :queue) AND (:task IS NULL OR task = :task)
  AND state IN (SELECT value FROM json_each(:states))"""
KEPT_MATCHING_ALL = "SELECT coalesce(sum(n), 0) FROM conveyor_counts WHERE " + _MATCHING
KEPT_MATCHING_TENANT = ("SELECT coalesce(sum(n), 0) FROM conveyor_tenant_counts "
                        "WHERE tenant = :tenant AND " + _MATCHING)

# the real count, by scanning the jobs: what the kept counts must always equal (tests; repair)
RECOUNT = """
SELECT queue, task, tenant,
       CASE WHEN state = 'scheduled' AND attempt > 0 THEN 'retrying' ELSE state END, count(*)
FROM conveyor_jobs WHERE """ + _TENANT + """
GROUP BY 1, 2, 3, 4"""

DROP_ZEROS = "DELETE FROM conveyor_counts WHERE n = 0"
DROP_TENANT_ZEROS = "DELETE FROM conveyor_tenant_counts WHERE n = 0"

# The oldest queued job of one queue: the minimum of each priority's first run_at, found by
# skipping from priority to priority through the claim index (a few index probes per queue,
# whatever its backlog).
OLDEST_QUEUED = """
WITH RECURSIVE level(priority) AS (
    SELECT (SELECT priority FROM conveyor_jobs INDEXED BY conveyor_jobs_claim
            WHERE queue = :queue AND state = 'queued' AND """ + _TENANT + """
            ORDER BY priority DESC LIMIT 1)
    UNION ALL
    SELECT (SELECT priority FROM conveyor_jobs INDEXED BY conveyor_jobs_claim
            WHERE queue = :queue AND state = 'queued' AND priority < level.priority
              AND """ + _TENANT + """
            ORDER BY priority DESC LIMIT 1)
    FROM level WHERE level.priority IS NOT NULL)
SELECT min((SELECT run_at FROM conveyor_jobs INDEXED BY conveyor_jobs_claim
            WHERE queue = :queue AND state = 'queued' AND priority = level.priority
              AND """ + _TENANT + """
            ORDER BY priority DESC, run_at LIMIT 1))
FROM level WHERE level.priority IS NOT NULL"""

Rows = list[tuple[Any, ...]]


class Database(Protocol):
    db: Connections


class Counters:
    async def job_counts(self: Database, tenant: str | None = None) -> list[JobCount]:
        """The kept counts (of `tenant`, else of every tenant apart), one per key with jobs."""
        with self.db.read() as conn:
            return counts_of(conn.execute(KEPT_EACH_TENANT if tenant is None else KEPT_TENANT,
                                          {"tenant": tenant}).fetchall())

    async def recount_jobs(self: Database, tenant: str | None = None) -> list[JobCount]:
        """The same, counted from the jobs themselves (a scan: for checks, not for pages)."""
        with self.db.read() as conn:
            return counts_of(conn.execute(RECOUNT, {"tenant": tenant}).fetchall())

    async def fold_counts(self: Database) -> int:
        """Drop the keys at zero (the triggers keep the counts themselves up to date)."""
        with self.db.write() as conn:
            dropped = conn.execute(DROP_ZEROS).rowcount
            return max(dropped + conn.execute(DROP_TENANT_ZEROS).rowcount, 0)

    def _kept_count(self, conn: sqlite3.Connection, where: JobFilter) -> int | None:
        """count_jobs from the counters, when the filter names only counted keys."""
        if not filter_countable(where):
            return None
        template = KEPT_MATCHING_ALL if where.tenant is None else KEPT_MATCHING_TENANT
        row = conn.execute(template, {
            "tenant": where.tenant, "queue": where.queue, "task": where.task,
            "states": orjson.dumps(counted_states(where)).decode()}).fetchone()
        return int(row[0])

    def _kept_rows(self, conn: sqlite3.Connection, tenant: str | None) -> Rows:
        return conn.execute(KEPT_ALL if tenant is None else KEPT_TENANT,
                            {"tenant": tenant}).fetchall()

    def _oldest_queued(self, conn: sqlite3.Connection, queues: Sequence[str],
                       tenant: str | None) -> dict[str, float]:
        oldest = {}
        for queue in queues:
            (first,) = conn.execute(OLDEST_QUEUED, {"queue": queue, "tenant": tenant}).fetchone()
            if first is not None:
                oldest[queue] = float(first)
        return oldest

