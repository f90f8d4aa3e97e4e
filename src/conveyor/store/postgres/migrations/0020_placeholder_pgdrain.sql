-- PLACEHOLDER, not for main: version 20 is pgdrain's (0020_pg_drain.sql). It is here only so
-- that this branch's migrations run 1..n; delete this file when merging after pgdrain.
SELECT 1;
