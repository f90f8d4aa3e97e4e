-- Conveyor schema, version 25 (PostgreSQL): the slowest attempts' index keyed by 10 minutes
-- (issue 15), as on SQLite: conveyor_attempts_slow (0006) held every attempt by duration
-- alone, so each attempt a fold inserts landed on a random leaf of an index as large as the
-- table. Keyed by the attempt's 10 minutes first, a fold's rows land in the current part.
-- The slowest-attempts read (history_sql.slow, SLOW_PART) takes each part's slowest (a
-- LATERAL per part), then walks the parts that reach the cut; its expression is this one,
-- so the planner matches it. duration, then ended_at: the read's order (the newest first
-- on equal durations). The tenant last: a tenant's read picks its entries in the index (an
-- index condition), not by fetching the row of every entry of a part.
DROP INDEX {schema}.conveyor_attempts_slow;
CREATE INDEX conveyor_attempts_slow_10min ON {schema}.conveyor_attempts
    ((floor(ended_at / 600)::int8), duration, ended_at, tenant);
