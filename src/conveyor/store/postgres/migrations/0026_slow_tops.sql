-- Conveyor schema, version 26 (PostgreSQL): each 10 minutes' slowest attempt, kept by the
-- history fold (issue 15), as on SQLite. The slowest-attempts read (history_sql.slow) finds
-- its cut from each 10-minute part's slowest attempt of the range; version 25 found each by
-- a LATERAL step down conveyor_attempts_slow_10min, 4,320 for a month (40 ms of server CPU
-- for every tenant, 52 for one: bench/results/2026-12-07-slow10.md). These tables hold that
-- top (duration, end) per tenant ('' for none) and of every tenant, upserted by the fold in
-- its statement (history_fold_sql.slow_tops_statements).
--
-- Exact only where no attempt of the part was deleted since: the history prune raises
-- conveyor_slow_tops_pruned.part to the newest part it may delete from before it deletes
-- (and deletes the tops of those parts); the read steps down the index for the parts at or
-- below it, and for a range's first and last parts (partly in range), as before.
CREATE TABLE {schema}.conveyor_slow_tops (
    tenant   text NOT NULL,
    part     int8 NOT NULL,
    duration double precision NOT NULL,
    ended_at double precision NOT NULL,
    PRIMARY KEY (tenant, part)
);

-- the prune deletes the tops of the parts up to its mark: by part, not a scan of every
-- tenant's (a month of 50 tenants: ~216,000 rows). The fold's updates of a part's top
-- leave it alone; a part's first attempt per tenant adds an entry.
CREATE INDEX conveyor_slow_tops_part ON {schema}.conveyor_slow_tops (part);

CREATE TABLE {schema}.conveyor_slow_tops_all (
    part     int8 PRIMARY KEY,
    duration double precision NOT NULL,
    ended_at double precision NOT NULL
);

CREATE TABLE {schema}.conveyor_slow_tops_pruned (
    one  int4 PRIMARY KEY CHECK (one = 1),
    part int8 NOT NULL
);
INSERT INTO {schema}.conveyor_slow_tops_pruned (one, part) VALUES (1, -1);

-- the attempts already folded (the pending ones add theirs when folded)
INSERT INTO {schema}.conveyor_slow_tops (tenant, part, duration, ended_at)
SELECT DISTINCT ON (1, 2) coalesce(tenant, ''), floor(ended_at / 600)::int8, duration, ended_at
FROM {schema}.conveyor_attempts ORDER BY 1, 2, duration DESC, ended_at DESC;

INSERT INTO {schema}.conveyor_slow_tops_all (part, duration, ended_at)
SELECT DISTINCT ON (part) part, duration, ended_at FROM {schema}.conveyor_slow_tops
ORDER BY part, duration DESC, ended_at DESC;
