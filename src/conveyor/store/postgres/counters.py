"""The PostgreSQL store's job counters (migration 0011): exact counts by queue, task, tenant
and state, read from the kept totals plus the deltas not yet folded into them, never by
counting conveyor_jobs. A part of PostgresStore (store.py), kept apart for size.

The triggers of migration 0011 append each statement's net change to conveyor_count_deltas;
`fold_counts` (the maintenance loop, every second or so) moves them into conveyor_counts in
one statement. A read sums both tables in one snapshot: a delta is either still in the first
or already in the second, never in both, so a read is exact whenever it runs.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import psycopg

from ...job import JobFilter
from ..base import JobCount
from ..counting import KEEP_MINUTES, counted_states, filter_countable
from ..counting import job_counts as counts_of
from .vacuums import vacuum_at_most_every

Rows = list[tuple[Any, ...]]

_TENANT = "(%(tenant)s::text IS NULL OR tenant = %(tenant)s)"

# The kept counts: totals and unfolded deltas, netted per key. All tenants' from their own
# totals (a few rows per queue and task); one tenant's from its key range; and every tenant's
# apart (job_counts(), for checks).
KEPT_ALL = """
SELECT queue, task, NULL::text, state, sum(n)::bigint FROM (
    SELECT queue, task, state, n FROM {schema}.conveyor_counts
    UNION ALL
    SELECT queue, task, state, n FROM {schema}.conveyor_count_deltas) AS kept
GROUP BY queue, task, state HAVING sum(n) <> 0"""
KEPT_TENANT = """
SELECT queue, task, tenant, state, sum(n)::bigint FROM (
    SELECT queue, task, tenant, state, n FROM {schema}.conveyor_tenant_counts
    WHERE tenant = %(tenant)s
    UNION ALL
    SELECT queue, task, tenant, state, n FROM {schema}.conveyor_count_deltas
    WHERE tenant = %(tenant)s) AS kept
GROUP BY queue, task, tenant, state HAVING sum(n) <> 0"""
KEPT_EACH_TENANT = """
SELECT queue, task, tenant, state, sum(n)::bigint FROM (
    SELECT queue, task, tenant, state, n FROM {schema}.conveyor_tenant_counts
    UNION ALL
    SELECT queue, task, tenant, state, n FROM {schema}.conveyor_count_deltas) AS kept
GROUP BY queue, task, tenant, state HAVING sum(n) <> 0"""

# the same, for the keys a job filter names (count_jobs)
_MATCHING = """(%(queue)s::text IS NULL OR queue = %(queue)s)
      AND (%(task)s::text IS NULL OR task = %(task)s) AND state = ANY(%(states)s::text[])"""
KEPT_MATCHING_ALL = """
SELECT coalesce(sum(n), 0)::bigint FROM (
    SELECT n FROM {schema}.conveyor_counts WHERE """ + _MATCHING + """
    UNION ALL
    SELECT n FROM {schema}.conveyor_count_deltas WHERE """ + _MATCHING + """) AS kept"""
KEPT_MATCHING_TENANT = """
SELECT coalesce(sum(n), 0)::bigint FROM (
    SELECT n FROM {schema}.conveyor_tenant_counts
    WHERE tenant = %(tenant)s AND """ + _MATCHING + """
    UNION ALL
    SELECT n FROM {schema}.conveyor_count_deltas
    WHERE tenant = %(tenant)s AND """ + _MATCHING + """) AS kept"""

# the real count, by scanning the jobs: what the kept counts must always equal (tests; repair)
RECOUNT = """
SELECT queue, task, tenant,
       CASE WHEN state = 'scheduled' AND attempt > 0 THEN 'retrying' ELSE state END, count(*)
FROM {schema}.conveyor_jobs WHERE """ + _TENANT + """
GROUP BY 1, 2, 3, 4"""

# Move every delta into both totals: rows a concurrent fold already took are skipped (DELETE
# waits for it and finds them gone), so each delta is added exactly once, to each.
# In the same statement (one snapshot: the deltas it takes are those of the jobs it sees), the
# queues' heads (migration 0035): for each queue with a 'queued' delta among them, each
# priority's start (its head, or a delta's start if earlier) moves to the first queued job at
# or after it, or goes when none is left. A queued job the snapshot does not see has its
# delta left for readers and the next fold. The probes walk only the claim-index entries of
# the jobs claimed since the last fold (a second or so), once per store, not per read.
FOLD = """
WITH moved AS (DELETE FROM {schema}.conveyor_count_deltas
               RETURNING queue, task, tenant, state, n, priority, run_at),
