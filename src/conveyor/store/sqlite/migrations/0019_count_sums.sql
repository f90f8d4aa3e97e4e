-- Conveyor schema, version 19: a store statement may write the counts itself. The two update
-- triggers of version 11 fire once per row; a claim or a trip's completions or failures move
-- many jobs in one statement, each row from a known state to another, so the store sums them
-- and writes one upsert per key instead (sqlite/count_sums.py). Each trigger is still called
-- per row to evaluate its WHEN; its three statements per row are what is saved.
-- While conveyor_count_deferred holds a row the update triggers stand aside. The store inserts
-- that row, runs the statement, writes the sums and deletes the row, all in its one write
-- transaction: no other connection ever sees the row, so every other write, the store's own
-- or anyone's, is counted by the triggers exactly as before.
CREATE TABLE conveyor_count_deferred (one INTEGER PRIMARY KEY CHECK (one = 1));

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
END;

CREATE TRIGGER conveyor_count_tenant_updated AFTER UPDATE OF queue, task, tenant, state, attempt
ON conveyor_jobs
WHEN NOT EXISTS (SELECT 1 FROM conveyor_count_deferred)
  AND (old.tenant <> '' OR new.tenant <> '')
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
