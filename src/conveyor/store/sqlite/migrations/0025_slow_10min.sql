-- Conveyor schema, version 25: the slowest attempts' index keyed by 10 minutes (issue 15).
--
-- conveyor_attempts_slow (0006) held every attempt by duration alone. Durations come in no
-- order, so each attempt a fold inserts lands on a random leaf of an index as large as the
-- table: with 500,000 attempts stored, that index was most of the fold's cost (19-22 µs a
-- row with it, 3-6 without: bench/results/2026-12-06-histcost3.md). Keyed by the attempt's
-- 10 minutes first, a fold's rows land in the current part of the index only; a part stays
-- small enough for that up to ~100 attempts/s (an hour's part did not at 100/s:
-- bench/results/2026-12-06-slowidx.md, 2026-12-07-slow10.md).
-- The slowest-attempts read (history_sql.slow, SLOW_PART) takes each part's slowest, then
-- walks the parts that reach the cut. The expression is the read's own, character for
-- character: SQLite uses an index on an expression only for a query holding the same one.
-- duration, then ended_at: the read's order (the newest first on equal durations). The
-- tenant last: a tenant's read filters a part's entries by it in the index alone, not by a
-- row lookup each. (A second index by part then tenant made a tenant's month 3x cheaper
-- to read but the fold ~2x dearer: 2026-12-07-slow10.md.)
DROP INDEX conveyor_attempts_slow;
CREATE INDEX conveyor_attempts_slow_10min ON conveyor_attempts
    (CAST(ended_at / 600 AS INTEGER), duration, ended_at, tenant);
