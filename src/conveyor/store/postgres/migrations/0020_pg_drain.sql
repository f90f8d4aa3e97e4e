-- Conveyor schema, version 20 (PostgreSQL): a drain writes fewer index entries.
--
-- Find a job by the end of its id (lookup.py, version 8) read the expression index
-- conveyor_jobs_id_tail on conveyor_jobs. A claim or a settle changes indexed columns, so no
-- such update is HOT and each wrote a new entry in every index of the table, that one too: two
-- entries per job run (and the reverse() of its id computed each time) for a key that never
-- changes. The tails now live in a table of their own, written once when a job is inserted
-- and deleted with it, each by the statement that inserts or deletes the jobs (the count
-- triggers of version 11 already run once per such statement with its rows: they write the
-- tails too, in the same statement as the counts), so every write path keeps them exact and
-- a claim or a settle never touches them.
-- Dropping the old index first takes conveyor_jobs' exclusive lock until this migration
-- commits: no job is inserted or deleted between the copy of the tails below and the new
-- triggers.
DROP INDEX {schema}.conveyor_jobs_id_tail;

-- A job's id reversed (so that a suffix of the id is a prefix here) and its tenant (the
-- lookup's tenant filter and row policy). Insert-only: a row goes when its job is deleted.
CREATE TABLE {schema}.conveyor_job_tails (
    tail   text NOT NULL,
    tenant text NOT NULL
) WITH (fillfactor = 100, autovacuum_vacuum_scale_factor = 0.01,
        autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_insert_scale_factor = 0.05);
-- text_pattern_ops: `LIKE 'reversed-tail%'` is an index range scan whatever the collation,
-- and its `=` finds a deleted job's row. The name is version 8's: the same lookup's index.
CREATE INDEX conveyor_jobs_id_tail ON {schema}.conveyor_job_tails (tail text_pattern_ops);
ALTER TABLE {schema}.conveyor_job_tails ENABLE ROW LEVEL SECURITY;
CREATE POLICY conveyor_job_tails_tenant ON {schema}.conveyor_job_tails
    USING (tenant = nullif(current_setting('conveyor.tenant', true), ''));

INSERT INTO {schema}.conveyor_job_tails (tail, tenant)
SELECT reverse(id), tenant FROM {schema}.conveyor_jobs;

CREATE OR REPLACE FUNCTION {schema}.conveyor_count_inserted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    WITH tails AS (INSERT INTO {schema}.conveyor_job_tails (tail, tenant)
                   SELECT reverse(id), tenant FROM inserted)
    INSERT INTO {schema}.conveyor_count_deltas (queue, task, tenant, state, n)
    SELECT queue, task, tenant,
           CASE WHEN state = 'scheduled' AND attempt > 0 THEN 'retrying' ELSE state END,
           count(*)
    FROM inserted GROUP BY 1, 2, 3, 4;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION {schema}.conveyor_count_deleted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
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
    RETURN NULL;
END $$;

-- The running jobs' list (version 15) had an index of its own, conveyor_jobs_running_ids:
-- a third partial index over the running rows, beside conveyor_jobs_running and
-- conveyor_jobs_lease, and so an entry more that every claim wrote. Those two already hold
-- exactly the running rows (the jobs workers hold, never the finished millions): a page of
-- them reads one of them whole and sorts it, as cheap at any table size.
DROP INDEX {schema}.conveyor_jobs_running_ids;
