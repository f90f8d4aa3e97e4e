-- Conveyor schema, version 35 (PostgreSQL): where each queue's queued jobs begin, kept so that
-- the queues page's oldest-queued lookup (counters.OLDEST_QUEUED_ALL, _TENANT) starts its
-- index probes there instead of at the front of the queue's claim-index range (issue 16).
-- While workers drain, that front holds the entries of every job claimed since the last
-- VACUUM of conveyor_jobs (autovacuum's pace at best; for ever behind a long transaction),
-- and a probe from the front walks them all: its pages, and a heap visit for each entry not
-- yet dead to every snapshot (2M jobs, 2 workers draining: 26-107 ms per read,
-- bench/results/2026-12-08-q16.md, 2026-12-09-pgq.md).
--
-- conveyor_queue_heads (queue, priority) -> run_at: no queued job of that queue and
-- priority runs before run_at, as of the last fold. A job that becomes queued after it
-- (enqueued, promoted, retried, rescued, released, requeued, moved) carries its own
-- (priority, run_at) in the count delta its statement already writes (the new columns:
-- NULL unless it is a 'queued' row's), in the same transaction as the job: a reader sees
-- either both or neither, and a fold moves them together. So, in any one snapshot, every
-- queued job of (queue, priority) runs at or after the least run_at of the head row and the
-- deltas of that (queue, priority): the lookup probes from there, one descent per (queue,
-- priority). The fold (counters.FOLD) moves the deltas' starts into the heads and, in the
-- same statement (one snapshot), moves each head of a queue the deltas touched to its first
-- queued job (deleting heads with none left). Only folds write the heads, one at a time
-- (counters.FOLD_LOCK). Claims and settles write nothing more: their delta rows carry NULLs.
-- First, before any other table: SHARE on the jobs. The writers in flight (their deltas
-- carry no start: the functions below are not theirs) finish first, and none begins until
-- this commits, so every queued job is either in the heads filled at the end or writes its
-- start. Taken before the deltas' ALTER: writers lock the jobs, then the deltas (their
-- triggers), and the other order deadlocked a live writer or this migration.
LOCK TABLE {schema}.conveyor_jobs IN SHARE MODE;

CREATE TABLE {schema}.conveyor_queue_heads (
    queue    text             NOT NULL,
    priority integer          NOT NULL,
    run_at   double precision NOT NULL,
    PRIMARY KEY (queue, priority)
);
-- all tenants' jobs: the owner's alone, as conveyor_counts
ALTER TABLE {schema}.conveyor_queue_heads ENABLE ROW LEVEL SECURITY;
CREATE POLICY conveyor_queue_heads_owner_only ON {schema}.conveyor_queue_heads USING (false);

ALTER TABLE {schema}.conveyor_count_deltas ADD COLUMN priority integer,
    ADD COLUMN run_at double precision;

-- version 20's body, the queued rows grouped by priority with their first run_at
CREATE OR REPLACE FUNCTION {schema}.conveyor_count_inserted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    WITH tails AS (INSERT INTO {schema}.conveyor_job_tails (tail, tenant)
                   SELECT reverse(id), tenant FROM inserted)
    INSERT INTO {schema}.conveyor_count_deltas (queue, task, tenant, state, n, priority, run_at)
    SELECT queue, task, tenant,
           CASE WHEN state = 'scheduled' AND attempt > 0 THEN 'retrying' ELSE state END,
           count(*), CASE WHEN state = 'queued' THEN priority END,
           min(run_at) FILTER (WHERE state = 'queued')
    FROM inserted GROUP BY 1, 2, 3, 4, 6;
    RETURN NULL;
END $$;

-- version 22's body; the new rows that are queued grouped by priority with their first
-- run_at (a claim's or a settle's rows: none, so its delta rows are the same as before)
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
    INSERT INTO {schema}.conveyor_count_deltas (queue, task, tenant, state, n, priority, run_at)
    SELECT queue, task, tenant, state, sum(n), priority, min(run_at) FROM (
        SELECT queue, task, tenant,
               CASE WHEN state = 'scheduled' AND attempt > 0 THEN 'retrying' ELSE state END
                   AS state, -1 AS n, NULL::integer AS priority, NULL::double precision AS run_at
        FROM old_jobs
        UNION ALL
        SELECT queue, task, tenant,
               CASE WHEN state = 'scheduled' AND attempt > 0 THEN 'retrying' ELSE state END,
               1, CASE WHEN state = 'queued' THEN priority END,
               CASE WHEN state = 'queued' THEN run_at END
        FROM new_jobs) AS moved
    GROUP BY queue, task, tenant, state, priority HAVING sum(n) <> 0;
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

-- A fold of a release before this one (a worker not restarted yet after `conveyor migrate`)
-- deletes the deltas without moving their starts into the heads: this trigger does, so no
-- start is lost whichever release folds. This release's FOLD moves them itself, in the same
-- statement as it moves the heads on, and says so first (counters.FOLD_LOCK).
CREATE FUNCTION {schema}.conveyor_queue_heads_kept() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF current_setting('conveyor.fold', true) = 'heads' THEN
        RETURN NULL;
    END IF;
    INSERT INTO {schema}.conveyor_queue_heads AS head (queue, priority, run_at)
    SELECT queue, priority, min(run_at) FROM folded WHERE priority IS NOT NULL
    GROUP BY queue, priority ORDER BY queue, priority
    ON CONFLICT (queue, priority) DO UPDATE SET run_at = least(head.run_at, excluded.run_at);
    RETURN NULL;
END $$;
CREATE TRIGGER conveyor_queue_heads_kept AFTER DELETE ON {schema}.conveyor_count_deltas
    REFERENCING OLD TABLE AS folded FOR EACH STATEMENT
    EXECUTE FUNCTION {schema}.conveyor_queue_heads_kept();

-- The heads of the jobs queued now: each (queue, priority)'s first entry in the claim index,
-- skipping from one to the next (one descent each: milliseconds, where grouping every queued
-- job held the lock for seconds at millions of jobs).
WITH RECURSIVE head(queue, priority, run_at) AS (
    (SELECT queue, priority, run_at FROM {schema}.conveyor_jobs WHERE state = 'queued'
     ORDER BY queue, priority DESC, run_at LIMIT 1)
    UNION ALL
    SELECT next.queue, next.priority, next.run_at FROM head CROSS JOIN LATERAL (
        (SELECT queue, priority, run_at FROM {schema}.conveyor_jobs
         WHERE state = 'queued' AND queue = head.queue AND priority < head.priority
         ORDER BY priority DESC, run_at LIMIT 1)
        UNION ALL
        (SELECT queue, priority, run_at FROM {schema}.conveyor_jobs
         WHERE state = 'queued' AND queue > head.queue
         ORDER BY queue, priority DESC, run_at LIMIT 1)
        LIMIT 1) AS next)
INSERT INTO {schema}.conveyor_queue_heads (queue, priority, run_at)
SELECT queue, priority, run_at FROM head;
