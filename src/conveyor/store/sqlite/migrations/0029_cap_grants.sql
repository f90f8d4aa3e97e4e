-- Conveyor schema, version 29: cap grants (limits/grants.py). A worker holds, per queue or
-- task concurrency cap it claims under, a leased grant of `slots`: the most of that cap's
-- jobs it may have started at once. It claims (and prefetches) beyond its grant; only the
-- jobs it starts count. Taken and changed in the write transaction (the limit's lock), so
-- the live grants plus the claimed jobs of workers without one never exceed the cap.
-- A grant of 0 slots records a worker's demand (fair share). Expired rows are ignored and
-- overwritten; a worker's rows are deleted when it deregisters.
CREATE TABLE conveyor_cap_grants (
    kind       TEXT    NOT NULL,  -- 'queue' or 'task'
    name       TEXT    NOT NULL,
    worker_id  TEXT    NOT NULL,
    slots      INTEGER NOT NULL,  -- booked: the most it may have started until it renews
    share      INTEGER NOT NULL,  -- what it was last told to run at most
    wanted     INTEGER NOT NULL,  -- how many it would run (its slots): fair shares
    expires_at REAL    NOT NULL,
    PRIMARY KEY (kind, name, worker_id)
) WITHOUT ROWID;
CREATE INDEX conveyor_cap_grants_worker ON conveyor_cap_grants (worker_id);
