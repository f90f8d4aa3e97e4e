-- Conveyor schema, version 9 (SQLite): dead letters by time of death (store dead_letters).
-- Only dead rows are indexed, so a table of millions of finished jobs with no dead ones
-- answers "no dead letters" from an empty index, and a page of them is a range scan.
CREATE INDEX conveyor_jobs_dead ON conveyor_jobs (finished_at, id) WHERE state = 'dead';
