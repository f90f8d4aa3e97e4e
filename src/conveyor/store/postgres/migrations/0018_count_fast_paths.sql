-- Conveyor schema, version 18 (PostgreSQL): the count trigger of job updates (version 11)
-- skips the work a statement cannot need. Its second half, the finished events, joined the
-- statement's old and new rows by id on every update; but a claim, a heartbeat, a progress
-- report or a retry finishes nothing, and those are most of a drain's updates. Now:
--   * no new row completed or dead: no finished event, nothing joined;
--   * no old row completed or dead (a settle from running, the common case): every new row
--     completed or dead has just finished, counted from the new rows alone, no join;
--   * otherwise (a requeue or a discard may touch finished rows): the join, as before.
-- The same deltas as version 11 in every case: the counts' half is unchanged.
CREATE OR REPLACE FUNCTION {schema}.conveyor_count_updated() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO {schema}.conveyor_count_deltas (queue, task, tenant, state, n)
    SELECT queue, task, tenant, state, sum(n) FROM (
        SELECT queue, task, tenant,
               CASE WHEN state = 'scheduled' AND attempt > 0 THEN 'retrying' ELSE state END
                   AS state, -1 AS n
        FROM old_jobs
        UNION ALL
        SELECT queue, task, tenant,
               CASE WHEN state = 'scheduled' AND attempt > 0 THEN 'retrying' ELSE state END,
               1
        FROM new_jobs) AS moved
    GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0;
    IF NOT EXISTS (SELECT FROM new_jobs
                   WHERE state IN ('completed', 'dead') AND finished_at IS NOT NULL) THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT FROM old_jobs WHERE state IN ('completed', 'dead')) THEN
        INSERT INTO {schema}.conveyor_finished_deltas (tenant, minute, queue, state, retried, n)
        SELECT tenant, floor(finished_at / 60)::bigint, queue, state, attempt > 1, count(*)
        FROM new_jobs
        WHERE state IN ('completed', 'dead') AND finished_at IS NOT NULL
        GROUP BY 1, 2, 3, 4, 5;
        RETURN NULL;
    END IF;
    INSERT INTO {schema}.conveyor_finished_deltas (tenant, minute, queue, state, retried, n)
    SELECT done.tenant, floor(done.finished_at / 60)::bigint, done.queue, done.state,
           done.attempt > 1, count(*)
    FROM new_jobs AS done JOIN old_jobs AS was ON was.id = done.id
    WHERE done.state IN ('completed', 'dead') AND was.state NOT IN ('completed', 'dead')
      AND done.finished_at IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5;
    RETURN NULL;
END $$;