each_tenant AS (
    INSERT INTO {schema}.conveyor_tenant_counts AS total (tenant, queue, task, state, n)
    SELECT tenant, queue, task, state, sum(n) FROM moved GROUP BY 1, 2, 3, 4
    ON CONFLICT (tenant, queue, task, state) DO UPDATE SET n = total.n + excluded.n),
started AS (
    SELECT start.queue, start.priority, (
        SELECT job.run_at FROM {schema}.conveyor_jobs AS job
        WHERE job.queue = start.queue AND job.state = 'queued'
          AND job.priority = start.priority AND job.run_at >= start.run_at
        ORDER BY job.run_at LIMIT 1) AS first
    FROM (SELECT queue, priority, min(run_at) AS run_at FROM (
              SELECT queue, priority, run_at FROM moved WHERE priority IS NOT NULL
              UNION ALL
              SELECT head.queue, head.priority, head.run_at
              FROM {schema}.conveyor_queue_heads AS head
              WHERE head.queue IN (SELECT queue FROM moved WHERE state = 'queued')) AS starts
          GROUP BY queue, priority) AS start),
heads_gone AS (
    DELETE FROM {schema}.conveyor_queue_heads AS head USING started
    WHERE head.queue = started.queue AND head.priority = started.priority
      AND started.first IS NULL),
heads_moved AS (
    INSERT INTO {schema}.conveyor_queue_heads AS head (queue, priority, run_at)
    SELECT queue, priority, first FROM started WHERE first IS NOT NULL
    ON CONFLICT (queue, priority) DO UPDATE SET run_at = excluded.run_at)
INSERT INTO {schema}.conveyor_counts AS total (queue, task, state, n)
SELECT queue, task, state, sum(n) FROM moved GROUP BY 1, 2, 3
ON CONFLICT (queue, task, state) DO UPDATE SET n = total.n + excluded.n"""
# keys whose count reached zero (a finished tenant, a queue gone): an insert racing this waits
# for the delete and then inserts afresh
DROP_ZEROS = "DELETE FROM {schema}.conveyor_counts WHERE n = 0"
DROP_TENANT_ZEROS = "DELETE FROM {schema}.conveyor_tenant_counts WHERE n = 0"
# One fold at a time per store: a transaction-scoped advisory lock on the deltas table, tried
# once; a fold that finds it held folds nothing (the next fold takes the deltas). Each worker's
# maintenance folds every second or so, and two folds at once deadlocked: one's DROP_ZEROS
# (deleting the keys at zero in the table's physical order) and the other's FOLD (upserting
# the totals in its hash aggregate's order, reviving some of those keys) locked the same rows
# of conveyor_counts / conveyor_tenant_counts in opposite orders ("deadlock detected" 3 times
# in the first minute of a 2M-job drain, bench/results/2026-12-08-q16.md). A fixed row order
# in every statement would also do, but two folds at once only contend: nothing is gained by
# letting the second run. The schema is letters, digits and _ (connection.py): safe inside
# the literal. The first key differs from the history fold's (history_fold.FOLD_LOCK_KEY).
FOLD_LOCK_KEY = 0x636F756E  # "coun"
# The same statement tells migration 0035's trigger on the deltas (conveyor_queue_heads_kept)
# that this fold moves the queues' heads itself (FOLD): set_config(..., true), this
# transaction only; a fold of a release before 0035 leaves it to the trigger.
FOLD_LOCK = (f"SELECT pg_try_advisory_xact_lock({FOLD_LOCK_KEY}, "
             "CAST(CAST('{schema}.conveyor_count_deltas' AS regclass) AS oid)::int4), "
             "set_config('conveyor.fold', 'heads', true)")

# jobs finished per minute, from the minute that holds `window` seconds before now on (the
# database's clock: counting.first_minute), buckets and unfolded deltas
_FINISHED_KEPT_ALL = """(
    SELECT queue, minute, state, retried, n FROM {schema}.conveyor_finished
    WHERE minute >= floor(({now} - %(window)s) / 60)
    UNION ALL
    SELECT queue, minute, state, retried, n FROM {schema}.conveyor_finished_deltas
    WHERE minute >= floor(({now} - %(window)s) / 60)) AS kept"""
_FINISHED_KEPT_TENANT = """(
    SELECT queue, minute, state, retried, n FROM {schema}.conveyor_tenant_finished
    WHERE tenant = %(tenant)s AND minute >= floor(({now} - %(window)s) / 60)
    UNION ALL
    SELECT queue, minute, state, retried, n FROM {schema}.conveyor_finished_deltas
    WHERE tenant = %(tenant)s AND minute >= floor(({now} - %(window)s) / 60)) AS kept"""
FINISHED_ALL = ("SELECT queue, minute, state, retried, sum(n)::bigint FROM "
                + _FINISHED_KEPT_ALL + " GROUP BY 1, 2, 3, 4")
FINISHED_TENANT = ("SELECT queue, minute, state, retried, sum(n)::bigint FROM "
                   + _FINISHED_KEPT_TENANT + " GROUP BY 1, 2, 3, 4")
# what counting.outcomes makes of those rows, summed here: one row of (completed, dead,
# completed after a retry, dead after a retry), NULL for none. The stats' hour holds a row
# per queue, minute, outcome and retried (thousands with many queues), none of which need
# to cross the wire for four sums.
_OUTCOMES = """SELECT sum(n) FILTER (WHERE state = 'completed')::bigint,
       sum(n) FILTER (WHERE state = 'dead')::bigint,
       sum(n) FILTER (WHERE state = 'completed' AND retried)::bigint,
       sum(n) FILTER (WHERE state = 'dead' AND retried)::bigint
