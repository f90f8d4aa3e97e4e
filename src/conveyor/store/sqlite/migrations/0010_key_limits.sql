-- Conveyor schema, version 10: limits per key (conveyor/limits/keys.py). A key limit is a
-- conveyor_limits row of kind 'key' named after its task: the caps each key of that task
-- gets, and the strategy for a new job whose key is at its limit.
ALTER TABLE conveyor_limits ADD COLUMN strategy TEXT NOT NULL DEFAULT 'queue';

-- One row per key that has (or recently had) jobs: the queue its next job is in (a claim
-- reads only the keys of the queues it claims from), the round robin's order (`turn`: when
-- the key was last served), its starts in its rate's window (JSON), and whether it is parked
-- (at its limit, or with nothing to claim) and until when. A claim reads only keys that are
-- not parked, oldest turn first, so keys at their limit cost it nothing. Enqueue, and a
-- settle of one of the key's jobs, unpark it; the claim parks it again if it is still full.
CREATE TABLE conveyor_limit_keys (
    task         TEXT NOT NULL,
    limit_key    TEXT NOT NULL,
    queue        TEXT NOT NULL,
    turn         REAL NOT NULL,
    starts       TEXT NOT NULL DEFAULT '[]',
    parked_until REAL,
    at_limit     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (task, limit_key)
) WITHOUT ROWID;
CREATE INDEX conveyor_limit_keys_ready ON conveyor_limit_keys (task, queue, turn)
    WHERE parked_until IS NULL;
CREATE INDEX conveyor_limit_keys_parked ON conveyor_limit_keys (task, parked_until)
    WHERE parked_until IS NOT NULL;

-- A key's jobs by state, in claim order: its next jobs, its running jobs and its next
-- scheduled one, without reading any other key's. Only keyed jobs are in it. (SQLite uses a
-- partial index only when the query repeats its condition: `limit_key = ?` implies this
-- one, a single state would not imply a list of states.)
CREATE INDEX conveyor_jobs_limit_key ON conveyor_jobs
    (task, limit_key, state, priority DESC, run_at, id)
    WHERE limit_key IS NOT NULL;
