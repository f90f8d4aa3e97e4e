-- Conveyor schema, version 28 (PostgreSQL): the analytics reads over 30 days bounded at
-- 1.09M attempts (issue 15, issue 16). See the SQLite migration of the same number.
--
-- 1. One tenant's task rollups of a range (history_sql.task_rollups, queue_rollups): its
-- rows, not the range's rows of every tenant walked in the key (width, minute, task,
-- queue, tenant) and filtered (30 days: 5,956 of 310,000). The task and queue too: a read
-- of one tenant's task or queue filters the entries, not the rows they point to (without
-- them the planner took the key's walk over every tenant for a queue's 30 days: 80 ms).
-- No INCLUDE of the sums: the fold's upserts of a row's sums stay HOT (no index entry for
-- an update); a new row (a new minute, hour or day of a key) adds one entry.
CREATE INDEX conveyor_rollups_tenant ON {schema}.conveyor_rollups
    (tenant, width, minute, task, queue);

-- 2. One tenant's worker hours (history_sql.WORKER_HOURS_TENANT): its rows of the range
-- (30 days: 2,880 of 144,000).
CREATE INDEX conveyor_worker_rollups_tenant ON {schema}.conveyor_worker_rollups (tenant, hour);

-- 3. A queue's error groups of a day or more (history_sql.ERROR_GROUP_ROLLUPS_QUEUE): its
-- rows of the range, not a (parallel) scan of every error rollup.
CREATE INDEX conveyor_error_rollups_queue ON {schema}.conveyor_error_rollups
    (queue, width, minute);

-- 4. All tenants' worker hours: the same figures as conveyor_worker_rollups without the
-- tenant (a row per hour and worker, not per tenant too: 30 days of 4 workers and 50
-- tenants 2,880 rows, not 144,000), written by the same history fold
-- (history_fold_sql.worker_rollups_all), pruned with the worker rollups.
CREATE TABLE {schema}.conveyor_worker_rollups_all (
    hour      bigint NOT NULL,
    worker_id text NOT NULL,
    host      text,
    pid       bigint,
    attempts  integer NOT NULL DEFAULT 0,
    failures  integer NOT NULL DEFAULT 0,
    busy      double precision NOT NULL DEFAULT 0,
    cpu       double precision NOT NULL DEFAULT 0,
    peak_rss  bigint,
    PRIMARY KEY (hour, worker_id)
);

-- the worker rollups already folded, summed once
INSERT INTO {schema}.conveyor_worker_rollups_all
    (hour, worker_id, host, pid, attempts, failures, busy, cpu, peak_rss)
SELECT hour, worker_id, max(host), max(pid), sum(attempts), sum(failures), sum(busy), sum(cpu),
       max(peak_rss)
FROM {schema}.conveyor_worker_rollups GROUP BY hour, worker_id;
