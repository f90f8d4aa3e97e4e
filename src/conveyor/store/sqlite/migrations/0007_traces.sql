-- Conveyor schema, version 7: trace contexts (observability/tracing.py). With tracing on, a
-- producer keeps each job's W3C traceparent here, written before the job itself, so the
-- worker's span joins the enqueuing span's trace. Maintenance deletes the rows of jobs that
-- are gone. Nothing is written while tracing is off.
CREATE TABLE conveyor_traces (
    job_id      TEXT NOT NULL PRIMARY KEY,
    traceparent TEXT NOT NULL,
    created_at  REAL NOT NULL
) WITHOUT ROWID;

CREATE INDEX conveyor_traces_created ON conveyor_traces (created_at);
