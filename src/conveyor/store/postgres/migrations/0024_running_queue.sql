-- Conveyor schema, version 24 (PostgreSQL): one queue's running jobs, a page at a time
-- (issue 16).
--
-- `GET /api/v1/jobs?queue=q7&state=running` read every running row through the lease index
-- (conveyor_jobs_lease, WHERE state = 'running'), kept the queue's and sorted them by id:
-- 211/255 ms p50/p95 at 10M jobs with 49,995 running rows. No index on the running rows led
-- with the queue.
--
-- Each index on the running rows costs every claim, heartbeat and settle an entry (they
-- change indexed columns, so none is a HOT update: version 20 dropped a third such index for
-- that), so this one REPLACES the lease index rather than joining it:
-- - a queue's running list, newest first: one range of (queue, id), walked backwards to the
--   page's LIMIT;
-- - a queue's concurrency cap (limits.py) counts the same range, each lease tested in the
--   index (a key column: without it the planner, guessing `lease_expires_at > now` selective,
--   preferred testing every running row's lease in conveyor_jobs_running);
-- - the stale-lease rescue (lease_expires_at < now) reads conveyor_jobs_running instead,
--   whose second key is the lease: each lease is tested in the index, and only expired rows
--   are read from the table.
-- `queue <> ''` (always true: a queue name has 1 to 100 characters, names.py) keeps a
-- statement that does not name the queue off this index: a settle's `id = item.id AND
-- state = 'running'` would otherwise walk it whole for each job of the batch, the planner
-- taking it for a small index (before ANALYZE, as in a fresh drain). The statements that
-- name a queue write that predicate out, as the tenants' do (filters.py, limits.py).
CREATE INDEX conveyor_jobs_running_queue ON {schema}.conveyor_jobs
    (queue, id, lease_expires_at) WHERE state = 'running' AND queue <> '';
DROP INDEX {schema}.conveyor_jobs_lease;
