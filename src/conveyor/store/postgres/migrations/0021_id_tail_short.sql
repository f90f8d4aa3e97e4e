-- Conveyor schema, version 21: nothing to change on PostgreSQL. SQLite's version 21 indexes
-- the last 4 characters of an id instead of 12 (a cheaper insert, the same lookups);
-- PostgreSQL's suffix index (version 8) is its own. Kept so that both dialects number their
-- migrations alike.
SELECT 1;
