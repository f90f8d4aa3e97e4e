-- Conveyor schema, version 23 (PostgreSQL): the error reads bounded at 1M jobs (issue 15).
--
-- 1. All tenants' error rollups. The error groups of a day (or a month) of every tenant
-- summed conveyor_error_rollups, a row per hour, group, task, queue and tenant: 261,805 hour
-- rows for 289,218 failed attempts at 1M jobs (50 tenants, 20 queues), 444/674 ms p50/p95.
-- These are the same figures without the queue and tenant: a row per width, minute, group
-- and task, written by the same history fold (history_fold_sql.py), pruned with the error
-- rollups. The task stays in the key: a group's tasks of the range are exact.
CREATE TABLE {schema}.conveyor_error_rollups_all (
    width       bigint NOT NULL,
    minute      bigint NOT NULL,
    fingerprint text NOT NULL,
    task        text NOT NULL,
    failures    integer NOT NULL DEFAULT 0,
    first_seen  double precision NOT NULL,
    last_seen   double precision NOT NULL,
    PRIMARY KEY (width, minute, fingerprint, task)
);

-- the error rollups already folded, summed once
INSERT INTO {schema}.conveyor_error_rollups_all
    (width, minute, fingerprint, task, failures, first_seen, last_seen)
SELECT width, minute, fingerprint, task, sum(failures), min(first_seen), max(last_seen)
FROM {schema}.conveyor_error_rollups GROUP BY width, minute, fingerprint, task;

-- 2. One tenant's error groups of a day: its rows of the range (history_sql.
-- ERROR_GROUP_ROLLUPS_TENANT), not every tenant's rows of the range filtered.
CREATE INDEX conveyor_error_rollups_tenant ON {schema}.conveyor_error_rollups
    (tenant, width, minute);

-- 3. The error groups of an hour (history_sql.ERROR_GROUPS): the range's failed attempts
-- alone. conveyor_attempts_errors leads with the fingerprint (a group's newest attempt), and
-- the ended index holds every attempt, so the planner read the whole table (a parallel seq
-- scan of 1.09M rows for 10,000 kept). Failed attempts only: a fold writes it for those.
CREATE INDEX conveyor_attempts_failed_ended ON {schema}.conveyor_attempts (ended_at)
    INCLUDE (fingerprint, task, tenant, queue) WHERE fingerprint IS NOT NULL;

-- 4. One tenant's page of a group's dead jobs (dead_groups.TENANT_GROUP_DEAD_JOBS): its
-- entries alone, not every tenant's entries of the group filtered.
CREATE INDEX conveyor_jobs_dead_tenants ON {schema}.conveyor_jobs
    (tenant, dead_fingerprint, id) WHERE dead_fingerprint IS NOT NULL;

-- 5. What those pages cost is planned from how many of a group's jobs are dead: with the
-- columns' statistics alone the planner multiplies a group's share of the jobs by the dead
-- share (10 %), finds a tenth of the group, and reads and sorts all of it (a bitmap scan of
-- 14,368 rows, 10,730 pages: 66-92 ms at 1M jobs) rather than walk the group's index for a
-- page (1,000 rows: 1-6 ms). A job carrying a fingerprint is dead: their combinations' own
-- statistics say so. Only ANALYZE fills them (autovacuum's, and this one).
CREATE STATISTICS {schema}.conveyor_jobs_dead_state (mcv) ON dead_fingerprint, state
    FROM {schema}.conveyor_jobs;
ANALYZE {schema}.conveyor_jobs;
