-- Conveyor schema, version 8 (SQLite): find a job by the end of its id (lookup.py). Ids are
-- UUIDv7 strings whose last 12 characters are random; this index holds them reversed (built
-- from substr, as SQLite has no reverse()), so "…9c2f41ab" is a range scan, not a table scan.
-- Queries must spell the expression exactly as here (queries.ID_TAIL).
CREATE INDEX conveyor_jobs_id_tail ON conveyor_jobs ((substr(id, 36, 1)||substr(id, 35, 1)||substr(id, 34, 1)||substr(id, 33, 1)||substr(id, 32, 1)||substr(id, 31, 1)||substr(id, 30, 1)||substr(id, 29, 1)||substr(id, 28, 1)||substr(id, 27, 1)||substr(id, 26, 1)||substr(id, 25, 1)));
