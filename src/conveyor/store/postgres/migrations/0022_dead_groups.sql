-- Conveyor schema, version 22 (PostgreSQL): an error group's dead jobs, kept as jobs change
-- (issue 15; store/dead_groups.py). A job that dies in a failed attempt carries the attempt's
-- error fingerprint (dead_fingerprint: written by the settle that kills it, cleared by a
-- requeue); conveyor_dead_groups counts, per tenant and fingerprint, the dead jobs that carry
-- one. The count triggers of version 11 (one per statement, with its old and new rows) keep
-- it in the statement's own transaction, whatever the write path: a settle, a requeue, a
-- discard, retention, a purge. A statement that touches no such job (a claim, a completion,
-- a retry with attempts left: most of a drain) pays two scans of its transition tables that
-- find nothing.
-- Unlike the job counts (deltas folded later), the counts are upserted in place: dead jobs are
-- few beside a drain's completions, and a read then needs no fold. Concurrent statements that
-- kill jobs of one group wait on its row until the first commits; each statement upserts its
-- keys in (tenant, fingerprint) order, so two of them never lock two rows in opposite orders.
-- The insert trigger is left as it was: no write path inserts a job that is already dead with
-- a fingerprint (it dies by a settle), and an enqueue pays nothing for this.
-- The ALTER TABLE holds conveyor_jobs' exclusive lock until this migration commits: no job
-- changes between the backfill below and the new triggers.
ALTER TABLE {schema}.conveyor_jobs ADD COLUMN dead_fingerprint text;

CREATE TABLE {schema}.conveyor_dead_groups (
    tenant      text NOT NULL,
    fingerprint text NOT NULL,
    n           bigint NOT NULL,
    PRIMARY KEY (tenant, fingerprint)
);
ALTER TABLE {schema}.conveyor_dead_groups ENABLE ROW LEVEL SECURITY;
CREATE POLICY conveyor_dead_groups_tenant ON {schema}.conveyor_dead_groups
    USING (tenant = nullif(current_setting('conveyor.tenant', true), ''));

-- A group's dead jobs in id order (dead_groups.GROUP_DEAD_JOBS), and nothing else's
CREATE INDEX conveyor_jobs_dead_groups ON {schema}.conveyor_jobs (dead_fingerprint, id)
    WHERE dead_fingerprint IS NOT NULL;

-- One statement's net change: -1 per (tenant, fingerprint) of the dead jobs it took away, +1
-- per one it made, upserted in key order
CREATE OR REPLACE FUNCTION {schema}.conveyor_dead_groups_move(
    gone_tenants text[], gone_fingerprints text[], came_tenants text[],
    came_fingerprints text[]) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO {schema}.conveyor_dead_groups AS total (tenant, fingerprint, n)
    SELECT tenant, fingerprint, sum(n) FROM (
        SELECT tenant, fingerprint, -1 AS n FROM unnest(gone_tenants, gone_fingerprints)
            AS gone(tenant, fingerprint)
        UNION ALL
        SELECT tenant, fingerprint, 1 FROM unnest(came_tenants, came_fingerprints)
            AS came(tenant, fingerprint)) AS moved
    GROUP BY tenant, fingerprint HAVING sum(n) <> 0
    ORDER BY tenant, fingerprint
    ON CONFLICT (tenant, fingerprint) DO UPDATE SET n = total.n + excluded.n
$$;

CREATE OR REPLACE FUNCTION {schema}.conveyor_count_updated() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- version 22: the dead jobs per error group (dead_groups), before any early return
    IF EXISTS (SELECT FROM old_jobs WHERE dead_fingerprint IS NOT NULL)
       OR EXISTS (SELECT FROM new_jobs WHERE dead_fingerprint IS NOT NULL) THEN
        PERFORM {schema}.conveyor_dead_groups_move(
            ARRAY(SELECT tenant FROM old_jobs
                  WHERE state = 'dead' AND dead_fingerprint IS NOT NULL),
            ARRAY(SELECT dead_fingerprint FROM old_jobs
                  WHERE state = 'dead' AND dead_fingerprint IS NOT NULL),
            ARRAY(SELECT tenant FROM new_jobs
                  WHERE state = 'dead' AND dead_fingerprint IS NOT NULL),
            ARRAY(SELECT dead_fingerprint FROM new_jobs
                  WHERE state = 'dead' AND dead_fingerprint IS NOT NULL));
    END IF;
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

CREATE OR REPLACE FUNCTION {schema}.conveyor_count_deleted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT FROM deleted WHERE dead_fingerprint IS NOT NULL) THEN
        PERFORM {schema}.conveyor_dead_groups_move(
            ARRAY(SELECT tenant FROM deleted
                  WHERE state = 'dead' AND dead_fingerprint IS NOT NULL),
            ARRAY(SELECT dead_fingerprint FROM deleted
                  WHERE state = 'dead' AND dead_fingerprint IS NOT NULL),
            '{}', '{}');
    END IF;
    WITH tails AS (DELETE FROM {schema}.conveyor_job_tails
                   WHERE tail IN (SELECT reverse(id) FROM deleted))
    INSERT INTO {schema}.conveyor_count_deltas (queue, task, tenant, state, n)
    SELECT queue, task, tenant,
           CASE WHEN state = 'scheduled' AND attempt > 0 THEN 'retrying' ELSE state END,
           -count(*)
    FROM deleted GROUP BY 1, 2, 3, 4;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION {schema}.conveyor_count_truncated() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM {schema}.conveyor_count_deltas;
    DELETE FROM {schema}.conveyor_counts;
    DELETE FROM {schema}.conveyor_tenant_counts;
    DELETE FROM {schema}.conveyor_finished_deltas;
    DELETE FROM {schema}.conveyor_finished;
    DELETE FROM {schema}.conveyor_tenant_finished;
    DELETE FROM {schema}.conveyor_job_tails;
    DELETE FROM {schema}.conveyor_dead_groups;
    RETURN NULL;
END $$;

-- The dead jobs already stored: each takes the fingerprint of its final attempt's death (the
-- newest, where a retried job's attempts repeat its number), folded or pending; the update
-- trigger above counts them.
UPDATE {schema}.conveyor_jobs AS job SET dead_fingerprint = last.fingerprint
FROM (SELECT DISTINCT ON (job_id) job_id, attempt, fingerprint FROM (
          SELECT job_id, attempt, fingerprint, ended_at FROM {schema}.conveyor_attempts
          WHERE outcome = 'dead' AND fingerprint IS NOT NULL
          UNION ALL
          SELECT job_id, attempt, fingerprint, ended_at FROM {schema}.conveyor_attempts_pending
          WHERE outcome = 'dead' AND fingerprint IS NOT NULL) AS a
      ORDER BY job_id, ended_at DESC) AS last
WHERE job.id = last.job_id AND job.attempt = last.attempt AND job.state = 'dead';
