"""The SQLite store's job counters (migration 0011): exact counts by queue, task, tenant and
state, kept by row triggers in each writing transaction, read without counting
conveyor_jobs. A part of SQLiteStore (store.py), kept apart for size.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

import orjson

from ...job import EnqueueResult, JobFilter, NewJob
from ..base import JobCount
from ..counting import KEEP_MINUTES, counted_states, filter_countable, first_minute
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

# jobs finished per minute, from `since` (a minute bucket) on
FINISHED_ALL = """
SELECT queue, minute, state, retried, n FROM conveyor_finished WHERE minute >= :since"""
FINISHED_TENANT = """
SELECT queue, minute, state, retried, n FROM conveyor_tenant_finished
WHERE tenant = :tenant AND minute >= :since"""
DROP_FINISHED = "DELETE FROM conveyor_finished WHERE minute < :before"
DROP_TENANT_FINISHED = "DELETE FROM conveyor_tenant_finished WHERE minute < :before"

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

# the jobs an enqueue inserted, per key (their state is queued or scheduled, never retrying)
COUNT_INSERTED = """
INSERT INTO conveyor_counts (queue, task, state, n) VALUES (?, ?, ?, ?)
ON CONFLICT (queue, task, state) DO UPDATE SET n = n + excluded.n"""
COUNT_TENANT_INSERTED = """
INSERT INTO conveyor_tenant_counts (tenant, queue, task, state, n) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (tenant, queue, task, state) DO UPDATE SET n = n + excluded.n"""

Rows = list[tuple[Any, ...]]


def count_inserted(conn: sqlite3.Connection, jobs: Sequence[NewJob],
                   results: Sequence[EnqueueResult]) -> None:
    """Count the jobs an enqueue stored (not its duplicates), in its transaction: one upsert
    per key and batch. (The one path that inserts jobs; a row trigger per job cost a bulk
    enqueue of 1,000 about 15 µs a job, half its time: bench/counters_cost.py.)"""
    if len(jobs) == 1:  # a single enqueue, the common call: no Counter, no empty batch
        job, result = jobs[0], results[0]
        if not result.duplicate:
            state = str(result.state)
            if job.tenant:
                conn.execute(COUNT_TENANT_INSERTED, (job.tenant, job.queue, job.task, state, 1))
            conn.execute(COUNT_INSERTED, (job.queue, job.task, state, 1))
        return
    counted = Counter((job.tenant or "", job.queue, job.task, str(result.state))
                      for job, result in zip(jobs, results, strict=True)
                      if not result.duplicate)
    tenanted = [(*key, n) for key, n in counted.items() if key[0]]  # tenanted only (0011)
    if tenanted:
        conn.executemany(COUNT_TENANT_INSERTED, tenanted)
    by_queue: Counter[tuple[str, str, str]] = Counter()
    for (_tenant, queue, task, state), n in counted.items():
        by_queue[queue, task, state] += n
    conn.executemany(COUNT_INSERTED, [(*key, n) for key, n in by_queue.items()])


class Database(Protocol):
    db: Connections

    def _now(self, now: float | None) -> float: ...


class Counters:
    def _count_inserted(self, conn: sqlite3.Connection, jobs: Sequence[NewJob],
                        results: Sequence[EnqueueResult]) -> None:
        count_inserted(conn, jobs, results)

    async def job_counts(self: Database, tenant: str | None = None) -> list[JobCount]:
        """The kept counts (of `tenant`, else of every tenant apart), one per key with jobs.
        Untenanted jobs have no counts of their own: all tenants' less the tenanted ones'."""
        with self.db.read() as conn:
            if tenant is not None:
                return counts_of(conn.execute(KEPT_TENANT, {"tenant": tenant}).fetchall())
            tenanted = conn.execute(KEPT_EACH_TENANT).fetchall()
            untenanted = Counter({(r[0], r[1], r[3]): r[4] for r in conn.execute(KEPT_ALL)})
        for queue, task, _tenant, state, n in tenanted:
            untenanted[queue, task, state] -= n
        return counts_of([*tenanted, *((q, t, "", s, n) for (q, t, s), n in untenanted.items())])

    async def recount_jobs(self: Database, tenant: str | None = None) -> list[JobCount]:
        """The same, counted from the jobs themselves (a scan: for checks, not for pages)."""
        with self.db.read() as conn:
            return counts_of(conn.execute(RECOUNT, {"tenant": tenant}).fetchall())

    async def fold_counts(self: Database) -> int:
        """Drop the keys at zero and the minutes of finished jobs past KEEP_MINUTES (the
        triggers keep the counts themselves up to date); how many rows went."""
        before = {"before": first_minute(self._now(None), KEEP_MINUTES * 60)}
        with self.db.write() as conn:
            dropped = conn.execute(DROP_ZEROS).rowcount + conn.execute(DROP_TENANT_ZEROS).rowcount
            dropped += conn.execute(DROP_FINISHED, before).rowcount
            return max(dropped + conn.execute(DROP_TENANT_FINISHED, before).rowcount, 0)

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

    def _finished(self, conn: sqlite3.Connection, tenant: str | None, since: int) -> Rows:
        """(queue, minute, state, retried, count) of the jobs finished from minute `since`."""
        return conn.execute(FINISHED_ALL if tenant is None else FINISHED_TENANT,
                            {"tenant": tenant, "since": since}).fetchall()

    def _oldest_queued(self, conn: sqlite3.Connection, queues: Sequence[str],
                       tenant: str | None) -> dict[str, float]:
        oldest = {}
        for queue in queues:
            (first,) = conn.execute(OLDEST_QUEUED, {"queue": queue, "tenant": tenant}).fetchone()
            if first is not None:
                oldest[queue] = float(first)
        return oldest

