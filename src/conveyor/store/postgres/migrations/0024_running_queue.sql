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
-- that), so this one REPLACES the lease index rather than joining it. Its users:
-- - a queue's running list, newest first: one range of (queue, id), walked backwards to the
--   page's LIMIT;
-- - the stale-lease rescue (lease_expires_at < now): lease_expires_at is a key column, so the
--   whole index is walked but each entry is tested in the index, and only expired rows are
--   read from the table (a few pages: the index holds only the rows workers hold);
-- - the concurrency caps' count of a queue's live leases (limits.py): the queue's range.
-- The heartbeat and a worker's own jobs keep conveyor_jobs_running (worker_id, ...).
CREATE INDEX conveyor_jobs_running_queue ON {schema}.conveyor_jobs (queue, id, lease_expires_at)
    WHERE state = 'running';
DROP INDEX {schema}.conveyor_jobs_lease;
