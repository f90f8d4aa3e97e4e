-- Conveyor schema, version 7 (PostgreSQL): trace contexts (observability/tracing.py). With
-- tracing on, a producer keeps each job's W3C traceparent here, written before the job
-- itself, so the worker's span joins the enqueuing span's trace. Maintenance deletes the rows
-- of jobs that are gone. Nothing is written while tracing is off.
CREATE TABLE {schema}.conveyor_traces (
    job_id      text             PRIMARY KEY,
    traceparent text             NOT NULL,
    created_at  double precision NOT NULL
);

CREATE INDEX conveyor_traces_created ON {schema}.conveyor_traces (created_at)
