-- Conveyor schema, version 37: nothing to change on SQLite. PostgreSQL's version 37 keeps a
-- batch's jobs in a table of their own (conveyor_job_batches) in place of a BRIN on batch_id
-- that a drain's non-HOT updates blurred. SQLite's batch index (version 15,
-- conveyor_jobs_batch (batch_id, id) WHERE batch_id IS NOT NULL) is already exact, and an
-- UPDATE here writes only the indexes whose columns it changes: a claim or a settle never
-- touches it (1M jobs: batch_id=batch-77 at 1.5-2.4 ms p50/p95 idle, 7-11 ms draining,
-- bench/results/2026-12-05-reads.md). Kept so that both dialects number their migrations alike.
SELECT 1;
