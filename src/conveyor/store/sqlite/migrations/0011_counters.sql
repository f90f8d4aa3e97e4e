-- Conveyor schema, version 11: exact job counts by queue, task, tenant and state, kept as the
-- jobs change (sqlite/counters.py), so that the overview, /metrics, /queues and the stats never
-- count conveyor_jobs. The counted state is the stored one, except that a scheduled job with an
-- attempt behind it counts as 'retrying' (Job.retrying).
--
-- SQLite has one writer at a time, so row triggers update the counts in the writing
-- transaction itself: every update and delete (claim, settle, rescue, cancel, requeue,
-- prune...) moves them, with no hot row shared between concurrent writers to worry about.
-- Inserts have one path, the store's enqueue, which counts its batch itself (one upsert per
-- key, sqlite/counters.py): a row trigger per job cost a bulk enqueue half its speed. (Rows
-- inserted behind the store's back are not counted; bench/reads.py recounts after its load.)
-- An update moves a count only when the job's key changed (not on a heartbeat or progress).
-- Two totals: all tenants' (a few rows per queue and task, what the operator's pages read)
-- and each tenant's (what a tenant's pages read, by its own key range; tenanted jobs only).
-- Keys at zero stay until fold_counts drops them.
CREATE TABLE conveyor_counts (
    queue  TEXT    NOT NULL,
    task   TEXT    NOT NULL,
    state  TEXT    NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (queue, task, state)
) WITHOUT ROWID;
CREATE TABLE conveyor_tenant_counts (
    tenant TEXT    NOT NULL,
    queue  TEXT    NOT NULL,
    task   TEXT    NOT NULL,
    state  TEXT    NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (tenant, queue, task, state)
) WITHOUT ROWID;

-- Jobs finished per minute (completed or dead; retried: after more than one attempt), by
-- queue, for all tenants and for each: the last minute's throughput and the last hour's
-- failure and retry rates read a few buckets, not every job finished in the window. An event
-- count: a job pruned since still counts in its minute. (Kept by the triggers below.)
CREATE TABLE conveyor_finished (
    minute  INTEGER NOT NULL,
    queue   TEXT    NOT NULL,
    state   TEXT    NOT NULL,
    retried INTEGER NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (minute, queue, state, retried)
) WITHOUT ROWID;
CREATE TABLE conveyor_tenant_finished (
    tenant  TEXT    NOT NULL,
    minute  INTEGER NOT NULL,
    queue   TEXT    NOT NULL,
    state   TEXT    NOT NULL,
    retried INTEGER NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (tenant, minute, queue, state, retried)
) WITHOUT ROWID;
CREATE INDEX conveyor_tenant_finished_minute ON conveyor_tenant_finished (minute);

