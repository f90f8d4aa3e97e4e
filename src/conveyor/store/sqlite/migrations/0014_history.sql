-- Conveyor schema, version 14: attempt history's pending rows (issue 15). A settle inserts its
-- attempt rows here, in its own transaction, and nothing else: no secondary index to update,
-- no rollup row to upsert. Maintenance (and every history read, first) moves them into
-- conveyor_attempts and adds them to the rollups in one write transaction, up to a rowid
-- watermark (store/sqlite/history_fold.py), so each row is counted exactly once. `bucket`: the
-- duration's histogram bucket (history/rollup.py), so the fold runs in SQL alone.
CREATE TABLE conveyor_attempts_pending (
    job_id          TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    task            TEXT NOT NULL,
    queue           TEXT NOT NULL,
    tenant          TEXT,
    worker_id       TEXT,
    host            TEXT,
    pid             INTEGER,
    started_at      REAL NOT NULL,
    ended_at        REAL NOT NULL,
    duration        REAL NOT NULL,
    outcome         TEXT NOT NULL,
    error_type      TEXT,
    error_message   TEXT,
    error_traceback TEXT,
    error_sealed    TEXT,
    fingerprint     TEXT,
    cpu             REAL,
    rss             INTEGER,
    bucket          INTEGER NOT NULL
)
