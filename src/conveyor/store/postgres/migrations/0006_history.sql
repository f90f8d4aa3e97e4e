-- Conveyor schema, version 6 (PostgreSQL): attempt history (conveyor/history). One row per attempt,
-- written in the same transaction as the settle that ends it, kept on its own retention (so
-- the audit trail outlives pruned jobs); minute rollups per task and queue with counts by
-- outcome and a log-bucket duration histogram (history/rollup.py), kept for weeks (integer
-- counts: their sums are bigint, which PostgreSQL adds much faster than numeric); each
-- attempt counts in its minute (width 60), hour (3600) and day (86400), so a 30-day chart
-- sums 30 days, not 43,200 minutes.
CREATE TABLE {schema}.conveyor_attempts (
    id              bigserial PRIMARY KEY,
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
    rss             bigint
);

CREATE INDEX conveyor_attempts_job ON {schema}.conveyor_attempts (job_id, attempt);
-- covering for the error groups: only failed attempts are in it
CREATE INDEX conveyor_attempts_errors ON {schema}.conveyor_attempts
    (fingerprint, ended_at, tenant, task, queue, outcome, job_id, attempt)
    WHERE fingerprint IS NOT NULL;
CREATE INDEX conveyor_attempts_slow ON {schema}.conveyor_attempts (duration);
-- the range of every attempt read below 6 hours (workers) and by pruning
CREATE INDEX conveyor_attempts_ended ON {schema}.conveyor_attempts (ended_at);

-- Tenant isolation, as on conveyor_jobs (0001): binds only restricted roles.
ALTER TABLE {schema}.conveyor_attempts ENABLE ROW LEVEL SECURITY;
CREATE POLICY conveyor_attempts_tenant ON {schema}.conveyor_attempts
    USING (tenant = nullif(current_setting('conveyor.tenant', true), ''))
    WITH CHECK (tenant = nullif(current_setting('conveyor.tenant', true), ''));

CREATE TABLE {schema}.conveyor_rollups (
    width        bigint NOT NULL,
    minute       bigint NOT NULL,
    task         text NOT NULL,
    queue        text NOT NULL,
    tenant       text NOT NULL DEFAULT '',
    completed    integer NOT NULL DEFAULT 0,
    retried      integer NOT NULL DEFAULT 0,
    dead         integer NOT NULL DEFAULT 0,
    cancelled    integer NOT NULL DEFAULT 0,
    snoozed      integer NOT NULL DEFAULT 0,
    lost         integer NOT NULL DEFAULT 0,
    duration_sum double precision NOT NULL DEFAULT 0,
    b0 integer NOT NULL DEFAULT 0,
    b1 integer NOT NULL DEFAULT 0,
    b2 integer NOT NULL DEFAULT 0,
    b3 integer NOT NULL DEFAULT 0,
    b4 integer NOT NULL DEFAULT 0,
    b5 integer NOT NULL DEFAULT 0,
    b6 integer NOT NULL DEFAULT 0,
    b7 integer NOT NULL DEFAULT 0,
    b8 integer NOT NULL DEFAULT 0,
    b9 integer NOT NULL DEFAULT 0,
    b10 integer NOT NULL DEFAULT 0,
    b11 integer NOT NULL DEFAULT 0,
    b12 integer NOT NULL DEFAULT 0,
    b13 integer NOT NULL DEFAULT 0,
    b14 integer NOT NULL DEFAULT 0,
    b15 integer NOT NULL DEFAULT 0,
    b16 integer NOT NULL DEFAULT 0,
    b17 integer NOT NULL DEFAULT 0,
    b18 integer NOT NULL DEFAULT 0,
    b19 integer NOT NULL DEFAULT 0,
    b20 integer NOT NULL DEFAULT 0,
    b21 integer NOT NULL DEFAULT 0,
    b22 integer NOT NULL DEFAULT 0,
    b23 integer NOT NULL DEFAULT 0,
    b24 integer NOT NULL DEFAULT 0,
    b25 integer NOT NULL DEFAULT 0,
    PRIMARY KEY (width, minute, task, queue, tenant)
);

-- Per worker, tenant and hour: the workers' figures over long ranges without reading every
-- attempt (a worker's settle batch adds one or two rows).
CREATE TABLE {schema}.conveyor_worker_rollups (
    hour      bigint NOT NULL,
    worker_id TEXT NOT NULL,
    tenant    TEXT NOT NULL DEFAULT '',
    host      TEXT,
    pid       bigint,
    attempts  integer NOT NULL DEFAULT 0,
    failures  integer NOT NULL DEFAULT 0,
    busy      double precision NOT NULL DEFAULT 0,
    cpu       double precision NOT NULL DEFAULT 0,
    peak_rss  bigint,
    PRIMARY KEY (hour, worker_id, tenant)
);

-- Per error group, task, queue and tenant, by hour (width 3600) and day (86400): the error
-- groups over long ranges without reading every failed attempt. Failed attempts only.
CREATE TABLE {schema}.conveyor_error_rollups (
    width       bigint NOT NULL,
    minute      bigint NOT NULL,
    fingerprint TEXT NOT NULL,
    task        TEXT NOT NULL,
    queue       TEXT NOT NULL,
    tenant      TEXT NOT NULL DEFAULT '',
    failures    integer NOT NULL DEFAULT 0,
    first_seen  double precision NOT NULL,
    last_seen   double precision NOT NULL,
    PRIMARY KEY (width, minute, fingerprint, task, queue, tenant)
)
