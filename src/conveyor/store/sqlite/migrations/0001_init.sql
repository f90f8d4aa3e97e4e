-- Conveyor schema, version 1. Numbered the same on every dialect.
CREATE TABLE conveyor_jobs (
    id               TEXT    NOT NULL PRIMARY KEY,
    task             TEXT    NOT NULL,
    queue            TEXT    NOT NULL,
    state            TEXT    NOT NULL,
    priority         INTEGER NOT NULL DEFAULT 0,
    payload          BLOB    NOT NULL,
    tenant           TEXT    NOT NULL DEFAULT '',
    correlation_id   TEXT,
    idempotency_key  TEXT,
    dedupe_key       TEXT,
    unique_for       REAL,
    unique_until     REAL,
    attempt          INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL DEFAULT 3,
    created_at       REAL    NOT NULL,
    run_at           REAL    NOT NULL,
    started_at       REAL,
    finished_at      REAL,
    expires_at       REAL,
    progress         REAL,
    progress_step    TEXT,
    result           BLOB,
    errors           TEXT    NOT NULL DEFAULT '[]',
    worker_id        TEXT,
    worker_host      TEXT,
    lease_token      INTEGER,
    lease_expires_at REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    dead_reason      TEXT,
    batch_id         TEXT,
    parent_id        TEXT
) WITHOUT ROWID;

-- The table is clustered on the time-sortable id, and every index is partial over the rows it
-- serves, so an insert touches two b-trees and each state change only the indexes it must.
-- The claim path: queued jobs of one queue in priority, run_at, id order.
CREATE INDEX conveyor_jobs_claim ON conveyor_jobs (queue, priority DESC, run_at, id)
    WHERE state = 'queued';
-- Maintenance paths.
CREATE INDEX conveyor_jobs_scheduled ON conveyor_jobs (run_at) WHERE state = 'scheduled';
CREATE INDEX conveyor_jobs_lease ON conveyor_jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX conveyor_jobs_expires ON conveyor_jobs (expires_at)
    WHERE state IN ('queued', 'scheduled') AND expires_at IS NOT NULL;
CREATE INDEX conveyor_jobs_finished ON conveyor_jobs (finished_at) WHERE finished_at IS NOT NULL;
-- Idempotency: a key is unique per tenant among jobs that still hold it.
CREATE UNIQUE INDEX conveyor_jobs_dedupe ON conveyor_jobs (tenant, dedupe_key)
    WHERE dedupe_key IS NOT NULL;
-- Reading: rare states, tenants and correlation ids get their own keyset paths; common states
-- (queued, completed) are listed by walking the primary key from the newest id.
CREATE INDEX conveyor_jobs_rare_state ON conveyor_jobs (state, id)
    WHERE state IN ('dead', 'cancelled');
CREATE INDEX conveyor_jobs_tenant ON conveyor_jobs (tenant, id) WHERE tenant != '';
CREATE INDEX conveyor_jobs_correlation ON conveyor_jobs (correlation_id)
    WHERE correlation_id IS NOT NULL;

CREATE TABLE conveyor_queues (
    name       TEXT PRIMARY KEY,
    paused     INTEGER NOT NULL DEFAULT 0,
    updated_at REAL
);

CREATE TABLE conveyor_workers (
    id           TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    queues       TEXT NOT NULL,
    concurrency  INTEGER NOT NULL,
    started_at   REAL NOT NULL,
    heartbeat_at REAL NOT NULL,
    running      INTEGER NOT NULL DEFAULT 0
);
