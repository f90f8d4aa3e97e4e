-- Conveyor schema, version 32 (SQLite): conveyor_jobs_listed (0030) without the running
-- rows, as PostgreSQL's has always been.
--
-- A job passes through 'running' once per attempt: its claim moved its entry from the queued
-- key to the running key, and its settle from the running key to the finished one, so every
-- drained job took four entry writes here and every trip's commit wrote the running key's
-- pages besides (bench/results/2026-12-07c-drainsq.md: 1.39 -> 1.32 WAL frames per job, the
-- trip's instructions -2.9 %). Without them a claim removes one entry and a settle adds one.
-- The running jobs are few (the workers' slots) and have their own index (0015,
-- conveyor_jobs_running_ids): the keyed list reads them there (sqlite/listing.py).
DROP INDEX conveyor_jobs_listed;
CREATE INDEX conveyor_jobs_listed ON conveyor_jobs (queue, task, state, tenant, id)
    WHERE queue <> '' AND state <> 'running';

-- The two update triggers of 0019 as one: each updated row evaluated both WHENs (the deferral's
-- lookup, the states compared), in every claim and settle of a drain while deferred, where
-- both are false. One WHEN, the tenant's statements guarded by the tenant inside: the same
-- writes (the trip under callgrind: 429,402 -> 427,242 instructions per job).
DROP TRIGGER conveyor_count_updated;
DROP TRIGGER conveyor_count_tenant_updated;

CREATE TRIGGER conveyor_count_updated AFTER UPDATE OF queue, task, tenant, state, attempt
ON conveyor_jobs
WHEN NOT EXISTS (SELECT 1 FROM conveyor_count_deferred)
  AND (old.queue IS NOT new.queue OR old.task IS NOT new.task OR old.tenant IS NOT new.tenant
  OR (CASE WHEN old.state = 'scheduled' AND old.attempt > 0 THEN 'retrying' ELSE old.state END)
     IS NOT (CASE WHEN new.state = 'scheduled' AND new.attempt > 0 THEN 'retrying'
                  ELSE new.state END)
  OR (new.state IN ('completed', 'dead') AND old.state NOT IN ('completed', 'dead')))
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
    -- the tenant's (0019's second trigger, whose WHEN also asked for a tenant)
    UPDATE conveyor_tenant_counts SET n = n - 1
    WHERE old.tenant <> '' AND tenant = old.tenant AND queue = old.queue AND task = old.task
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
