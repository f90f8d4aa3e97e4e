-- Conveyor schema, version 31 (SQLite): the tasks read's pending tail summed without a sort
-- (issue 15).
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
