-- Conveyor schema, version 12 (SQLite): search by error text and cron pause (issue 16).
-- Jobs that have failed at least once, newest first: a search by error text reads its
-- candidates from this index (search.py: at most the newest N), never the whole table.
CREATE INDEX conveyor_jobs_errored ON conveyor_jobs (id) WHERE errors != '[]';
-- Schedules live in code; what an operator changes at run time is kept here, by name: a
-- paused schedule enqueues nothing on any node until it is resumed.
CREATE TABLE conveyor_cron (
    name       TEXT PRIMARY KEY,
    paused     INTEGER NOT NULL DEFAULT 0,
    updated_at REAL
);
