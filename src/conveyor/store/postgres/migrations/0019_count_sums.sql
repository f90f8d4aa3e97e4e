-- Conveyor schema, version 19: nothing to change on PostgreSQL. SQLite's version 19 lets its
-- store write the counts of a claim's or a trip's completions as sums, where its per-row
-- triggers fired once per job; PostgreSQL's count trigger is per statement already. Kept so
-- that both dialects number their migrations alike.
SELECT 1;
