-- Conveyor schema, version 6: attempt history (conveyor/history). One row per attempt,
-- written in the same transaction as the settle that ends it, kept on its own retention (so
-- the audit trail outlives pruned jobs); minute rollups per task and queue with counts by
-- outcome and a log-bucket duration histogram (history/rollup.py), kept for weeks; each
-- attempt counts in its minute (width 60), hour (3600) and day (86400), so a 30-day chart
-- sums 30 days, not 43,200 minutes.
CREATE TABLE conveyor_attempts (
    id              INTEGER PRIMARY KEY,
    job_id          TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    task            TEXT NOT NULL,
    queue           TEXT NOT NULL,
    tenant          TEXT,
    worker_id       TEXT,
    host            TEXT,
    pid             INTEGER,
    started_at      REAL NOT NULL,
    ended_at        REAL NOT NULL,
    duration        REAL NOT NULL,
    outcome         TEXT NOT NULL,
    error_type      TEXT,
    error_message   TEXT,
    error_traceback TEXT,
    error_sealed    TEXT,
    fingerprint     TEXT,
    cpu             REAL,
    rss             INTEGER
);

CREATE INDEX conveyor_attempts_job ON conveyor_attempts (job_id, attempt);
-- covering for the error groups: only failed attempts are in it
CREATE INDEX conveyor_attempts_errors ON conveyor_attempts
    (fingerprint, ended_at, tenant, task, queue, outcome, job_id, attempt)
    WHERE fingerprint IS NOT NULL;
CREATE INDEX conveyor_attempts_slow ON conveyor_attempts (duration);
-- the range of every attempt read below 6 hours (workers) and by pruning
CREATE INDEX conveyor_attempts_ended ON conveyor_attempts (ended_at);

CREATE TABLE conveyor_rollups (
    width        INTEGER NOT NULL,
    minute       INTEGER NOT NULL,
    task         TEXT NOT NULL,
    queue        TEXT NOT NULL,
    tenant       TEXT NOT NULL DEFAULT '',
    completed    INTEGER NOT NULL DEFAULT 0,
    retried      INTEGER NOT NULL DEFAULT 0,
    dead         INTEGER NOT NULL DEFAULT 0,
    cancelled    INTEGER NOT NULL DEFAULT 0,
    snoozed      INTEGER NOT NULL DEFAULT 0,
    lost         INTEGER NOT NULL DEFAULT 0,
    duration_sum REAL NOT NULL DEFAULT 0,
    b0 INTEGER NOT NULL DEFAULT 0,
    b1 INTEGER NOT NULL DEFAULT 0,
    b2 INTEGER NOT NULL DEFAULT 0,
    b3 INTEGER NOT NULL DEFAULT 0,
    b4 INTEGER NOT NULL DEFAULT 0,
    b5 INTEGER NOT NULL DEFAULT 0,
    b6 INTEGER NOT NULL DEFAULT 0,
    b7 INTEGER NOT NULL DEFAULT 0,
    b8 INTEGER NOT NULL DEFAULT 0,
    b9 INTEGER NOT NULL DEFAULT 0,
    b10 INTEGER NOT NULL DEFAULT 0,
    b11 INTEGER NOT NULL DEFAULT 0,
    b12 INTEGER NOT NULL DEFAULT 0,
    b13 INTEGER NOT NULL DEFAULT 0,
    b14 INTEGER NOT NULL DEFAULT 0,
    b15 INTEGER NOT NULL DEFAULT 0,
    b16 INTEGER NOT NULL DEFAULT 0,
    b17 INTEGER NOT NULL DEFAULT 0,
    b18 INTEGER NOT NULL DEFAULT 0,
    b19 INTEGER NOT NULL DEFAULT 0,
    b20 INTEGER NOT NULL DEFAULT 0,
    b21 INTEGER NOT NULL DEFAULT 0,
    b22 INTEGER NOT NULL DEFAULT 0,
    b23 INTEGER NOT NULL DEFAULT 0,
    b24 INTEGER NOT NULL DEFAULT 0,
    b25 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (width, minute, task, queue, tenant)
) WITHOUT ROWID;

-- Per worker, tenant and hour: the workers' figures over long ranges without reading every
-- attempt (a worker's settle batch adds one or two rows).
CREATE TABLE conveyor_worker_rollups (
    hour      INTEGER NOT NULL,
    worker_id TEXT NOT NULL,
    tenant    TEXT NOT NULL DEFAULT '',
    host      TEXT,
    pid       INTEGER,
    attempts  INTEGER NOT NULL DEFAULT 0,
    failures  INTEGER NOT NULL DEFAULT 0,
    busy      REAL NOT NULL DEFAULT 0,
    cpu       REAL NOT NULL DEFAULT 0,
    peak_rss  INTEGER,
    PRIMARY KEY (hour, worker_id, tenant)
) WITHOUT ROWID;

-- Per error group, task, queue and tenant, by hour (width 3600) and day (86400): the error
-- groups over long ranges without reading every failed attempt. Failed attempts only.
CREATE TABLE conveyor_error_rollups (
    width       INTEGER NOT NULL,
    minute      INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    task        TEXT NOT NULL,
    queue       TEXT NOT NULL,
    tenant      TEXT NOT NULL DEFAULT '',
    failures    INTEGER NOT NULL DEFAULT 0,
    first_seen  REAL NOT NULL,
    last_seen   REAL NOT NULL,
    PRIMARY KEY (width, minute, fingerprint, task, queue, tenant)
) WITHOUT ROWID;
