-- Conveyor schema, version 16: all tenants' task rollups (issue 16). The operator's charts
-- (overview, queues page: store.task_analytics with no tenant) summed conveyor_rollups over
-- every tenant: a row per minute, task, queue and tenant, 10,000 rows a minute with 50 tenants,
-- 20 queues and 10 tasks busy. These are the same sums without the tenant: a row per minute
-- (hour, day), task and queue, written by the same history fold (history_fold_sql.py), pruned
-- with conveyor_rollups. Readable as conveyor_rollups is (the same figures, summed).
CREATE TABLE conveyor_rollups_all (
    width        INTEGER NOT NULL,
    minute       INTEGER NOT NULL,
    task         TEXT NOT NULL,
    queue        TEXT NOT NULL,
    completed    INTEGER NOT NULL DEFAULT 0,
    retried      INTEGER NOT NULL DEFAULT 0,
    dead         INTEGER NOT NULL DEFAULT 0,
    cancelled    INTEGER NOT NULL DEFAULT 0,
    snoozed      INTEGER NOT NULL DEFAULT 0,
    lost         INTEGER NOT NULL DEFAULT 0,
    duration_sum REAL NOT NULL DEFAULT 0,
    b0 INTEGER NOT NULL DEFAULT 0,
    b1 INTEGER NOT NULL DEFAULT 0,
    b2 INTEGER NOT NULL DEFAULT 0,
    b3 INTEGER NOT NULL DEFAULT 0,
    b4 INTEGER NOT NULL DEFAULT 0,
    b5 INTEGER NOT NULL DEFAULT 0,
    b6 INTEGER NOT NULL DEFAULT 0,
    b7 INTEGER NOT NULL DEFAULT 0,
    b8 INTEGER NOT NULL DEFAULT 0,
    b9 INTEGER NOT NULL DEFAULT 0,
    b10 INTEGER NOT NULL DEFAULT 0,
    b11 INTEGER NOT NULL DEFAULT 0,
    b12 INTEGER NOT NULL DEFAULT 0,
    b13 INTEGER NOT NULL DEFAULT 0,
    b14 INTEGER NOT NULL DEFAULT 0,
    b15 INTEGER NOT NULL DEFAULT 0,
    b16 INTEGER NOT NULL DEFAULT 0,
    b17 INTEGER NOT NULL DEFAULT 0,
    b18 INTEGER NOT NULL DEFAULT 0,
    b19 INTEGER NOT NULL DEFAULT 0,
    b20 INTEGER NOT NULL DEFAULT 0,
    b21 INTEGER NOT NULL DEFAULT 0,
    b22 INTEGER NOT NULL DEFAULT 0,
    b23 INTEGER NOT NULL DEFAULT 0,
    b24 INTEGER NOT NULL DEFAULT 0,
    b25 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (width, minute, task, queue)
) WITHOUT ROWID;

-- the rollups already folded, summed once
INSERT INTO conveyor_rollups_all (width, minute, task, queue, completed, retried, dead, cancelled, snoozed, lost, duration_sum, b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15, b16, b17, b18, b19, b20, b21, b22, b23, b24, b25)
SELECT width, minute, task, queue, sum(completed), sum(retried), sum(dead), sum(cancelled), sum(snoozed), sum(lost), sum(duration_sum), sum(b0), sum(b1), sum(b2), sum(b3), sum(b4), sum(b5), sum(b6), sum(b7), sum(b8), sum(b9), sum(b10), sum(b11), sum(b12), sum(b13), sum(b14), sum(b15), sum(b16), sum(b17), sum(b18), sum(b19), sum(b20), sum(b21), sum(b22), sum(b23), sum(b24), sum(b25)
FROM conveyor_rollups GROUP BY width, minute, task, queue;

-- The finished jobs' index also carries what the stats' durations read (the last hour's
-- completed jobs, newest first, at most 5,000: queries.DURATIONS), so that read walks the
-- index alone: while workers drain, it looked up 5,000 rows scattered over the table at each
-- stats read. The same one index write per finished job, its entry a few bytes wider; its
-- other readers (prune, the oldest finished) still lead with finished_at.
DROP INDEX conveyor_jobs_finished;
CREATE INDEX conveyor_jobs_finished ON conveyor_jobs (finished_at, state, started_at, tenant)
    WHERE finished_at IS NOT NULL;
