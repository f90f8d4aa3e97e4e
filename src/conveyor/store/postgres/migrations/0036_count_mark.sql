-- Conveyor schema, version 36: nothing to change on PostgreSQL. SQLite's version 36 stands
-- its count trigger aside by a mark that the store's summed statements flip on the rows they
-- move, in place of a row of conveyor_count_deferred inserted and deleted every trip. Kept so
-- that both dialects number their migrations alike.
SELECT 1;
