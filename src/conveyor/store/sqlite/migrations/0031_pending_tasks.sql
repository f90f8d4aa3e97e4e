-- Conveyor schema, version 31 (SQLite): the tasks read's pending tail summed without a sort,
-- and one tenant's day rows read without a lookup each (issue 15).
--
-- store.task_analytics sums every pending attempt row (not folded yet) beside the folded
-- rollups: exact, without a write. SQLite groups by sorting: 20,000 pending rows grouped per
-- (task, queue, outcome, bucket, minute) cost ~20-30 ms of a read's 45-60
-- (bench/results/2026-12-07c-tasksq.md). In this index the rows come in that order, and
-- with everything the read takes from them (covering; ended_at itself too: SQLite 3.40
-- counts a row's column used by an indexed expression as read from the table), so the
-- read walks the entries once and groups as it goes (history_sql.task_rollups, pinned
-- INDEXED BY). The minute is the read's own expression (history_sql.task_rollups's
-- `floor` of SQLite), which SQLite matches to the entry's.
-- Its price: an entry per pending row, written by the settle's insert and deleted by the
-- fold (an emptied table is cleared by pages: history_fold.DROP_ALL_PENDING).
CREATE INDEX conveyor_attempts_pending_tasks ON conveyor_attempts_pending
    (task, queue, outcome, bucket, CAST(ended_at / 60 AS INTEGER), ended_at, duration, tenant);

-- One tenant's task rollups over 20 days and more (day rows: history_reads._points): the
-- tenant's rows of the range in this index with every figure the read sums (covering,
-- partial: day rows only), not one lookup in the table's key per entry of 0028's tenant
-- index (30 days: ~6,000 lookups, ~15-20 ms of a ~45 ms read; a tenant's task's 30 days
-- ~30 -> ~8 ms). The statement names the width (a partial index needs it written out).
-- Its price: a fold's upsert of a tenant's day row rewrites its entry here too (a day
-- row is one of the three widths' rows each key's fold upserts; see the write-up's fold
-- figures).
CREATE INDEX conveyor_rollups_tenant_days ON conveyor_rollups
    (tenant, minute, task, queue, completed, retried, dead, cancelled, snoozed, lost,
     duration_sum, b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13,
     b14, b15, b16, b17, b18, b19, b20, b21, b22, b23, b24, b25)
    WHERE width = 86400;
