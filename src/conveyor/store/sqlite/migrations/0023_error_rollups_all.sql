-- Conveyor schema, version 23: the error reads bounded at 1M jobs (issue 15).
--
-- 1. All tenants' error rollups. The error groups of a day (or a month) of every tenant
-- summed conveyor_error_rollups, a row per hour, group, task, queue and tenant: 261,805 hour
-- rows for 289,218 failed attempts at 1M jobs (50 tenants, 20 queues), 444/674 ms p50/p95.
-- These are the same figures without the queue and tenant: a row per width, minute, group
-- and task, written by the same history fold (history_fold_sql.py), pruned with the error
-- rollups. The task stays in the key: a group's tasks of the range are exact.
CREATE TABLE conveyor_error_rollups_all (
    width       INTEGER NOT NULL,
    minute      INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    task        TEXT NOT NULL,
    failures    INTEGER NOT NULL DEFAULT 0,
    first_seen  REAL NOT NULL,
    last_seen   REAL NOT NULL,
    PRIMARY KEY (width, minute, fingerprint, task)
) WITHOUT ROWID;

-- the error rollups already folded, summed once
INSERT INTO conveyor_error_rollups_all
    (width, minute, fingerprint, task, failures, first_seen, last_seen)
SELECT width, minute, fingerprint, task, sum(failures), min(first_seen), max(last_seen)
FROM conveyor_error_rollups GROUP BY width, minute, fingerprint, task;

-- 2. One tenant's error groups of a day: its rows of the range (history_sql.
-- ERROR_GROUP_ROLLUPS_TENANT), not every tenant's rows of the range filtered.
-- Covering (with the key's columns an index of a WITHOUT ROWID table carries): a lookup of
-- each row in the key made SQLite's planner prefer the key's range of every tenant.
CREATE INDEX conveyor_error_rollups_tenant ON conveyor_error_rollups
    (tenant, width, minute, failures, first_seen, last_seen);

-- 3. The error groups of an hour (history_sql.ERROR_GROUPS): the range's failed attempts
-- alone. conveyor_attempts_errors leads with the fingerprint (a group's newest attempt), and
-- the ended index holds every attempt, so the read walked the whole errors index (289,218
-- entries for 10,000 kept: 71/112 ms; PostgreSQL read the whole table). Failed attempts only: a fold writes it for those.
CREATE INDEX conveyor_attempts_failed_ended ON conveyor_attempts
    (ended_at, fingerprint, task, tenant, queue) WHERE fingerprint IS NOT NULL;

-- 4. One tenant's page of a group's dead jobs (dead_groups.TENANT_GROUP_DEAD_JOBS): its
-- entries alone, not every tenant's entries of the group filtered.
CREATE INDEX conveyor_jobs_dead_tenants ON conveyor_jobs
    (tenant, dead_fingerprint, id) WHERE dead_fingerprint IS NOT NULL;
