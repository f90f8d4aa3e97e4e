-- Conveyor schema, version 37 (PostgreSQL): a batch's jobs kept beside them, so that the jobs
-- list filtered by batch (queries.LIST_CLAUSES["batch_id"]) reads one index range, not the
-- table (issue 16).
--
-- Version 1 indexed batch_id with a BRIN: a summary per 16 pages, cheap for an enqueue, but
-- exact only while the rows of a batch sit where their insert put them. A claim or a settle
-- changes indexed columns, so none of a drain's updates is HOT and each moves the row's new
-- version to wherever there is room: after ~2M drained updates at 10M jobs, batch-77's 500
-- jobs matched 1,115 of ~16,250 block ranges, and the read went through 17,835 pages of
-- them (62.9 ms p50 idle, 242 ms p95 while 2 workers drained: bench/results/
-- 2026-12-10-batch-brin.txt). A btree on conveyor_jobs.batch_id would be exact but would take
-- an entry per batched job at every one of those non-HOT updates too.
--
-- conveyor_job_batches (batch_id, job_id): one row per job that has a batch, written once by
-- the statement that inserts the job and deleted by the statement that deletes it, as the
-- tails of version 20 (the count triggers, one per statement with its rows: every write path,
-- the COPY of enqueue_many included, in the same transaction as the jobs). No job's update
-- touches it: a job's batch never changes. The list reads the batch's range of its primary
-- key, newest id first, and fetches each job by the jobs' primary key.
--
-- First, before any other table: the BRIN goes (no read uses it now, and every insert and
-- every non-HOT update paid for it), and its drop holds conveyor_jobs' ACCESS EXCLUSIVE lock
-- until this commits, as version 20's did: the writers in flight (whose triggers do not write
-- batches yet) finish first and none begins, so every job with a batch is either copied below
-- or written by the new trigger. Readers wait too, for one scan of the jobs (10M jobs: 3.2 s
-- warm, bench/results/2026-12-11-pgbatch.md). SHARE would let them read on, but the drop
-- would then upgrade it, and a transaction that had read the jobs and then waited to write
-- them would deadlock with this one.
DROP INDEX {schema}.conveyor_jobs_batch;

-- the tenant: the row policy's column, as the tails'. Insert-only, as the tails.
CREATE TABLE {schema}.conveyor_job_batches (
    batch_id text NOT NULL,
    job_id   text NOT NULL,
    tenant   text NOT NULL
) WITH (fillfactor = 100, autovacuum_vacuum_scale_factor = 0.01,
        autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_insert_scale_factor = 0.05);
ALTER TABLE {schema}.conveyor_job_batches ENABLE ROW LEVEL SECURITY;
CREATE POLICY conveyor_job_batches_tenant ON {schema}.conveyor_job_batches
    USING (tenant = nullif(current_setting('conveyor.tenant', true), ''));
-- The batch filter reads it as the caller (the tails are only read inside the triggers):
-- every role that may read the jobs may read it, as a tenant role granted the schema's
-- tables before this version (README) would otherwise fail the filtered list.
DO $grant$
DECLARE
    grantee_name text;
BEGIN
    FOR grantee_name IN
        SELECT DISTINCT CASE WHEN granted.grantee = 0 THEN 'PUBLIC'
                             ELSE quote_ident(pg_get_userbyid(granted.grantee)) END
        FROM pg_class AS jobs, aclexplode(jobs.relacl) AS granted
        WHERE jobs.oid = '{schema}.conveyor_jobs'::regclass
          AND granted.privilege_type = 'SELECT'
    LOOP
        EXECUTE 'GRANT SELECT ON {schema}.conveyor_job_batches TO ' || grantee_name;
    END LOOP;
END $grant$;

-- copied before the key is built: one sort of the rows, not an index insert per row
INSERT INTO {schema}.conveyor_job_batches (batch_id, job_id, tenant)
SELECT batch_id, id, tenant FROM {schema}.conveyor_jobs WHERE batch_id IS NOT NULL;
ALTER TABLE {schema}.conveyor_job_batches ADD PRIMARY KEY (batch_id, job_id);
-- its statistics now, not at autovacuum's first pass: the delete trigger below joins the
-- statement's rows to it (unanalysed, the planner guesses 1 in 200 rows per batch id)
ANALYZE {schema}.conveyor_job_batches;

-- version 35's body; the inserted jobs' batches, in the same statement
CREATE OR REPLACE FUNCTION {schema}.conveyor_count_inserted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    WITH tails AS (INSERT INTO {schema}.conveyor_job_tails (tail, tenant)
                   SELECT reverse(id), tenant FROM inserted),
         batches AS (INSERT INTO {schema}.conveyor_job_batches (batch_id, job_id, tenant)
                     SELECT batch_id, id, tenant FROM inserted WHERE batch_id IS NOT NULL)
    INSERT INTO {schema}.conveyor_count_deltas (queue, task, tenant, state, n, priority, run_at)
    SELECT queue, task, tenant,
           CASE WHEN state = 'scheduled' AND attempt > 0 THEN 'retrying' ELSE state END,
           count(*), CASE WHEN state = 'queued' THEN priority END,
           min(run_at) FILTER (WHERE state = 'queued')
    FROM inserted GROUP BY 1, 2, 3, 4, 6;
    RETURN NULL;
END $$;

-- version 22's body; the deleted jobs' batches, in the same statement (retention, a purge):
-- each found by its key, none when the statement deleted no job of a batch
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
    IF EXISTS (SELECT FROM deleted WHERE batch_id IS NOT NULL) THEN
        DELETE FROM {schema}.conveyor_job_batches AS kept
        USING (SELECT batch_id, id FROM deleted WHERE batch_id IS NOT NULL) AS gone
        WHERE kept.batch_id = gone.batch_id AND kept.job_id = gone.id;
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
    DELETE FROM {schema}.conveyor_job_batches;
    RETURN NULL;
END $$;
