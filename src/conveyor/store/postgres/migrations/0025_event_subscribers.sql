-- Conveyor schema, version 25: who reads the event feed. Every claim and settle used to NOTIFY
-- the feed whether or not anyone listened, and a notifying commit holds one database-wide lock
-- until its WAL flush, so two workers' commits flushed one at a time (bench/results/
-- 2026-12-07-pgscale.md: +19 % drain at 2 processes with the feed off). A subscriber (the
-- dashboard's live view, store.subscribe) keeps a row here while it listens, its seen_at
-- refreshed by the database's clock; the statements publish only while a row is fresher than
-- a minute (queries.SUBSCRIBED). Unlogged: after a crash the subscribers re-register on
-- their next refresh, and nothing else reads it.
CREATE UNLOGGED TABLE {schema}.conveyor_event_subscribers (
    id      text PRIMARY KEY,
    seen_at double precision NOT NULL
);
