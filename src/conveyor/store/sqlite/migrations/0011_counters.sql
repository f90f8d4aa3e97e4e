-- Conveyor schema, version 11: exact job counts by queue, task, tenant and state, kept as the
-- jobs change (sqlite/counters.py), so that the overview, /metrics, /queues and the stats never
-- count conveyor_jobs. The counted state is the stored one, except that a scheduled job with an
-- attempt behind it counts as 'retrying' (Job.retrying).
--
-- SQLite has one writer at a time, so row triggers update the counts in the writing
-- transaction itself: every write path (enqueue, claim, settle, rescue, cancel, requeue,
-- prune...) moves them, with no hot row shared between concurrent writers to worry about.
-- An update moves a count only when the job's key changed (not on a heartbeat or progress).
-- Two totals: all tenants' (a few rows per queue and task, what the operator's pages read)
-- and each tenant's (what a tenant's pages read, by its own key range). Keys at zero stay
-- until fold_counts drops them.
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

CREATE TRIGGER conveyor_count_inserted AFTER INSERT ON conveyor_jobs
BEGIN
    INSERT INTO conveyor_counts (queue, task, state, n)
    VALUES (new.queue, new.task,
            CASE WHEN new.state = 'scheduled' AND new.attempt > 0 THEN 'retrying'
                 ELSE new.state END, 1)
    ON CONFLICT (queue, task, state) DO UPDATE SET n = n + 1;
    INSERT INTO conveyor_tenant_counts (tenant, queue, task, state, n)
    VALUES (new.tenant, new.queue, new.task,
            CASE WHEN new.state = 'scheduled' AND new.attempt > 0 THEN 'retrying'
                 ELSE new.state END, 1)
    ON CONFLICT (tenant, queue, task, state) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER conveyor_count_deleted AFTER DELETE ON conveyor_jobs
BEGIN
    UPDATE conveyor_counts SET n = n - 1
    WHERE queue = old.queue AND task = old.task
      AND state = CASE WHEN old.state = 'scheduled' AND old.attempt > 0 THEN 'retrying'
                       ELSE old.state END;
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
BEGIN
    UPDATE conveyor_counts SET n = n - 1
    WHERE queue = old.queue AND task = old.task
      AND state = CASE WHEN old.state = 'scheduled' AND old.attempt > 0 THEN 'retrying'
                       ELSE old.state END;
    UPDATE conveyor_tenant_counts SET n = n - 1
    WHERE tenant = old.tenant AND queue = old.queue AND task = old.task
      AND state = CASE WHEN old.state = 'scheduled' AND old.attempt > 0 THEN 'retrying'
                       ELSE old.state END;
    INSERT INTO conveyor_counts (queue, task, state, n)
    VALUES (new.queue, new.task,
            CASE WHEN new.state = 'scheduled' AND new.attempt > 0 THEN 'retrying'
                 ELSE new.state END, 1)
    ON CONFLICT (queue, task, state) DO UPDATE SET n = n + 1;
    INSERT INTO conveyor_tenant_counts (tenant, queue, task, state, n)
    VALUES (new.tenant, new.queue, new.task,
            CASE WHEN new.state = 'scheduled' AND new.attempt > 0 THEN 'retrying'
                 ELSE new.state END, 1)
    ON CONFLICT (tenant, queue, task, state) DO UPDATE SET n = n + 1;
END;

-- The jobs already stored, counted once (in the migration's own write transaction).
INSERT INTO conveyor_tenant_counts (tenant, queue, task, state, n)
SELECT tenant, queue, task,
       CASE WHEN state = 'scheduled' AND attempt > 0 THEN 'retrying' ELSE state END, count(*)
FROM conveyor_jobs GROUP BY 1, 2, 3, 4;
INSERT INTO conveyor_counts (queue, task, state, n)
SELECT queue, task, state, sum(n) FROM conveyor_tenant_counts GROUP BY 1, 2, 3;
