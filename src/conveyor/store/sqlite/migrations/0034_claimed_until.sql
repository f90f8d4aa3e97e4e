-- Conveyor schema, version 34 (SQLite): until when a worker's claimed-ahead counts hold
-- (issue 14). The operator's `running` of a queue or a cap is its claimed jobs less those
-- the live workers hold prefetched, as their heartbeats report them (claimed_queues). A
-- report was believed for 60 s after its heartbeat while the jobs it counts are leased for
-- 30 s (the default): a worker killed with jobs prefetched had them rescued at 30 s, and for
-- the next 30 s its stale count was taken off the other workers' running jobs. Each
-- heartbeat now says until when: its time plus the lease it extends its jobs by. NULL (a row
-- an older release wrote) falls back to 60 s after its heartbeat.
ALTER TABLE conveyor_workers ADD COLUMN claimed_until REAL;
