-- Conveyor schema, version 26: each 10 minutes' slowest attempt, kept by the history fold
-- (issue 15).
--
-- The slowest-attempts read (history_sql.slow) finds a cut from each 10-minute part's
-- slowest attempt of the range, (duration, end). Version 25 found each by a step down its
-- part of conveyor_attempts_slow_10min: 4,320 steps for a month, 33 ms of CPU for every
-- tenant and 59 ms for one, who walks past the others' entries
-- (bench/results/2026-12-07-slow10.md). These tables hold that top, per tenant ('' for
-- none) and of every tenant, upserted by the fold in its transaction (history_fold_sql.
-- slow_tops_statements): a month's cut is found from ~4,320 short rows instead.
--
-- Exact only where no attempt of the part was deleted since: the history prune raises
-- conveyor_slow_tops_pruned.part to the newest part it may delete from before it deletes
-- (and deletes the tops of those parts); the read steps down the index for the parts at or
-- below it, and for a range's first and last parts (partly in range), as before.
CREATE TABLE conveyor_slow_tops (
    tenant   TEXT NOT NULL,
    part     INTEGER NOT NULL,
    duration REAL NOT NULL,
    ended_at REAL NOT NULL,
    PRIMARY KEY (tenant, part)
) WITHOUT ROWID;

-- the prune deletes the tops of the parts up to its mark: by part, not a scan of every
-- tenant's (a month of 50 tenants: ~216,000 rows). The fold's updates of a part's top
-- leave it alone; a part's first attempt per tenant adds an entry.
CREATE INDEX conveyor_slow_tops_part ON conveyor_slow_tops (part);

CREATE TABLE conveyor_slow_tops_all (
    part     INTEGER PRIMARY KEY,
    duration REAL NOT NULL,
    ended_at REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE conveyor_slow_tops_pruned (
    one  INTEGER PRIMARY KEY CHECK (one = 1),
    part INTEGER NOT NULL
);
INSERT INTO conveyor_slow_tops_pruned (one, part) VALUES (1, -1);

-- the attempts already folded (the pending ones add theirs when folded)
INSERT INTO conveyor_slow_tops (tenant, part, duration, ended_at)
SELECT tenant, part, duration, ended_at FROM (
    SELECT coalesce(tenant, '') AS tenant, CAST(ended_at / 600 AS INTEGER) AS part, duration,
           ended_at, row_number() OVER (PARTITION BY coalesce(tenant, ''),
           CAST(ended_at / 600 AS INTEGER) ORDER BY duration DESC, ended_at DESC) AS n
    FROM conveyor_attempts) WHERE n = 1;

INSERT INTO conveyor_slow_tops_all (part, duration, ended_at)
SELECT part, duration, ended_at FROM (
    SELECT part, duration, ended_at, row_number() OVER (PARTITION BY part
           ORDER BY duration DESC, ended_at DESC) AS n
    FROM conveyor_slow_tops) WHERE n = 1;
