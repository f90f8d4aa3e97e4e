-- Conveyor schema, version 2 (PostgreSQL): hand-off to waiting workers (postgres/handoff.py).
-- A worker whose claims come back short (it waits for work) offers its free slots
-- here. An enqueue of a plain job
-- that finds an offer for its queue (and no job queued there before it) leases the new job to
-- that worker in its own statement, and its wake-up carries the job to the worker, which
-- starts it without a claim. `listener_pid` is the backend of the worker's LISTEN connection:
-- a worker that dies takes that backend with it, and an offer whose backend is gone is
-- ignored (and pruned). An offer lapses at `expires_at` unless the worker's next claim renews
-- it, so a worker that hangs (SIGSTOP, a blocked event loop) soon gets no more jobs.
CREATE TABLE {schema}.conveyor_offers (
    worker_id    text             PRIMARY KEY,
    worker_host  text             NOT NULL,
    queues       text[],
    slots        integer          NOT NULL,
    lease_for    double precision NOT NULL,
    listener_pid integer          NOT NULL,
    expires_at   double precision NOT NULL
) WITH (fillfactor = 50);
