-- Conveyor schema, version 1 (PostgreSQL). Numbered the same on every dialect.
-- `{schema}` is the store's schema (the URL's ?schema=, else public), quoted by the store.
-- Times are double precision epoch seconds, as the store interface speaks them.
CREATE TABLE {schema}.conveyor_jobs (
    id               text             PRIMARY KEY,
    task             text             NOT NULL,
    queue            text             NOT NULL,
    state            text             NOT NULL CHECK (state IN ('scheduled', 'queued', 'running',
                                                                'completed', 'dead', 'cancelled')),
    priority         integer          NOT NULL DEFAULT 0,
    payload          bytea            NOT NULL,
    tenant           text             NOT NULL DEFAULT '',
    correlation_id   text,
    idempotency_key  text,
    dedupe_key       text,
    unique_for       double precision,
    unique_until     double precision,
    attempt          integer          NOT NULL DEFAULT 0,
    max_attempts     integer          NOT NULL DEFAULT 3,
    -- Defaults: the transaction's clock, for rows a bulk COPY sends without times.
    created_at       double precision NOT NULL DEFAULT date_part('epoch', now()),
    run_at           double precision NOT NULL DEFAULT date_part('epoch', now()),
    started_at       double precision,
    finished_at      double precision,
    expires_at       double precision,
    progress         double precision,
    progress_step    text,
    result           bytea,
    errors           jsonb            NOT NULL DEFAULT '[]',
    worker_id        text,
    worker_host      text,
    lease_token      bigint,
    lease_expires_at double precision,
    cancel_requested boolean          NOT NULL DEFAULT false,
    dead_reason      text,
    batch_id         text,
    parent_id        text
);

-- High churn: every job is inserted, updated three or four times and deleted by prune.
-- Vacuum early and often so dead tuples do not pile up in the claim indexes, and leave room
-- on each page for updated row versions.
ALTER TABLE {schema}.conveyor_jobs SET (
    fillfactor = 85,
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_delay = 1
);

-- The claim path: each queue's queued jobs in priority, run_at, id order. A claim from any
-- queue finds the queues with queued jobs by skipping through this same index, so a new job
-- updates two indexes (this and the primary key): every index on a queued row is paid for
-- by every enqueue.
CREATE INDEX conveyor_jobs_claim_queue ON {schema}.conveyor_jobs (queue, priority DESC, run_at, id)
    WHERE state = 'queued';
-- Maintenance paths, each a partial index over the rows it can touch.
CREATE INDEX conveyor_jobs_scheduled ON {schema}.conveyor_jobs (run_at) WHERE state = 'scheduled';
CREATE INDEX conveyor_jobs_running ON {schema}.conveyor_jobs (worker_id, lease_expires_at)
    WHERE state = 'running';
CREATE INDEX conveyor_jobs_lease ON {schema}.conveyor_jobs (lease_expires_at)
    WHERE state = 'running';
CREATE INDEX conveyor_jobs_expires ON {schema}.conveyor_jobs (expires_at)
    WHERE state IN ('queued', 'scheduled') AND expires_at IS NOT NULL;
CREATE INDEX conveyor_jobs_finished ON {schema}.conveyor_jobs (finished_at)
    WHERE finished_at IS NOT NULL;
-- Idempotency: a key is unique per tenant among jobs that still hold it.
CREATE UNIQUE INDEX conveyor_jobs_dedupe ON {schema}.conveyor_jobs (tenant, dedupe_key)
    WHERE dedupe_key IS NOT NULL;
-- Reading: keyset pages of finished jobs by state (the active states are read through their
-- own partial indexes above, or the primary key), by correlation id, by batch.
CREATE INDEX conveyor_jobs_state ON {schema}.conveyor_jobs (state, id)
    WHERE state IN ('completed', 'dead', 'cancelled');
CREATE INDEX conveyor_jobs_correlation ON {schema}.conveyor_jobs (correlation_id)
    WHERE correlation_id IS NOT NULL;
-- A batch's jobs: batch ids are time-ordered (UUIDv7) and rows go in at the end of the table,
-- so a BRIN index finds a batch's few block ranges, at almost no cost to each insert (a btree
-- here cost bulk enqueue a sixth of its speed).
CREATE INDEX conveyor_jobs_batch ON {schema}.conveyor_jobs USING brin (batch_id)
    WITH (pages_per_range = 16, autosummarize = on) WHERE batch_id IS NOT NULL;

-- Tenant isolation. It binds only roles that neither own the table nor have BYPASSRLS (an
-- API role for tenant tokens, say); the store's own role owns the table and sees every row.
-- The tenant comes from set_config('conveyor.tenant', ..., true) in the same transaction.
-- Unset (NULL), or reset to '' at the end of an earlier transaction: no row matches, so a
-- restricted role fails closed.
ALTER TABLE {schema}.conveyor_jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY conveyor_tenant_isolation ON {schema}.conveyor_jobs
    USING (tenant = nullif(current_setting('conveyor.tenant', true), ''))
    WITH CHECK (tenant = nullif(current_setting('conveyor.tenant', true), ''));

CREATE TABLE {schema}.conveyor_queues (
    name       text PRIMARY KEY,
    paused     boolean NOT NULL DEFAULT false,
    updated_at double precision
);

CREATE TABLE {schema}.conveyor_workers (
    id           text PRIMARY KEY,
    host         text NOT NULL,
    pid          integer NOT NULL,
    queues       text NOT NULL,
    concurrency  integer NOT NULL,
    started_at   double precision NOT NULL,
    heartbeat_at double precision NOT NULL,
    running      integer NOT NULL DEFAULT 0
);