FROM """
OUTCOMES_ALL = _OUTCOMES + _FINISHED_KEPT_ALL
OUTCOMES_TENANT = _OUTCOMES + _FINISHED_KEPT_TENANT
FOLD_FINISHED = """
WITH moved AS (DELETE FROM {schema}.conveyor_finished_deltas
               RETURNING tenant, minute, queue, state, retried, n),
each_tenant AS (
    INSERT INTO {schema}.conveyor_tenant_finished AS total
        (tenant, minute, queue, state, retried, n)
    SELECT tenant, minute, queue, state, retried, sum(n) FROM moved GROUP BY 1, 2, 3, 4, 5
    ON CONFLICT (tenant, minute, queue, state, retried) DO UPDATE SET n = total.n + excluded.n)
INSERT INTO {schema}.conveyor_finished AS total (minute, queue, state, retried, n)
SELECT minute, queue, state, retried, sum(n) FROM moved GROUP BY 1, 2, 3, 4
ON CONFLICT (minute, queue, state, retried) DO UPDATE SET n = total.n + excluded.n"""
# The deltas live a second: every fold leaves the table's rows dead, and a read that sums
# the deltas walks dead rows until a vacuum (10M jobs loaded, then folded: 100 ms per read).
# Vacuumed after a fold that moved anything, at most every VACUUM_EVERY seconds per store,
# not at autovacuum's pace; a vacuum that would wait for a lock is skipped. Every 2 s, not
# 10: 2 workers draining 2M jobs left 18,000-50,000 dead delta rows for every counter read
# to walk at 10 s (bench/counter_reads.py, 2026-12-05 stop 24).
# The all-tenant totals too (conveyor_counts, conveyor_finished): a few hundred or thousand
# rows, each rewritten by every fold that touches its key, and read whole by every counter
# read (a sequential scan: the overview, the queues page, /metrics). Left to autovacuum (a
# minute at best; off on the bench server) they grow with the drain, and the space stays:
# 2 workers draining 2M jobs, 1,400 rows of conveyor_counts took 1,817 pages (14 MB) and
# every read of the counts walked them (5-15 ms; bench/results/2026-12-08-q16.md). Every
# VACUUM_TOTALS_EVERY seconds, not 2: they grow a few pages a minute (so a few pages between
# two), and a drain-only A/B with them vacuumed every 2 s was not clear of a cost. The
# tenants' totals (many more rows, read by key range) stay with autovacuum.
VACUUM_EVERY = 2.0
VACUUM_DELTAS = ("VACUUM (SKIP_LOCKED) {schema}.conveyor_count_deltas, "
                 "{schema}.conveyor_finished_deltas")
VACUUM_TOTALS_EVERY = 30.0
VACUUM_TOTALS = ("VACUUM (SKIP_LOCKED) {schema}.conveyor_counts, {schema}.conveyor_finished, "
                 "{schema}.conveyor_queue_heads")
DROP_FINISHED = """
DELETE FROM {schema}.conveyor_finished WHERE minute < floor({now} / 60) - %(keep)s"""
DROP_TENANT_FINISHED = """
DELETE FROM {schema}.conveyor_tenant_finished WHERE minute < floor({now} / 60) - %(keep)s"""

# The oldest queued job of each queue the kept counts say holds queued jobs (totals plus
# unfolded deltas, as KEPT_ALL and KEPT_TENANT net them): the least over its priorities of
# each one's first run_at, each found by one descent of the claim index from where that
# priority's queued jobs begin: the least of its head (conveyor_queue_heads, migration 0035)
# and the starts of the deltas not folded yet (in this snapshot, every queued job runs at or
# after one of them). Not from the front of the queue's index range: while workers drain,
# that front holds the entries of every job claimed since the last VACUUM of conveyor_jobs,
# and a probe from it walks them all, a heap visit for each not yet dead to every snapshot
# (2M jobs, 2 workers draining: 30,000-60,000 heap visits and 0.1-1.5 s per read, loaded;
# bench/results/2026-12-08-q16.md, 2026-12-09-pgq.md). Every queue in one statement, sent
# in the same trip as the counts (issue 16); the deltas (no index, read whole) scanned once.
_OLDEST_OF = """
WITH delta AS MATERIALIZED (
    SELECT queue, n, priority, run_at FROM {schema}.conveyor_count_deltas
    WHERE state = 'queued' AND {tenant}),
