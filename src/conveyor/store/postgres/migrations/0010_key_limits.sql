-- Conveyor schema, version 10 (PostgreSQL): limits per key (conveyor/limits/keys.py).
-- A key limit is a conveyor_limits row of kind 'key' named after its task: the caps each key
-- of that task gets, and the strategy for a new job whose key is at its limit.
ALTER TABLE {schema}.conveyor_limits DROP CONSTRAINT IF EXISTS conveyor_limits_kind_check;
ALTER TABLE {schema}.conveyor_limits
    ADD CONSTRAINT conveyor_limits_kind_check CHECK (kind IN ('queue', 'task', 'key'));
ALTER TABLE {schema}.conveyor_limits ADD COLUMN strategy text NOT NULL DEFAULT 'queue'
    CHECK (strategy IN ('queue', 'drop', 'debounce'));

-- One row per key that has (or recently had) jobs: the queue its next job is in (a claim
-- reads only the keys of the queues it claims from), the round robin's order (`turn`: when
-- the key was last served), its starts in its rate's window (JSON), and whether it is parked
-- (at its limit, or with nothing to claim) and until when. A claim reads only keys that are
-- not parked, oldest turn first, so keys at their limit cost it nothing. Enqueue, and a
-- settle of one of the key's jobs, unpark it; the claim parks it again if it is still full.
CREATE TABLE {schema}.conveyor_limit_keys (
    task         text             NOT NULL,
    limit_key    text             NOT NULL,
    queue        text             NOT NULL,
    turn         double precision NOT NULL,
    starts       text             NOT NULL DEFAULT '[]',
    parked_until double precision,
    at_limit     boolean          NOT NULL DEFAULT false,
    PRIMARY KEY (task, limit_key)
);
CREATE INDEX conveyor_limit_keys_ready ON {schema}.conveyor_limit_keys (task, queue, turn)
    WHERE parked_until IS NULL;
CREATE INDEX conveyor_limit_keys_parked ON {schema}.conveyor_limit_keys (task, parked_until)
    WHERE parked_until IS NOT NULL;

-- A key's jobs that are not finished, in claim order: its next jobs, its running jobs and
-- its next scheduled one, without reading any other key's. Only keyed jobs are in it.
CREATE INDEX conveyor_jobs_limit_key ON {schema}.conveyor_jobs
    (task, limit_key, state, priority DESC, run_at, id)
    WHERE limit_key IS NOT NULL AND state IN ('queued', 'scheduled', 'running');
