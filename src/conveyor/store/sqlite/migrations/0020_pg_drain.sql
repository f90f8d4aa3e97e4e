-- Conveyor schema, version 20: nothing to change on SQLite. PostgreSQL's version 20 moves its
-- id-tail index out of conveyor_jobs (every non-HOT update of a job wrote an entry there);
-- SQLite's id-tail design is its own (migration 8). Kept so that both dialects number their
-- migrations alike.
SELECT 1;
