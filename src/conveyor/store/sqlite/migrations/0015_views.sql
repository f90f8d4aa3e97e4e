-- Conveyor schema, version 15 (SQLite): operator views at size (issue 16).
-- A batch's jobs, newest first: one range of this index (only rows of a batch are in it)
-- instead of a walk of the whole table in id order.
CREATE INDEX conveyor_jobs_batch ON conveyor_jobs (batch_id, id) WHERE batch_id IS NOT NULL;
-- Of the jobs a worker holds claimed ahead (prefetched, not started), how many per queue
-- ({"queue": n} as JSON): the queues' "running N (+M claimed)".
ALTER TABLE conveyor_workers ADD COLUMN claimed_queues TEXT NOT NULL DEFAULT '{}';
