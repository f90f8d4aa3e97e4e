-- Conveyor schema, version 27: each 10 minutes' slowest attempt per task and per queue,
-- kept by the history fold (issue 15).
--
-- Version 26 keeps each 10-minute part's slowest attempt per tenant and of every tenant,
-- so a month's slowest-attempts read finds its cut from ~4,320 short rows. A read filtered
-- by a task or a queue could not use them (a part's top may be another task's) and stepped
-- down conveyor_attempts_slow_10min once per part, filtering each entry's row: a month
-- 4,320 steps and more. These tables hold the same tops per task and per queue (kind
-- 'task' or 'queue', name the task's or queue's), per tenant ('' for none) and of every
-- tenant, upserted by the fold in its transaction (history_fold_sql.named_tops_statements).
-- A read filtered by both a task and a queue still steps every part.
--
-- Exact as version 26's: the prune raises conveyor_slow_tops_pruned.part (26) before it
-- deletes, and deletes these tops up to it too; the read steps down the index for the
-- parts at or below it and for a range's first and last parts.
CREATE TABLE conveyor_slow_tops_named (
    kind     TEXT NOT NULL,
    name     TEXT NOT NULL,
    tenant   TEXT NOT NULL,
    part     INTEGER NOT NULL,
    duration REAL NOT NULL,
    ended_at REAL NOT NULL,
    PRIMARY KEY (kind, name, tenant, part)
) WITHOUT ROWID;

-- the prune deletes the tops up to its mark by part
CREATE INDEX conveyor_slow_tops_named_part ON conveyor_slow_tops_named (part);

CREATE TABLE conveyor_slow_tops_named_all (
    kind     TEXT NOT NULL,
    name     TEXT NOT NULL,
    part     INTEGER NOT NULL,
    duration REAL NOT NULL,
    ended_at REAL NOT NULL,
    PRIMARY KEY (kind, name, part)
) WITHOUT ROWID;

CREATE INDEX conveyor_slow_tops_named_all_part ON conveyor_slow_tops_named_all (part);

-- the attempts already folded (the pending ones add theirs when folded)
INSERT INTO conveyor_slow_tops_named (kind, name, tenant, part, duration, ended_at)
SELECT kind, name, tenant, part, duration, ended_at FROM (
    SELECT kind, name, tenant, part, duration, ended_at, row_number() OVER (
           PARTITION BY kind, name, tenant, part ORDER BY duration DESC, ended_at DESC) AS n
    FROM (SELECT 'task' AS kind, task AS name, coalesce(tenant, '') AS tenant,
                 CAST(ended_at / 600 AS INTEGER) AS part, duration, ended_at
          FROM conveyor_attempts
          UNION ALL
          SELECT 'queue', queue, coalesce(tenant, ''), CAST(ended_at / 600 AS INTEGER),
                 duration, ended_at
          FROM conveyor_attempts)) WHERE n = 1;

INSERT INTO conveyor_slow_tops_named_all (kind, name, part, duration, ended_at)
SELECT kind, name, part, duration, ended_at FROM (
    SELECT kind, name, part, duration, ended_at, row_number() OVER (
           PARTITION BY kind, name, part ORDER BY duration DESC, ended_at DESC) AS n
    FROM conveyor_slow_tops_named) WHERE n = 1;