named(queue) AS (
    SELECT queue FROM (
        SELECT queue, n FROM {totals} WHERE {queued} AND {tenant}
        UNION ALL
        SELECT queue, n FROM delta) AS kept
    GROUP BY queue HAVING sum(n) > 0),
start AS (
    SELECT queue, priority, min(run_at) AS run_at FROM (
        SELECT queue, priority, run_at FROM {schema}.conveyor_queue_heads
        UNION ALL
        SELECT queue, priority, run_at FROM delta WHERE priority IS NOT NULL) AS starts
    GROUP BY queue, priority)
SELECT named.queue, min(first.run_at)
FROM named LEFT JOIN start ON start.queue = named.queue
LEFT JOIN LATERAL (
    SELECT job.run_at FROM {schema}.conveyor_jobs AS job
    WHERE job.queue = start.queue AND job.state = 'queued' AND job.priority = start.priority
      AND job.run_at >= start.run_at AND """ + _TENANT + """
    ORDER BY job.run_at LIMIT 1) AS first ON true
GROUP BY named.queue"""
# All tenants' totals are read whole (`state || ''`: not by their primary key, which cannot
# seek on state and visits the heap for each entry: with a long transaction holding the
# rows every fold rewrites, 11,000-19,000 buffers for 200 rows against a 586-page table;
# 2026-12-09-pgq.md); a tenant's by its key range.
OLDEST_QUEUED_ALL = _OLDEST_OF.replace("{totals}", "{schema}.conveyor_counts").replace(
    "{queued}", "state || '' = 'queued'").replace("{tenant}", "true")
# A tenant's: from the front of each queue's claim index, skipping from priority to priority
# (one probe per priority), over its own counts and deltas. Not from the heads: those are
# the owner's alone (row security: a tenant's role reads no head and, once a fold has taken
# its deltas, would find no start at all), and would start its probes at every tenant's jobs.
_QUEUED_TENANT = """
    SELECT queue FROM (
        SELECT queue, n FROM {schema}.conveyor_tenant_counts
        WHERE tenant = %(tenant)s AND state = 'queued'
        UNION ALL
        SELECT queue, n FROM {schema}.conveyor_count_deltas
        WHERE tenant = %(tenant)s AND state = 'queued') AS kept
    GROUP BY queue HAVING sum(n) > 0"""
OLDEST_QUEUED_TENANT = """
SELECT named.queue, (
    WITH RECURSIVE level(priority, run_at) AS (
        (SELECT priority, run_at FROM {schema}.conveyor_jobs
         WHERE queue = named.queue AND state = 'queued' AND """ + _TENANT + """
         ORDER BY priority DESC, run_at LIMIT 1)
        UNION ALL
        SELECT next.priority, next.run_at FROM level CROSS JOIN LATERAL (
            SELECT priority, run_at FROM {schema}.conveyor_jobs
            WHERE queue = named.queue AND state = 'queued' AND priority < level.priority
              AND """ + _TENANT + """
            ORDER BY priority DESC, run_at LIMIT 1) AS next)
    SELECT min(run_at) FROM level)
