-- Conveyor schema, version 38: nothing to change on PostgreSQL. SQLite's version 38 drops
-- the index of its pending attempt rows (0031's conveyor_attempts_pending_tasks), which the
-- settle's insert paid for every row. PostgreSQL's pending table has no index (its fold
-- takes the rows by DELETE ... RETURNING, its tasks read hashes them): the same insert pays
-- no such cost here. Kept so that both dialects number their migrations alike.
SELECT 1;
