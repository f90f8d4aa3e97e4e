-- Conveyor schema, version 24: nothing to change on SQLite. PostgreSQL's version 24 gives one
-- queue's running jobs an index of their own in place of its lease index; SQLite kept its
-- index of running ids (version 15), which a queue's running page walks newest first to its
-- LIMIT (a few thousand running rows at most: bounded at 1M jobs, 2026-12-07-runidx.md).
-- Kept so that both dialects number their migrations alike.
SELECT 1;
