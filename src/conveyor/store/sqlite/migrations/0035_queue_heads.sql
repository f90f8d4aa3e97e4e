-- Conveyor schema, version 35: nothing to change on SQLite. PostgreSQL's version 35 keeps
-- where each queue's queued jobs begin, so that the queues page's oldest-queued lookup skips
-- the claim index's entries of jobs claimed since the last VACUUM; SQLite deletes an index
-- entry when its row changes (its 20 lookups take 0.19 ms at 1M jobs while draining,
-- 2026-12-08-q16.md). Kept so that both dialects number their migrations alike.
SELECT 1;