-- All tenants' counts move on every change of a job's key; a tenant's only for tenanted
-- jobs (an untenanted job's count is all tenants' count less the tenanted ones'), so that an
-- embedded store without tenants pays for one set of counters. A job that has just finished
-- (completed or dead from another state) also counts in its minute.
CREATE TRIGGER conveyor_count_deleted AFTER DELETE ON conveyor_jobs
BEGIN
    UPDATE conveyor_counts SET n = n - 1
    WHERE queue = old.queue AND task = old.task
      AND state = CASE WHEN old.state = 'scheduled' AND old.attempt > 0 THEN 'retrying'
                       ELSE old.state END;
END;

CREATE TRIGGER conveyor_count_tenant_deleted AFTER DELETE ON conveyor_jobs
WHEN old.tenant <> ''
BEGIN
    UPDATE conveyor_tenant_counts SET n = n - 1
    WHERE tenant = old.tenant AND queue = old.queue AND task = old.task
      AND state = CASE WHEN old.state = 'scheduled' AND old.attempt > 0 THEN 'retrying'
                       ELSE old.state END;
END;

CREATE TRIGGER conveyor_count_updated AFTER UPDATE OF queue, task, tenant, state, attempt
ON conveyor_jobs
WHEN old.queue IS NOT new.queue OR old.task IS NOT new.task OR old.tenant IS NOT new.tenant
  OR (CASE WHEN old.state = 'scheduled' AND old.attempt > 0 THEN 'retrying' ELSE old.state END)
     IS NOT (CASE WHEN new.state = 'scheduled' AND new.attempt > 0 THEN 'retrying'
                  ELSE new.state END)
  OR (new.state IN ('completed', 'dead') AND old.state NOT IN ('completed', 'dead'))
BEGIN
    UPDATE conveyor_counts SET n = n - 1
    WHERE queue = old.queue AND task = old.task
      AND state = CASE WHEN old.state = 'scheduled' AND old.attempt > 0 THEN 'retrying'
                       ELSE old.state END;
    INSERT INTO conveyor_counts (queue, task, state, n)
    VALUES (new.queue, new.task,
            CASE WHEN new.state = 'scheduled' AND new.attempt > 0 THEN 'retrying'
                 ELSE new.state END, 1)
    ON CONFLICT (queue, task, state) DO UPDATE SET n = n + 1;
    INSERT INTO conveyor_finished (minute, queue, state, retried, n)
    SELECT CAST(new.finished_at / 60 AS INTEGER), new.queue, new.state, new.attempt > 1, 1
    WHERE new.state IN ('completed', 'dead') AND old.state NOT IN ('completed', 'dead')
      AND new.finished_at IS NOT NULL
    ON CONFLICT (minute, queue, state, retried) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER conveyor_count_tenant_updated AFTER UPDATE OF queue, task, tenant, state, attempt
ON conveyor_jobs
WHEN (old.tenant <> '' OR new.tenant <> '')
  AND (old.queue IS NOT new.queue OR old.task IS NOT new.task OR old.tenant IS NOT new.tenant
  OR (CASE WHEN old.state = 'scheduled' AND old.attempt > 0 THEN 'retrying' ELSE old.state END)
     IS NOT (CASE WHEN new.state = 'scheduled' AND new.attempt > 0 THEN 'retrying'
                  ELSE new.state END)
  OR (new.state IN ('completed', 'dead') AND old.state NOT IN ('completed', 'dead')))
BEGIN
    UPDATE conveyor_tenant_counts SET n = n - 1
    WHERE tenant = old.tenant AND queue = old.queue AND task = old.task
      AND state = CASE WHEN old.state = 'scheduled' AND old.attempt > 0 THEN 'retrying'
                       ELSE old.state END;
    INSERT INTO conveyor_tenant_counts (tenant, queue, task, state, n)
    SELECT new.tenant, new.queue, new.task,
           CASE WHEN new.state = 'scheduled' AND new.attempt > 0 THEN 'retrying'
                ELSE new.state END, 1
    WHERE new.tenant <> ''
    ON CONFLICT (tenant, queue, task, state) DO UPDATE SET n = n + 1;
    INSERT INTO conveyor_tenant_finished (tenant, minute, queue, state, retried, n)
    SELECT new.tenant, CAST(new.finished_at / 60 AS INTEGER), new.queue, new.state,
           new.attempt > 1, 1
    WHERE new.tenant <> '' AND new.state IN ('completed', 'dead')
      AND old.state NOT IN ('completed', 'dead') AND new.finished_at IS NOT NULL
    ON CONFLICT (tenant, minute, queue, state, retried) DO UPDATE SET n = n + 1;
END;

-- The jobs already stored, counted once (in the migration's own write transaction).
INSERT INTO conveyor_counts (queue, task, state, n)
SELECT queue, task,
       CASE WHEN state = 'scheduled' AND attempt > 0 THEN 'retrying' ELSE state END, count(*)
FROM conveyor_jobs GROUP BY 1, 2, 3;
INSERT INTO conveyor_tenant_counts (tenant, queue, task, state, n)
SELECT tenant, queue, task,
       CASE WHEN state = 'scheduled' AND attempt > 0 THEN 'retrying' ELSE state END, count(*)
FROM conveyor_jobs WHERE tenant <> '' GROUP BY 1, 2, 3, 4;

-- The jobs waiting to retry, newest first (the `retrying` filter of the job lists): only the
-- rows a failure scheduled again, so an enqueue never touches it.
CREATE INDEX conveyor_jobs_retrying ON conveyor_jobs (id) WHERE state = 'scheduled' AND attempt > 0;
