-- Conveyor schema, version 15 (SQLite): operator views at size (issue 16).
-- A batch's jobs, newest first: one range of this index (only rows of a batch are in it)
-- instead of a walk of the whole table in id order.
CREATE INDEX conveyor_jobs_batch ON conveyor_jobs (batch_id, id) WHERE batch_id IS NOT NULL;
-- The running jobs, newest first (state=running, alone or with a queue or task), as on
-- PostgreSQL: only the few rows workers hold, so a page of them is a walk of this small index
-- that stops at its LIMIT (the index of running leases is in lease order: read whole, then
-- sorted). The lists write the state filter as this predicate, literally (store/filters.py).
CREATE INDEX conveyor_jobs_running_ids ON conveyor_jobs (id) WHERE state = 'running';
-- Of the jobs a worker holds claimed ahead (prefetched, not started), how many per queue
-- ({"queue": n} as JSON): the queues' "running N (+M claimed)".
ALTER TABLE conveyor_workers ADD COLUMN claimed_queues TEXT NOT NULL DEFAULT '{}';
