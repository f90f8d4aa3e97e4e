-- Conveyor schema, version 32 (SQLite): conveyor_jobs_listed (0030) without the running
-- rows, as PostgreSQL's has always been.
--
-- A job passes through 'running' once per attempt: its claim moved its entry from the queued
-- key to the running key, and its settle from the running key to the finished one, so every
-- drained job took four entry writes here and every trip's commit wrote the running key's
-- pages besides (bench/results/2026-12-07c-drainsq.md: 1.39 -> 1.32 WAL frames per job, the
-- trip's instructions -2.9 %). Without them a claim removes one entry and a settle adds one.
-- The running jobs are few (the workers' slots) and have their own index (0015,
-- conveyor_jobs_running_ids): the keyed list reads them there (sqlite/listing.py).
DROP INDEX conveyor_jobs_listed;
CREATE INDEX conveyor_jobs_listed ON conveyor_jobs (queue, task, state, tenant, id)
    WHERE queue <> '' AND state <> 'running';
