-- Conveyor schema, version 16 (PostgreSQL): all tenants' task rollups (issue 16). The operator's charts
-- (overview, queues page: store.task_analytics with no tenant) summed conveyor_rollups over
-- every tenant: a row per minute, task, queue and tenant, 10,000 rows a minute with 50 tenants,
-- 20 queues and 10 tasks busy. These are the same sums without the tenant: a row per minute
-- (hour, day), task and queue, written by the same history fold (history_fold_sql.py), pruned
-- with conveyor_rollups. Readable as conveyor_rollups is (the same figures, summed).
CREATE TABLE {schema}.conveyor_rollups_all (
    width        bigint NOT NULL,
    minute       bigint NOT NULL,
    task         text NOT NULL,
    queue        text NOT NULL,
    completed    integer NOT NULL DEFAULT 0,
    retried      integer NOT NULL DEFAULT 0,
    dead         integer NOT NULL DEFAULT 0,
    cancelled    integer NOT NULL DEFAULT 0,
    snoozed      integer NOT NULL DEFAULT 0,
    lost         integer NOT NULL DEFAULT 0,
    duration_sum double precision NOT NULL DEFAULT 0,
    b0 integer NOT NULL DEFAULT 0,
    b1 integer NOT NULL DEFAULT 0,
    b2 integer NOT NULL DEFAULT 0,
    b3 integer NOT NULL DEFAULT 0,
    b4 integer NOT NULL DEFAULT 0,
    b5 integer NOT NULL DEFAULT 0,
    b6 integer NOT NULL DEFAULT 0,
    b7 integer NOT NULL DEFAULT 0,
    b8 integer NOT NULL DEFAULT 0,
    b9 integer NOT NULL DEFAULT 0,
    b10 integer NOT NULL DEFAULT 0,
    b11 integer NOT NULL DEFAULT 0,
    b12 integer NOT NULL DEFAULT 0,
    b13 integer NOT NULL DEFAULT 0,
    b14 integer NOT NULL DEFAULT 0,
    b15 integer NOT NULL DEFAULT 0,
    b16 integer NOT NULL DEFAULT 0,
    b17 integer NOT NULL DEFAULT 0,
    b18 integer NOT NULL DEFAULT 0,
    b19 integer NOT NULL DEFAULT 0,
    b20 integer NOT NULL DEFAULT 0,
    b21 integer NOT NULL DEFAULT 0,
    b22 integer NOT NULL DEFAULT 0,
    b23 integer NOT NULL DEFAULT 0,
    b24 integer NOT NULL DEFAULT 0,
    b25 integer NOT NULL DEFAULT 0,
    PRIMARY KEY (width, minute, task, queue)
);

-- the rollups already folded, summed once
INSERT INTO {schema}.conveyor_rollups_all (width, minute, task, queue, completed, retried, dead, cancelled, snoozed, lost, duration_sum, b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15, b16, b17, b18, b19, b20, b21, b22, b23, b24, b25)
SELECT width, minute, task, queue, sum(completed), sum(retried), sum(dead), sum(cancelled), sum(snoozed), sum(lost), sum(duration_sum), sum(b0), sum(b1), sum(b2), sum(b3), sum(b4), sum(b5), sum(b6), sum(b7), sum(b8), sum(b9), sum(b10), sum(b11), sum(b12), sum(b13), sum(b14), sum(b15), sum(b16), sum(b17), sum(b18), sum(b19), sum(b20), sum(b21), sum(b22), sum(b23), sum(b24), sum(b25)
FROM {schema}.conveyor_rollups GROUP BY width, minute, task, queue;
