-- Conveyor schema, version 5: flow control (conveyor/limits/model.py). One row per limited
-- queue or task; the claim reads these only for names that have a row. "Running" is never
-- stored: it is counted from running jobs with live leases, so a dead worker's slot frees
-- itself when its lease runs out. Starts are logged only for limits with a rate, and only
-- for as long as their window (the claim deletes older ones).
CREATE TABLE conveyor_limits (
    kind          TEXT NOT NULL,               -- 'queue' or 'task'
    name          TEXT NOT NULL,
    concurrency   INTEGER,                     -- at most this many running; NULL: no cap
    rate          INTEGER,                     -- at most this many starts ...
    period        REAL,                        -- ... in any sliding window of this many seconds
    source        TEXT NOT NULL DEFAULT 'operator',  -- 'code' or 'operator'
    blocked_until REAL,                        -- no starts before this (RateLimited)
    updated_at    REAL NOT NULL,
    PRIMARY KEY (kind, name)
) WITHOUT ROWID;

CREATE TABLE conveyor_limit_starts (
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    started_at REAL NOT NULL
);
CREATE INDEX conveyor_limit_starts_window ON conveyor_limit_starts (kind, name, started_at);

-- A job's limit key (a customer, an account): set at enqueue from the task's key function.
ALTER TABLE conveyor_jobs ADD COLUMN limit_key TEXT;
