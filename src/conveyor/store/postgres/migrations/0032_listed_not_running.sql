-- Conveyor schema, version 32: nothing to change on PostgreSQL. SQLite's version 32 leaves
-- the running rows out of conveyor_jobs_listed (0030), as PostgreSQL's 0030 did from the
-- start. Kept so that both dialects number their migrations alike.
SELECT 1;
