-- Conveyor schema, version 14 (PostgreSQL): attempt history's pending rows (issue 15). A settle
-- inserts its attempt rows here, in its own transaction, and nothing else: no secondary
-- index to update, no rollup row to lock. Maintenance (and every history read, first) moves
-- them into conveyor_attempts and adds them to the rollups in one statement
-- (store/postgres/history_fold.py): DELETE ... RETURNING feeds both, so each row is counted
-- exactly once, whoever folds. `bucket`: the duration's histogram bucket (history/rollup.py).
-- Insert-only between folds, emptied by every fold: vacuumed early, like the count deltas.
CREATE TABLE {schema}.conveyor_attempts_pending (
    job_id          text NOT NULL,
    attempt         integer NOT NULL,
    task            text NOT NULL,
    queue           text NOT NULL,
    tenant          text,
    worker_id       text,
    host            text,
    pid             integer,
    started_at      double precision NOT NULL,
    ended_at        double precision NOT NULL,
    duration        double precision NOT NULL,
    outcome         text NOT NULL,
    error_type      text,
    error_message   text,
    error_traceback text,
    error_sealed    text,
    fingerprint     text,
    cpu             double precision,
    rss             bigint,
    bucket          integer NOT NULL
) WITH (autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0.0,
        autovacuum_vacuum_insert_threshold = 1000, autovacuum_vacuum_cost_delay = 0);

-- Tenant isolation, as on conveyor_attempts (0006): binds only restricted roles.
ALTER TABLE {schema}.conveyor_attempts_pending ENABLE ROW LEVEL SECURITY;
CREATE POLICY conveyor_attempts_pending_tenant ON {schema}.conveyor_attempts_pending
    USING (tenant = nullif(current_setting('conveyor.tenant', true), ''))
    WITH CHECK (tenant = nullif(current_setting('conveyor.tenant', true), ''))
