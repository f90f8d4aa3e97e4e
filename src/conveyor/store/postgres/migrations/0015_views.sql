-- Conveyor schema, version 15 (PostgreSQL): operator views at size (issue 16).
-- The running jobs, newest first (state=running, alone or with a queue or task): only the
-- few rows a worker holds, so a page of them never walks the millions of finished ones. The
-- lists write the state filter as this predicate, literally (store/filters.py).
CREATE INDEX conveyor_jobs_running_ids ON {schema}.conveyor_jobs (id) WHERE state = 'running';
-- A tenant's jobs of one task, queue and state, newest first (a tenant's filtered list):
-- every equality then the keyset column, so the page is one range of the index.
CREATE INDEX conveyor_jobs_tenant_fields ON {schema}.conveyor_jobs (tenant, task, queue, state, id)
    WHERE tenant <> '';
-- Of the jobs a worker holds claimed ahead (prefetched, not started), how many per queue
-- ({"queue": n}): the queues' "running N (+M claimed)".
ALTER TABLE {schema}.conveyor_workers ADD COLUMN claimed_queues jsonb NOT NULL DEFAULT '{}';
