-- Conveyor schema, version 36 (SQLite): the store's summed statements stand the count
-- trigger aside by a mark on the rows they move, not by a row of conveyor_count_deferred.
--
-- A claim and a trip's batched completions and failures write their count changes as sums
-- (0019, sqlite/count_sums.py). The trigger stood aside while conveyor_count_deferred held a
-- row, which the store inserted before those statements and deleted before its commit: two
-- statements a trip, that table's page written to the WAL at every commit, and a lookup of
-- it for every updated row of every statement. Those statements now flip count_mark
-- (count_mark = 1 - count_mark) on each row they move, and the trigger counts a row whose
-- mark did not change: a comparison of the row's old and new values, per statement, with
-- nothing written anywhere else. Nothing stands aside beyond the statement itself: no state
-- outlives it, whatever happens to the writer, and any other statement in the same
-- transaction is counted.
--
-- Every other writer is counted as before: the CLI, the API, the sqlite3 shell and the store's
-- own other statements never touch count_mark (values 0 and 1 are stored in the record's
-- header alone: no byte of payload). A previous release during a rolling deploy still
-- inserts its deferral row around its summed statements: the trigger honours it (asked
-- only of a row whose mark did not change, i.e. never in this release's trip).
ALTER TABLE conveyor_jobs ADD COLUMN count_mark INTEGER NOT NULL DEFAULT 0;

DROP TRIGGER conveyor_count_updated;

CREATE TRIGGER conveyor_count_updated AFTER UPDATE OF queue, task, tenant, state, attempt
ON conveyor_jobs
WHEN new.count_mark = old.count_mark
  AND NOT EXISTS (SELECT 1 FROM conveyor_count_deferred)
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
