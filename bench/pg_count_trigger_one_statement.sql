-- A variant of the count trigger of job updates (migration 0022's conveyor_count_updated) as
-- ONE statement, for bench/pg_trigger_cpu.py: tried for issue 14 (2026-12-08-pgdrain.md) and
-- not taken (no cheaper: the one statement starts its whole plan at every firing, where
-- version 22 returns early after two or three small ones).
CREATE OR REPLACE FUNCTION {schema}.conveyor_count_updated() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    WITH dead AS (
        SELECT {schema}.conveyor_dead_groups_move(
            ARRAY(SELECT tenant FROM old_jobs
                  WHERE state = 'dead' AND dead_fingerprint IS NOT NULL),
            ARRAY(SELECT dead_fingerprint FROM old_jobs
                  WHERE state = 'dead' AND dead_fingerprint IS NOT NULL),
            ARRAY(SELECT tenant FROM new_jobs
                  WHERE state = 'dead' AND dead_fingerprint IS NOT NULL),
            ARRAY(SELECT dead_fingerprint FROM new_jobs
                  WHERE state = 'dead' AND dead_fingerprint IS NOT NULL))
        WHERE EXISTS (SELECT FROM old_jobs WHERE dead_fingerprint IS NOT NULL)
           OR EXISTS (SELECT FROM new_jobs WHERE dead_fingerprint IS NOT NULL)),
    counted AS (
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
        GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0)
    INSERT INTO {schema}.conveyor_finished_deltas (tenant, minute, queue, state, retried, n)
    SELECT done.tenant, floor(done.finished_at / 60)::bigint, done.queue, done.state,
           done.attempt > 1, count(*)
    FROM new_jobs AS done
    WHERE (SELECT count(*) FROM dead) >= 0
      AND done.state IN ('completed', 'dead') AND done.finished_at IS NOT NULL
      AND NOT EXISTS (SELECT FROM old_jobs AS was
                      WHERE was.id = done.id AND was.state IN ('completed', 'dead'))
    GROUP BY 1, 2, 3, 4, 5;
    RETURN NULL;
END $$;
