-- Conveyor schema, version 21: the index that finds a job by the end of its id (version 8)
-- holds the last 4 characters of the id, reversed, instead of the last 12. Every enqueue
-- writes an entry of it, at a random place; 4 characters make that insert cheaper (a single
-- enqueue's statements -7 µs of ~100 CPU µs on a loaded two-core machine, the whole index
-- costing ~23: bench/results/2026-12-06-enqueue.md) and the index smaller, and a lookup is
-- still a range scan: a fragment (4 characters at least) names one of 65,536 keys, ~15 jobs
-- of a million, each then checked against the whole fragment (queries.FIND_BY_SUFFIX).
-- Queries must spell the expression exactly as here (queries.ID_TAIL).
DROP INDEX conveyor_jobs_id_tail;
CREATE INDEX conveyor_jobs_id_tail ON conveyor_jobs ((substr(id, 36, 1)||substr(id, 35, 1)||substr(id, 34, 1)||substr(id, 33, 1)));