FROM (""" + _QUEUED_TENANT + ") AS named(queue)"
# Sent first in the queues read's transaction: no JIT compilation for what follows in it. For
# a tenant, OLDEST_QUEUED_TENANT's estimate (its index probes filtered by tenant, per queue named)
# passes jit_above_cost at a million jobs: 2 ms of execution behind ~480 ms of compiling
# (bench/results/2026-12-06-views.md). set_config(..., true): this transaction only.
NO_JIT = "SELECT set_config('jit', 'off', true)"


class Sessions(Protocol):
    """What the counters need of the store (PostgresStore's own session helpers)."""

    def _session(self, tenant: str | None = None, atomic: bool = False
                 ) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]: ...

    def statement(self, template: str) -> str: ...

    async def _count(self, template: str, params: dict[str, Any]) -> int: ...

    async def _one(self, template: str, params: dict[str, Any] | None = None,
                   tenant: str | None = None) -> Rows: ...

    async def _fetch(self, conn: psycopg.AsyncConnection[Any], template: str,
                     params: dict[str, Any] | None = None) -> Rows: ...


class Counters:
    async def job_counts(self: Sessions, tenant: str | None = None) -> list[JobCount]:
        """The kept counts (of `tenant`, else of every tenant apart), one per key with jobs."""
        return counts_of(await self._one(KEPT_EACH_TENANT if tenant is None else KEPT_TENANT,
                                         {"tenant": tenant}, tenant))

    async def recount_jobs(self: Sessions, tenant: str | None = None) -> list[JobCount]:
        """The same, counted from the jobs themselves (a scan: for checks, not for pages)."""
        return counts_of(await self._one(RECOUNT, {"tenant": tenant}, tenant))

    async def fold_counts(self: Sessions) -> int:
        """Fold the deltas into the totals, drop the keys at zero and the minutes of finished
        jobs past KEEP_MINUTES; how many keys changed (0 when another fold is under way: the
        next one takes what this one would have). One transaction under FOLD_LOCK."""
        async with self._session() as conn, conn.transaction():
            if not (await self._fetch(conn, FOLD_LOCK, {}))[0][0]:
                return 0
            folded = await _changed(self, conn, FOLD)
            if folded:
                await _changed(self, conn, DROP_ZEROS)
                await _changed(self, conn, DROP_TENANT_ZEROS)
            folded += await _changed(self, conn, FOLD_FINISHED)
            for template in (DROP_FINISHED, DROP_TENANT_FINISHED):
                await _changed(self, conn, template, {"keep": KEEP_MINUTES, "now": None})
        if folded:  # VACUUM runs outside a transaction, after the fold's commit
            await vacuum_at_most_every(self, VACUUM_DELTAS, VACUUM_EVERY)
            await vacuum_at_most_every(self, VACUUM_TOTALS, VACUUM_TOTALS_EVERY)
        return folded

    async def _kept_count(self: Sessions, where: JobFilter) -> int | None:
        """count_jobs from the counters, when the filter names only counted keys."""
        if not filter_countable(where):
            return None
        template = KEPT_MATCHING_ALL if where.tenant is None else KEPT_MATCHING_TENANT
        rows = await self._one(template, {
            "tenant": where.tenant, "queue": where.queue, "task": where.task,
            "states": counted_states(where)}, where.tenant)
        return int(rows[0][0])

    async def _kept_rows(self: Sessions, conn: psycopg.AsyncConnection[Any],
                         tenant: str | None) -> Rows:
        return await self._fetch(conn, KEPT_ALL if tenant is None else KEPT_TENANT,
                                 {"tenant": tenant})


async def _changed(store: Sessions, conn: psycopg.AsyncConnection[Any], template: str,
                   params: dict[str, Any] | None = None) -> int:
    """The rows one statement of the fold changed, on the fold's connection."""
    cursor = await conn.execute(store.statement(template), params or {})
    return max(cursor.rowcount, 0)
