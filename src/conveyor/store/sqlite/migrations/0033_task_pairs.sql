-- Conveyor schema, version 33 (SQLite): every tenant's day rows of the task rollups in
-- (task, queue) order, so the tasks read of a month sums them per pair as it walks them,
-- with no sort (issue 15).
--
-- The tasks read of every tenant over 20 days and more (day rows: history_reads._points)
-- summed the range's rows of conveyor_rollups_all (a month of 200 task/queue pairs: ~6,200
-- rows of 36 columns) per (task, queue); SQLite sorted them all first, ~40 % of the read
-- (p95 54-57 ms quiet at 1.09M attempts: bench/results/2026-12-07c-analytics-quiet.md). In
-- this index the day rows come in (task, queue, minute) order with every figure the read
-- sums (covering, partial: day rows only), so the read (sqlite/history_tasks.py, pinned
-- INDEXED BY) groups them as walked. It walks every pair's day rows of the retention
-- (rollup_retention, 56 days by default: ~11,000 entries at 200 pairs) and keeps the
-- range's: no seek per pair.
-- Its price: a fold's upsert of a day row of conveyor_rollups_all rewrites its entry here
-- (one row per task and queue folded; the fold upserts the minute, hour and day rows of
-- every (task, queue, tenant) besides; see bench/results/2026-12-08-tasks30.md).
CREATE INDEX conveyor_rollups_all_days ON conveyor_rollups_all
    (task, queue, minute, completed, retried, dead, cancelled, snoozed, lost, duration_sum,
     b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15, b16, b17, b18,
     b19, b20, b21, b22, b23, b24, b25)
    WHERE width = 86400;

-- The running jobs' index (0015, id alone) with what the workers read asks of each running
-- job (history_sql.RUNNING_NOW: worker, task, tenant; the state itself, which SQLite 3.40
-- does not take from the index's WHERE) and the keyed list's running arm besides (queue,
-- task, tenant: sqlite/listing.py), so both read the index alone: the workers read looked
-- up every running job in the table (4,992 running at 1.09M attempts: ~17 ms of its ~30).
-- Led by id as before (a running list's walk, newest first). The same entry writes (one
-- at a claim, one at a settle; none of these columns changes while a job runs), each a few
-- dozen bytes wider (see bench/results/2026-12-08-tasks30.md for the trip's cost).
DROP INDEX conveyor_jobs_running_ids;
CREATE INDEX conveyor_jobs_running_ids ON conveyor_jobs (id, worker_id, task, queue, tenant, state)
    WHERE state = 'running';
