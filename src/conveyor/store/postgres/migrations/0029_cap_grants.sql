-- Conveyor schema, version 29 (PostgreSQL): cap grants (limits/grants.py). A worker holds,
-- per queue or task concurrency cap it claims under, a leased grant of `slots`: the most of
-- that cap's jobs it may have started at once. It claims (and prefetches) beyond its grant; only the
-- jobs it starts count. Taken and changed under the limit row FOR UPDATE (as the claim), so
-- the live grants plus the claimed jobs of workers without one never exceed the cap.
-- A grant of 0 slots records a worker's demand (fair share). Expired rows are ignored and
-- overwritten; a worker's rows are deleted when it deregisters.
CREATE TABLE {schema}.conveyor_cap_grants (
    kind       text    NOT NULL,  -- 'queue' or 'task'
    name       text    NOT NULL,
    worker_id  text    NOT NULL,
    slots      integer NOT NULL,  -- booked: the most it may have started until it renews
    share      integer NOT NULL,  -- what it was last told to run at most
    wanted     integer NOT NULL,  -- how many it would run (its slots): fair shares
    expires_at double precision NOT NULL,
    PRIMARY KEY (kind, name, worker_id)
);
CREATE INDEX conveyor_cap_grants_worker ON {schema}.conveyor_cap_grants (worker_id);
