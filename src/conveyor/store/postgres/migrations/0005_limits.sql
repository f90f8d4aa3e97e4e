-- Conveyor schema, version 5 (PostgreSQL): flow control (conveyor/limits/model.py). One row
-- per limited queue or task; the claim reads these only for names that have a row, under a
-- transaction-scoped advisory lock per limit, so concurrent claimers count exactly.
-- "Running" is never stored: it is counted from running jobs with live leases, so a dead
-- worker's slot frees itself when its lease runs out. Starts are logged only for limits
-- with a rate, and only for as long as their window (the claim deletes older ones).
CREATE TABLE {schema}.conveyor_limits (
    kind          text             NOT NULL CHECK (kind IN ('queue', 'task')),
    name          text             NOT NULL,
    concurrency   integer,
    rate          integer,
    period        double precision,
    source        text             NOT NULL DEFAULT 'operator',
    blocked_until double precision,
    updated_at    double precision NOT NULL,
    PRIMARY KEY (kind, name)
);

CREATE TABLE {schema}.conveyor_limit_starts (
    kind       text             NOT NULL,
    name       text             NOT NULL,
    started_at double precision NOT NULL
);
CREATE INDEX conveyor_limit_starts_window
    ON {schema}.conveyor_limit_starts (kind, name, started_at);

-- A job's limit key (a customer, an account): set at enqueue from the task's key function.
ALTER TABLE {schema}.conveyor_jobs ADD COLUMN limit_key text;
