-- Conveyor schema, version 11 (PostgreSQL): exact job counts by queue, task, tenant and state,
-- kept as the jobs change (postgres/counters.py), so that the overview, /metrics, /queues and
-- the stats never count conveyor_jobs. The counted state is the stored one, except that a
-- scheduled job with an attempt behind it counts as 'retrying' (Job.retrying).
--
-- Every statement that inserts, updates or deletes jobs (whichever write path: enqueue, COPY,
-- claim, hand-off, settle, rescue, cancel, requeue, prune...) fires one statement-level trigger
-- that appends its net change per key to conveyor_count_deltas: one row per key the statement
-- moved, never an update of a shared row, so concurrent workers do not queue behind each
-- other's counter rows. The maintenance loop folds the deltas into the totals (one
-- DELETE ... RETURNING feeding two upserts); a read sums totals and deltas, in one snapshot,
-- so it is exact whether or not the fold has run.
-- Two totals: all tenants' (a few rows per queue and task, what the operator's pages read)
-- and each tenant's (what a tenant's pages read, by its own key range).
CREATE TABLE {schema}.conveyor_counts (
    queue  text   NOT NULL,
    task   text   NOT NULL,
    state  text   NOT NULL,
    n      bigint NOT NULL,
    PRIMARY KEY (queue, task, state)
);
CREATE TABLE {schema}.conveyor_tenant_counts (
    tenant text   NOT NULL,
    queue  text   NOT NULL,
    task   text   NOT NULL,
    state  text   NOT NULL,
    n      bigint NOT NULL,
    PRIMARY KEY (tenant, queue, task, state)
);
-- Insert-only between folds, emptied by every fold: vacuum it early.
CREATE TABLE {schema}.conveyor_count_deltas (
    queue  text   NOT NULL,
    task   text   NOT NULL,
    tenant text   NOT NULL,
    state  text   NOT NULL,
    n      bigint NOT NULL
) WITH (autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0.0,
        autovacuum_vacuum_insert_threshold = 1000, autovacuum_vacuum_cost_delay = 0);

-- A tenant's counts are that tenant's, as its jobs are (migration 1's policy); the totals of
-- all tenants are the owner's alone (a restricted role sees no row of them).
ALTER TABLE {schema}.conveyor_counts ENABLE ROW LEVEL SECURITY;
CREATE POLICY conveyor_counts_owner_only ON {schema}.conveyor_counts USING (false);
ALTER TABLE {schema}.conveyor_tenant_counts ENABLE ROW LEVEL SECURITY;
CREATE POLICY conveyor_tenant_counts_tenant ON {schema}.conveyor_tenant_counts
    USING (tenant = nullif(current_setting('conveyor.tenant', true), ''));
ALTER TABLE {schema}.conveyor_count_deltas ENABLE ROW LEVEL SECURITY;
CREATE POLICY conveyor_count_deltas_tenant ON {schema}.conveyor_count_deltas
    USING (tenant = nullif(current_setting('conveyor.tenant', true), ''));

-- The triggers run as the schema's owner (SECURITY DEFINER), so a tenant role that may write
-- its own jobs moves their counts without rights on the counters; every name is qualified.
CREATE FUNCTION {schema}.conveyor_count_inserted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO {schema}.conveyor_count_deltas (queue, task, tenant, state, n)
    SELECT queue, task, tenant,
           CASE WHEN state = 'scheduled' AND attempt > 0 THEN 'retrying' ELSE state END,
           count(*)
    FROM inserted GROUP BY 1, 2, 3, 4;
    RETURN NULL;
END $$;

CREATE FUNCTION {schema}.conveyor_count_deleted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO {schema}.conveyor_count_deltas (queue, task, tenant, state, n)
    SELECT queue, task, tenant,
           CASE WHEN state = 'scheduled' AND attempt > 0 THEN 'retrying' ELSE state END,
           -count(*)
    FROM deleted GROUP BY 1, 2, 3, 4;
    RETURN NULL;
END $$;

-- An update writes only the keys whose count changed: a heartbeat or a progress report
-- (no change of state) appends nothing.
CREATE FUNCTION {schema}.conveyor_count_updated() RETURNS trigger
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
    RETURN NULL;
END $$;

CREATE FUNCTION {schema}.conveyor_count_truncated() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM {schema}.conveyor_count_deltas;
    DELETE FROM {schema}.conveyor_counts;
    DELETE FROM {schema}.conveyor_tenant_counts;
    RETURN NULL;
END $$;

-- (A trigger with transition tables takes one event: three of them.)
CREATE TRIGGER conveyor_count_inserted AFTER INSERT ON {schema}.conveyor_jobs
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.conveyor_count_inserted();
CREATE TRIGGER conveyor_count_updated AFTER UPDATE ON {schema}.conveyor_jobs
    REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.conveyor_count_updated();
CREATE TRIGGER conveyor_count_deleted AFTER DELETE ON {schema}.conveyor_jobs
    REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.conveyor_count_deleted();
CREATE TRIGGER conveyor_count_truncated AFTER TRUNCATE ON {schema}.conveyor_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.conveyor_count_truncated();

-- The jobs already stored, counted once. The triggers above hold a lock on conveyor_jobs that
-- keeps writers out until this migration commits, so nothing is counted twice or missed.
INSERT INTO {schema}.conveyor_tenant_counts (tenant, queue, task, state, n)
SELECT tenant, queue, task,
       CASE WHEN state = 'scheduled' AND attempt > 0 THEN 'retrying' ELSE state END, count(*)
FROM {schema}.conveyor_jobs GROUP BY 1, 2, 3, 4;
INSERT INTO {schema}.conveyor_counts (queue, task, state, n)
SELECT queue, task, state, sum(n) FROM {schema}.conveyor_tenant_counts GROUP BY 1, 2, 3;
