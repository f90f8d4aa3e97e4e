-- Conveyor schema, version 28: the analytics reads over 30 days bounded at 1.09M attempts
-- (issue 15, issue 16).
--
-- 1. One tenant's task rollups of a range (history_sql.task_rollups, queue_rollups): its
-- rows, not the range's rows of every tenant walked in the key (width, minute, task,
-- queue, tenant) and filtered (30 days: ~6,000 of 310,000). With the key's other columns
-- (task, queue; a WITHOUT ROWID table's index carries them anyway): a read of one tenant's
-- task or queue filters the entries, then each row is one lookup in the key. A new row (a
-- new minute, hour or day of a key) adds one entry; an upsert of its sums none.
CREATE INDEX conveyor_rollups_tenant ON conveyor_rollups (tenant, width, minute, task, queue);

-- 2. One tenant's worker hours (history_sql.WORKER_HOURS_TENANT): its rows of the range
-- (30 days: 2,880 of 144,000).
CREATE INDEX conveyor_worker_rollups_tenant ON conveyor_worker_rollups (tenant, hour);

-- 3. A queue's error groups of a day or more (history_sql.ERROR_GROUP_ROLLUPS_QUEUE): its
-- rows of the range, not every tenant's and queue's rows of the range. Not covering (as
-- 0023's tenant index is): an upsert of a row's failures and times would rewrite its entry,
-- ~10 % of the fold's CPU; a lookup in the key per row instead (30 days of a queue: 13,323
-- rows, ~30 ms, against ~18 covering and ~47 before).
CREATE INDEX conveyor_error_rollups_queue ON conveyor_error_rollups (queue, width, minute);

-- 4. All tenants' worker hours: the same figures as conveyor_worker_rollups without the
-- tenant (a row per hour and worker, not per tenant too: 30 days of 4 workers and 50
-- tenants 2,880 rows, not 144,000), written by the same history fold
-- (history_fold_sql.worker_rollups_all), pruned with the worker rollups.
CREATE TABLE conveyor_worker_rollups_all (
    hour      INTEGER NOT NULL,
    worker_id TEXT NOT NULL,
    host      TEXT,
    pid       INTEGER,
    attempts  INTEGER NOT NULL DEFAULT 0,
    failures  INTEGER NOT NULL DEFAULT 0,
    busy      REAL NOT NULL DEFAULT 0,
    cpu       REAL NOT NULL DEFAULT 0,
    peak_rss  INTEGER,
    PRIMARY KEY (hour, worker_id)
) WITHOUT ROWID;

-- the worker rollups already folded, summed once
INSERT INTO conveyor_worker_rollups_all
    (hour, worker_id, host, pid, attempts, failures, busy, cpu, peak_rss)
SELECT hour, worker_id, max(host), max(pid), sum(attempts), sum(failures), sum(busy), sum(cpu),
       max(peak_rss)
FROM conveyor_worker_rollups GROUP BY hour, worker_id;
