"""Every PostgreSQL statement Conveyor runs, as a named constant (hand-off's are in
handoff.py). Nothing is built from data.

Two markers are filled in once, when a store is made (`render`): `{schema}` becomes the store's
quoted schema name (validated, from the URL), and `{now}` becomes the clock expression: the
caller's `%(now)s` when given, else the database's own clock. Times are epoch seconds.
Batches travel as arrays and are spread with unnest(), so a batch is one statement.
"""

from __future__ import annotations

# The database clock decides when the caller passes no `now` (DESIGN section 6).
NOW = "coalesce(%(now)s::float8, date_part('epoch', now()))"


def render(template: str, quoted_schema: str) -> str:
    """The statement for one schema: markers replaced, nothing else touched."""
    return template.replace("{schema}", quoted_schema).replace("{now}", NOW)


def compact(statement: str) -> str:
    """`statement` without its lines' indentation and its blank lines, for a long statement
    sent often: psycopg parses a query's %(name)s placeholders once and caches the result only
    for a query of at most 4,096 characters (psycopg._queries.MAX_CACHED_STATEMENT_LENGTH);
    a longer one is parsed again at every execute. CLAIM_ROOM_AT_WALL, every capped claim's
    statement, was 4,370 characters in the public schema: ~150 us of the worker's CPU a claim
    (bench/results/2026-12-09-pgcap20.md). Only for statements with no SQL comment and no
    string literal across lines (either would change meaning)."""
    lines = [line.strip() for line in statement.splitlines()]
    if any("--" in line or line.count("'") % 2 for line in lines):
        raise ValueError("a comment or a literal across lines: cannot compact")
    return "\n".join(line for line in lines if line)


# --- the event feed --------------------------------------------------------------------------
# Job state changes ride in the statement that makes them: pg_notify inside the transaction is
# delivered at commit, in commit order across sessions, and never for a rolled-back change.
# Ten rows per payload keeps each one under NOTIFY's 8000-byte limit even with 255-character
# tenants and 200-character task names. %(events)s is NULL when the feed is switched off.

def feed(source: str) -> str:
    """A CTE body that publishes `source`'s (id, state, queue, task, tenant, progress) rows."""
    return """
    SELECT pg_notify(%(events)s, json_agg(json_build_array(
               id, state, queue, task, nullif(tenant, ''), progress))::text)
    FROM (SELECT *, (row_number() OVER () - 1) / 10 AS chunk FROM """ + source + """) AS rows
    WHERE %(events)s::text IS NOT NULL
    GROUP BY chunk"""


def grouped_feed(source: str, state: str = "state") -> str:
    """A CTE body that publishes `source`'s new (id, state, queue, task, tenant) rows
    compactly: one item per (state, queue, task, tenant) with up to 100 ids, so a bulk insert
    of 1,000 jobs sends ten payloads instead of a hundred. NOTIFY takes 8,000 bytes at most:
    100 ids take 4,000, and a 200-character task, a 100-character queue and a 255-character
    tenant at most 3,330 more, even with every character JSON-escaped.
    `state`: the SQL for the rows' state (a literal when `source` has no state column)."""
    return """
    SELECT pg_notify(%(events)s, json_build_array(json_build_array(
               json_agg(id), state, queue, task, nullif(tenant, ''), NULL))::text)
    FROM (SELECT id, """ + state + """ AS state, queue, task, tenant,
                 (row_number() OVER (PARTITION BY """ + state + """, queue, task, tenant) - 1)
                 / 100 AS chunk
          FROM """ + source + """) AS rows
    WHERE %(events)s::text IS NOT NULL
    GROUP BY state, queue, task, tenant, chunk"""


def with_feed(change: str, columns: str) -> str:
    """`change` (a statement RETURNING the feed's columns and `columns`), publishing its rows."""
    return ("WITH changed AS (" + change + "),\nfeed AS (" + feed("changed") + ")\n"
            "SELECT " + columns + " FROM changed WHERE (SELECT count(*) FROM feed) >= 0")


# An unlimited claim's commit does not wait for its WAL flush either (trip.LIMITED_CLAIM says
# why a limited one's does not). Each claim's statement publishes to the event feed
# (pg_notify), and PostgreSQL serialises the commits of every transaction that notifies behind
# one lock of the database, held until the commit's flush is done: with a flush in each claim
# and each settle, two worker processes' commits went one flush at a time, never grouped, and
# the claims' flushes were half of them (bench/results/2026-12-07-pgscale.md). The job's
# settle is durable and flushes its claim with it; a claim lost in a server crash leaves its
# job queued, to run again as after a lost lease (at least once, as always).
UNFLUSHED = "SELECT set_config('synchronous_commit', 'off', true)"


def unflushed(claim: str) -> str:
    """`claim` (a with_feed statement) committing without waiting for its WAL flush. The
    setting is the transaction's own (set_config's `true`): a claim is a transaction alone."""
    head, sep, tail = claim.rpartition(")\nSELECT ")
    if not sep:
        raise ValueError("not a with_feed statement")
    return (head + "),\nunflushed AS (" + UNFLUSHED + ")\nSELECT " + tail
            + " AND (SELECT count(*) FROM unflushed) = 1")


# --- schema ----------------------------------------------------------------------------------

# Every node may run migrate at boot: one advisory lock per schema serialises them, so
# CREATE SCHEMA IF NOT EXISTS and the version check never race.
MIGRATE_LOCK = "SELECT pg_advisory_xact_lock(hashtext(%(lock)s))"
CREATE_SCHEMA = "CREATE SCHEMA IF NOT EXISTS {schema}"
SCHEMA_TABLE = """
CREATE TABLE IF NOT EXISTS {schema}.conveyor_schema (
    version    integer PRIMARY KEY,
    applied_at double precision NOT NULL
)"""
SCHEMA_EXISTS = "SELECT to_regclass(%(table)s) IS NOT NULL"
SCHEMA_VERSION = "SELECT coalesce(max(version), 0) FROM {schema}.conveyor_schema"
RECORD_VERSION = """
INSERT INTO {schema}.conveyor_schema (version, applied_at)
VALUES (%(version)s, date_part('epoch', now()))"""

# --- producing -------------------------------------------------------------------------------

# A new job's wake-up: its queue, marked (a leading newline, which no queue name has) when the
# job may sort before a claimer's cursor: a priority, or a run_at already past.
_WAKE = "CASE WHEN priority <> 0 OR run_at < created_at THEN E'\\n' || queue ELSE queue END"

# A key held by a finished job whose `unique_for` window has passed is free again.
FREE_EXPIRED_KEYS = """
UPDATE {schema}.conveyor_jobs AS job SET dedupe_key = NULL
FROM unnest(%(tenants)s::text[], %(keys)s::text[]) AS wanted(tenant, key)
WHERE job.tenant = wanted.tenant AND job.dedupe_key = wanted.key
  AND job.unique_until IS NOT NULL AND job.unique_until <= {now}
  AND job.state IN ('completed', 'dead', 'cancelled')"""

# Insert and notify in one statement: pg_notify inside the enqueue transaction is delivered
# at commit, so a listener never wakes for a job it cannot see yet (nor for a rolled-back one).
# ON CONFLICT DO NOTHING skips a job whose key is already held (the partial unique index), and
# a job whose id is already stored (a producer spool forwarding a file twice): it lands once.
# An empty key is no key.
_NEW_JOB_COLUMNS = """id, task, queue, state, priority, payload, tenant, correlation_id,
        idempotency_key, dedupe_key, unique_for, max_attempts, created_at, run_at, expires_at,
        batch_id, parent_id, sensitive, limit_key"""
INSERT_JOBS = """
WITH clock AS (SELECT {now} AS now),
inserted AS (
    INSERT INTO {schema}.conveyor_jobs (""" + _NEW_JOB_COLUMNS + """)
    SELECT new.id, new.task, new.queue,
           CASE WHEN coalesce(new.run_at, clock.now + new.delay) > clock.now
                THEN 'scheduled' ELSE 'queued' END,
           new.priority, new.payload, new.tenant, new.correlation_id, new.idempotency_key,
           nullif(new.idempotency_key, ''), new.unique_for, new.max_attempts, clock.now,
           coalesce(new.run_at, clock.now + new.delay), clock.now + new.ttl,
           new.batch_id, new.parent_id, new.sensitive, new.limit_key
    FROM clock, unnest(%(ids)b::text[], %(tasks)b::text[], %(queues)b::text[],
                       %(priorities)b::integer[], %(payloads)b::bytea[], %(tenants)b::text[],
                       %(correlation_ids)b::text[], %(keys)b::text[],
                       %(unique_fors)b::float8[], %(max_attempts)b::integer[],
                       %(delays)b::float8[], %(run_ats)b::float8[], %(ttls)b::float8[],
                       %(batch_ids)b::text[], %(parent_ids)b::text[], %(sensitives)b::text[],
                       %(limit_keys)b::text[])
         AS new(id, task, queue, priority, payload, tenant, correlation_id, idempotency_key,
                unique_for, max_attempts, delay, run_at, ttl, batch_id, parent_id, sensitive,
                limit_key)
    ON CONFLICT DO NOTHING
    RETURNING id, state, created_at, run_at, queue, task, tenant, progress, priority),
notified AS (
    SELECT pg_notify(%(channel)s, wake)
    FROM (SELECT DISTINCT """ + _WAKE + """ AS wake FROM inserted) AS woken),
feed AS (""" + grouped_feed("inserted") + """)
SELECT id, state, created_at, run_at FROM inserted
WHERE (SELECT count(*) FROM notified) >= 0 AND (SELECT count(*) FROM feed) >= 0"""

# The same without ON CONFLICT, whose speculative insertion costs a quarter of a batch's
# time: for jobs without keys, in autocommit, where a stored id (rare) fails the statement
# with nothing stored and the caller runs INSERT_JOBS instead.
INSERT_JOBS_NEW = INSERT_JOBS.replace("    ON CONFLICT DO NOTHING\n", "")
assert INSERT_JOBS_NEW != INSERT_JOBS

# A plain batch (the common bulk call): new jobs due now, with no idempotency key, correlation
# id, parent or schedule of their own, and one tenant, batch, TTL, unique_for and set of
# sensitive paths for all. Six
# arrays instead of fifteen, sent in binary; no RETURNING to the client (every row is
# 'queued' at the statement's clock, which comes back once). No ON CONFLICT either: ids are
# fresh, and the rare clash (a spooled batch forwarded twice) fails the statement, which the
# store then runs again through INSERT_JOBS.
INSERT_PLAIN = """
WITH clock AS (SELECT {now} AS now),
inserted AS (
    INSERT INTO {schema}.conveyor_jobs (id, task, queue, state, priority, payload, tenant,
        unique_for, max_attempts, created_at, run_at, expires_at, batch_id, sensitive)
    SELECT new.id, new.task, new.queue, 'queued', new.priority, new.payload, %(tenant)s::text,
           %(unique_for)s::float8, new.max_attempts, clock.now, clock.now,
           clock.now + %(ttl)s::float8, %(batch_id)s::text, %(sensitive)s::text
    FROM clock, unnest(%(ids)b::text[], %(tasks)b::text[], %(queues)b::text[],
                       %(priorities)b::integer[], %(payloads)b::bytea[],
                       %(max_attempts)b::integer[])
         AS new(id, task, queue, priority, payload, max_attempts)
    RETURNING id, queue, task, tenant, priority, run_at, created_at),
notified AS (
    SELECT pg_notify(%(channel)s, wake)
    FROM (SELECT DISTINCT """ + _WAKE + """ AS wake FROM inserted) AS woken),
feed AS (""" + grouped_feed("inserted", "'queued'") + """)
SELECT clock.now, (SELECT count(*) FROM inserted) FROM clock
WHERE (SELECT count(*) FROM notified) >= 0 AND (SELECT count(*) FROM feed) >= 0"""

# A plain batch from a blocking caller streams in with COPY (postgres/copy.py), text format:
# heap pages filled many rows at a time. Without `now` the times are the columns' defaults
# (the transaction's clock); wake-ups, the feed and that clock follow in one statement.
COPY_PLAIN = """COPY {schema}.conveyor_jobs (id, task, queue, state, priority, payload,
    unique_for, max_attempts, batch_id, sensitive) FROM STDIN"""
COPY_PLAIN_AT = """COPY {schema}.conveyor_jobs (id, task, queue, state, priority, payload,
    unique_for, max_attempts, batch_id, sensitive, created_at, run_at) FROM STDIN"""
AFTER_COPY = """
SELECT {now}, (SELECT count(*) FROM (
    SELECT pg_notify(%(channel)s, queue) FROM unnest(%(queues)b::text[]) AS queue
    UNION ALL
    SELECT pg_notify(%(events)s, item) FROM unnest(%(feed)b::text[]) AS item
    WHERE %(events)s::text IS NOT NULL) AS sent)"""

# One job (the common `enqueue` call): scalar parameters, no arrays to build or unnest, and one
# feed payload. Same columns, states and conflict handling as INSERT_JOBS.
INSERT_ONE = """
WITH clock AS (SELECT {now} AS now),
inserted AS (
    INSERT INTO {schema}.conveyor_jobs (""" + _NEW_JOB_COLUMNS + """)
    SELECT %(id)s::text, %(task)s::text, %(queue)s::text,
           CASE WHEN coalesce(%(run_at)s::float8, clock.now + %(delay)s::float8) > clock.now
                THEN 'scheduled' ELSE 'queued' END,
           %(priority)s::integer, %(payload)s::bytea, %(tenant)s::text, %(correlation_id)s::text,
           %(key)s::text, nullif(%(key)s::text, ''), %(unique_for)s::float8,
           %(max_attempts)b::integer, clock.now,
           coalesce(%(run_at)s::float8, clock.now + %(delay)s::float8),
           clock.now + %(ttl)s::float8, %(batch_id)s::text, %(parent_id)s::text,
           %(sensitive)s::text, %(limit_key)s::text
    FROM clock
    ON CONFLICT DO NOTHING
    RETURNING id, state, created_at, run_at, queue, task, tenant, progress, priority),
notified AS (SELECT pg_notify(%(channel)s, """ + _WAKE + """) FROM inserted),
feed AS (
    SELECT pg_notify(%(events)s, json_build_array(json_build_array(
               id, state, queue, task, nullif(tenant, ''), progress))::text)
    FROM inserted WHERE %(events)s::text IS NOT NULL)
SELECT id, state, created_at, run_at FROM inserted
WHERE (SELECT count(*) FROM notified) >= 0 AND (SELECT count(*) FROM feed) >= 0"""

INSERT_ONE_NEW = INSERT_ONE.replace("    ON CONFLICT DO NOTHING\n", "")  # as INSERT_JOBS_NEW
assert INSERT_ONE_NEW != INSERT_ONE

# One plain job (rows.plain) at the database's clock, the most common call of all: twelve
# positional parameters instead of twenty named, the times left to the columns' defaults,
# the wake-up and the feed sent from RETURNING (no CTEs: a tenth faster). No ON CONFLICT
# (see INSERT_JOBS_NEW). handoff.INSERT_ONE_HANDOFF inserts the same job but may lease it to
# a waiting worker.
INSERT_ONE_PLAIN = """
INSERT INTO {schema}.conveyor_jobs (id, task, queue, state, priority, payload, unique_for,
                                    max_attempts, batch_id, sensitive)
VALUES (%s, %s, %s, 'queued', %s, %b, %s, %s, %s, %s)
RETURNING created_at,
    pg_notify(%s, CASE WHEN priority <> 0 THEN E'\\n' || queue ELSE queue END),
    CASE WHEN %s::text IS NOT NULL THEN pg_notify(%s, json_build_array(json_build_array(
        id, 'queued', queue, task, NULL, NULL))::text) END"""

FIND_BY_KEYS = """
SELECT job.tenant, job.dedupe_key, job.id, job.state, job.created_at, job.run_at
FROM {schema}.conveyor_jobs AS job
JOIN unnest(%(tenants)s::text[], %(keys)s::text[]) AS wanted(tenant, key)
  ON job.tenant = wanted.tenant AND job.dedupe_key = wanted.key"""

FIND_BY_IDS = """
SELECT id, state, created_at, run_at FROM {schema}.conveyor_jobs WHERE id = ANY(%(ids)s::text[])"""

NOTIFY = "SELECT pg_notify(%(channel)s, queue) FROM unnest(%(queues)s::text[]) AS queue"
# Jobs made claimable again (promoted, rescued, requeued, a queue resumed) sort before claim
# cursors: their wake-up says so (postgres/cursor.py).
NOTIFY_BEHIND = """
SELECT pg_notify(%(channel)s, E'\\n' || queue) FROM unnest(%(queues)s::text[]) AS queue"""

# Scopes the rest of this transaction to one tenant for row-level security.
SET_TENANT = "SELECT set_config('conveyor.tenant', %(tenant)s, true)"

# --- consuming -------------------------------------------------------------------------------

# FOR UPDATE SKIP LOCKED: concurrent claimers each lock different rows and never wait on one
# another; a row another claimer holds is simply not this claimer's. The ORDER BY matches a
# partial index over queued rows, so the scan reads only the first `limit` claimable entries.
# started_at last: the store's start time of the run (ClaimedJob.starts_at, JobContext).
_CLAIMED = """job.id, job.task, job.queue, job.payload, job.attempt, job.max_attempts,
          job.lease_token, job.tenant, job.correlation_id, job.priority, job.created_at,
          job.expires_at, job.run_at, job.state, job.progress, job.started_at"""
_CLAIMED_COLUMNS = """id, task, queue, payload, attempt, max_attempts, lease_token, tenant,
    correlation_id, priority, created_at, expires_at, run_at, started_at"""

_CLAIM = """
WITH picked AS (
    SELECT id FROM {schema}.conveyor_jobs
    WHERE state = 'queued' AND {queue_filter}
      AND (expires_at IS NULL OR expires_at > {now})
      AND queue NOT IN (SELECT name FROM {schema}.conveyor_queues WHERE paused)
    ORDER BY priority DESC, run_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
UPDATE {schema}.conveyor_jobs AS job
SET state = 'running', attempt = job.attempt + 1, lease_token = %(token)s,
    lease_expires_at = {now} + %(lease_for)s, started_at = {now},
    worker_id = %(worker_id)s, worker_host = %(host)s, cancel_requested = false
FROM picked WHERE job.id = picked.id
RETURNING """ + _CLAIMED

CLAIM_QUEUE = unflushed(with_feed(_CLAIM.replace("{queue_filter}", "queue = %(queue)s"),
                                  _CLAIMED_COLUMNS))

# The same, continuing after this claimer's last claimed job at the same priority: the index
# range starts there, so the scan skips the entries of jobs claimed before it, which a
# transaction held open elsewhere keeps from being vacuumed (store.ClaimCursor).
CLAIM_QUEUE_AFTER = unflushed(with_feed(_CLAIM.replace(
    "{queue_filter}", "queue = %(queue)s AND priority = %(after_priority)s "
                      "AND (run_at, id) > (%(after_run_at)s::float8, %(after_id)s::text)"),
    _CLAIMED_COLUMNS))

# Several queues: the best `limit` of each queue from its own index range (a LATERAL per
# queue, locked with SKIP LOCKED there), then the best `limit` of those. A worker on a few
# queues never walks past another queue's backlog. The extra candidates it locked are let go
# when this one-statement transaction ends, a moment later.
_CLAIM_FROM = """
WITH RECURSIVE {queues},
candidates AS (
    SELECT candidate.id, candidate.priority, candidate.run_at
    FROM wanted
    CROSS JOIN LATERAL (
        SELECT id, priority, run_at FROM {schema}.conveyor_jobs
        WHERE state = 'queued' AND queue = wanted.queue{after}
          AND (expires_at IS NULL OR expires_at > {now})
        ORDER BY priority DESC, run_at, id
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED) AS candidate
    WHERE wanted.queue IS NOT NULL
      AND wanted.queue NOT IN (SELECT name FROM {schema}.conveyor_queues WHERE paused)),
picked AS (
    SELECT id FROM candidates ORDER BY priority DESC, run_at, id LIMIT %(limit)s)
UPDATE {schema}.conveyor_jobs AS job
SET state = 'running', attempt = job.attempt + 1, lease_token = %(token)s,
    lease_expires_at = {now} + %(lease_for)s, started_at = {now},
    worker_id = %(worker_id)s, worker_host = %(host)s, cancel_requested = false
FROM picked WHERE job.id = picked.id
RETURNING """ + _CLAIMED

CLAIM_QUEUES = unflushed(with_feed(_CLAIM_FROM.replace(
    "{queues}", "wanted(queue) AS (SELECT unnest(%(queues)s::text[]))").replace("{after}", ""),
    _CLAIMED_COLUMNS))

# The same, each queue continuing after this claimer's cursor on it (CLAIM_QUEUE_AFTER).
CLAIM_QUEUES_AFTER = unflushed(with_feed(_CLAIM_FROM.replace(
    "{queues}", """wanted(queue, after_priority, after_run_at, after_id) AS (
    SELECT * FROM unnest(%(queues)s::text[], %(after_priorities)s::integer[],
                         %(after_run_ats)s::float8[], %(after_ids)s::text[]))""").replace(
    "{after}", """
          AND priority = wanted.after_priority
          AND (run_at, id) > (wanted.after_run_at, wanted.after_id)"""), _CLAIMED_COLUMNS))

# Any queue: the queues that have queued jobs, found by skipping through the claim index
# (one short descent per queue, however deep each backlog), then as for several queues.
CLAIM_ANY = unflushed(with_feed(_CLAIM_FROM.replace("{queues}", """wanted(queue) AS (
    (SELECT queue FROM {schema}.conveyor_jobs WHERE state = 'queued' ORDER BY queue LIMIT 1)
    UNION ALL
    SELECT (SELECT next.queue FROM {schema}.conveyor_jobs AS next
            WHERE next.state = 'queued' AND next.queue > wanted.queue
            ORDER BY next.queue LIMIT 1)
    FROM wanted WHERE wanted.queue IS NOT NULL)""").replace("{after}", ""), _CLAIMED_COLUMNS))

# One round trip: record the worker, extend every lease it holds, report what it still holds.
HEARTBEAT = """
WITH worker AS (
    INSERT INTO {schema}.conveyor_workers (id, host, pid, queues, concurrency, started_at,
                                           heartbeat_at, running, claimed, claimed_queues,
                                           claimed_until)
    VALUES (%(id)s, %(host)s, %(pid)s, %(queues)s, %(concurrency)s, {now}, {now}, %(running)s,
            %(claimed)s, %(claimed_queues)s::jsonb, {now} + %(lease_for)s)
    ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at,
                                   running = excluded.running, claimed = excluded.claimed,
                                   claimed_queues = excluded.claimed_queues,
                                   claimed_until = excluded.claimed_until)
UPDATE {schema}.conveyor_jobs SET lease_expires_at = {now} + %(lease_for)s
WHERE worker_id = %(id)s AND state = 'running'
RETURNING id, lease_token, cancel_requested"""

DELETE_WORKER = "DELETE FROM {schema}.conveyor_workers WHERE id = %(id)s"
DELETE_STALE_WORKERS = "DELETE FROM {schema}.conveyor_workers WHERE heartbeat_at < {now} - 3600"

# --- settling: each kind is one fenced UPDATE over a batch (ids, tokens, values) --------------

# The fence: a write applies only while the job is still running under the same lease token.
# A rescued and re-claimed job has a new token, so a stale worker's write touches nothing.
_SETTLED = "id, lease_token"
_FENCE = """
WHERE job.id = item.id AND job.lease_token = item.token AND job.state = 'running'
RETURNING job.id, job.lease_token, job.state, job.queue, job.task, job.tenant, job.progress"""

# A job that reaches a terminal state gives its idempotency key back, unless the task asked
# to keep it reserved for `unique_for` seconds after finishing.
_RELEASE_KEY = """
    dedupe_key = CASE WHEN job.unique_for IS NULL THEN NULL ELSE job.dedupe_key END,
    unique_until = CASE WHEN job.unique_for IS NULL THEN NULL ELSE {now} + job.unique_for END"""

COMPLETE = with_feed("""
UPDATE {schema}.conveyor_jobs AS job
SET state = 'completed', result = item.result, finished_at = {now}, lease_expires_at = NULL,
    progress = CASE WHEN job.progress IS NULL THEN NULL ELSE 100 END, """ + _RELEASE_KEY + """
FROM unnest(%(ids)s::text[], %(tokens)s::bigint[], %(results)s::bytea[])
     AS item(id, token, result)""" + _FENCE, _SETTLED)

FAIL = with_feed("""
UPDATE {schema}.conveyor_jobs AS job
SET state = CASE WHEN item.retry_in IS NULL THEN 'dead'
                 WHEN item.retry_in <= 0 THEN 'queued' ELSE 'scheduled' END,
    run_at = coalesce({now} + item.retry_in, job.run_at),
    errors = job.errors || jsonb_build_array(item.error),
    finished_at = CASE WHEN item.retry_in IS NULL THEN {now} END,
    dead_reason = CASE WHEN item.retry_in IS NULL THEN item.reason END,
    dead_fingerprint = CASE WHEN item.retry_in IS NULL THEN item.fingerprint END,
    lease_expires_at = NULL,
    dedupe_key = CASE WHEN item.retry_in IS NOT NULL OR job.unique_for IS NOT NULL
                      THEN job.dedupe_key END,
    unique_until = CASE WHEN item.retry_in IS NULL AND job.unique_for IS NOT NULL
                        THEN {now} + job.unique_for END
FROM unnest(%(ids)s::text[], %(tokens)s::bigint[], %(errors)s::jsonb[], %(retry_ins)s::float8[],
            %(reasons)s::text[], %(fingerprints)s::text[])
     AS item(id, token, error, retry_in, reason, fingerprint)""" + _FENCE, _SETTLED)

SNOOZE = with_feed("""
UPDATE {schema}.conveyor_jobs AS job
SET state = CASE WHEN item.seconds <= 0 THEN 'queued' ELSE 'scheduled' END,
    run_at = {now} + item.seconds, attempt = job.attempt - 1, lease_expires_at = NULL,
    started_at = NULL
FROM unnest(%(ids)s::text[], %(tokens)s::bigint[], %(seconds)s::float8[])
     AS item(id, token, seconds)""" + _FENCE, _SETTLED)

FINISH_CANCELLED = with_feed("""
UPDATE {schema}.conveyor_jobs AS job
SET state = 'cancelled', finished_at = {now}, lease_expires_at = NULL, dead_reason = item.reason,
""" + _RELEASE_KEY + """
FROM unnest(%(ids)s::text[], %(tokens)s::bigint[], %(reasons)s::text[])
     AS item(id, token, reason)""" + _FENCE, _SETTLED)

# Released jobs (a stopping worker's prefetched ones) are claimable again at once: their
# queues get a wake-up, marked as sorting before claim cursors (their run_at is old).
RELEASE = """
WITH changed AS (
UPDATE {schema}.conveyor_jobs AS job
SET state = 'queued', attempt = job.attempt - 1, lease_expires_at = NULL, started_at = NULL
FROM unnest(%(ids)s::text[], %(tokens)s::bigint[]) AS item(id, token)""" + _FENCE + """),
feed AS (""" + feed("changed") + """),
notified AS (
    SELECT pg_notify(%(channel)s, E'\\n' || queue)
    FROM (SELECT DISTINCT queue FROM changed) AS woken)
SELECT """ + _SETTLED + """ FROM changed
WHERE (SELECT count(*) FROM feed) >= 0 AND (SELECT count(*) FROM notified) >= 0"""

PROGRESS = with_feed("""
UPDATE {schema}.conveyor_jobs AS job
SET progress = item.percent, progress_step = item.step
FROM unnest(%(ids)s::text[], %(tokens)s::bigint[], %(percents)s::float8[], %(steps)s::text[])
     AS item(id, token, percent, step)""" + _FENCE, _SETTLED)

# --- control ---------------------------------------------------------------------------------

_TENANT = "(%(tenant)s::text IS NULL OR tenant = %(tenant)s)"
_EVENT = "id, state, queue, task, tenant, progress"  # what the event feed carries

CANCEL_WAITING = with_feed("""
UPDATE {schema}.conveyor_jobs AS job SET state = 'cancelled', finished_at = {now},
""" + _RELEASE_KEY + """
WHERE id = ANY(%(ids)s::text[]) AND state IN ('queued', 'scheduled') AND """ + _TENANT + """
RETURNING """ + _EVENT, _EVENT)

CANCEL_RUNNING = with_feed("""
UPDATE {schema}.conveyor_jobs SET cancel_requested = true
WHERE id = ANY(%(ids)s::text[]) AND state = 'running' AND """ + _TENANT + """
RETURNING """ + _EVENT, _EVENT)

STATES_OF = """
SELECT id, state FROM {schema}.conveyor_jobs
WHERE id = ANY(%(ids)s::text[]) AND """ + _TENANT

# A requeued job is active again: it keeps (or takes back, when nobody took it meanwhile) its
# idempotency key, and a dead or cancelled one gets a fresh set of attempts.
REQUEUE = with_feed("""
UPDATE {schema}.conveyor_jobs AS job
SET state = 'queued', run_at = {now}, finished_at = NULL, dead_reason = NULL, result = NULL,
    dead_fingerprint = NULL,
    expires_at = NULL, cancel_requested = false, lease_expires_at = NULL, unique_until = NULL,
    dedupe_key = coalesce(job.dedupe_key, CASE WHEN NOT EXISTS (
        SELECT 1 FROM {schema}.conveyor_jobs AS other
        WHERE other.tenant = job.tenant AND other.dedupe_key = job.idempotency_key
          AND other.id <> job.id) THEN job.idempotency_key END),
    attempt = CASE WHEN job.state IN ('dead', 'cancelled') THEN 0 ELSE job.attempt END
WHERE id = ANY(%(ids)s::text[]) AND state IN ('dead', 'cancelled', 'scheduled')
  AND """ + _TENANT + """
RETURNING """ + _EVENT, _EVENT)

DISCARD = """
DELETE FROM {schema}.conveyor_jobs
WHERE id = ANY(%(ids)s::text[]) AND state IN ('completed', 'dead', 'cancelled')
  AND """ + _TENANT

SET_PAUSED = """
INSERT INTO {schema}.conveyor_queues (name, paused, updated_at)
VALUES (%(name)s, %(paused)s, date_part('epoch', now()))
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at"""

# --- maintenance: bounded, and SKIP LOCKED so every node can run it at once ----------------
# Two nodes rescuing at the same moment lock disjoint rows; a row a worker is settling right
# now is skipped, and the worker's fenced write then wins or loses cleanly.

# Each picks its rows in a MATERIALIZED CTE: `WHERE id IN (SELECT ... LIMIT n)` may be
# re-run by the planner and overshoot the limit; a materialized pick runs exactly once.
# The rescue takes expired leases in no order (as SQLite's does): ordered by lease, a batch
# read and sorted every expired row to keep 1,000 (252 ms a batch at 50,000 expired leases,
# once per tick until all are back); unordered, it stops at its LIMIT. Every expired lease
# is rescued within a few ticks either way.
RESCUE_EXPIRED = with_feed("""
WITH picked AS MATERIALIZED (
    SELECT id FROM {schema}.conveyor_jobs
    WHERE state = 'running' AND lease_expires_at < {now}
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
UPDATE {schema}.conveyor_jobs AS job
    SET state = CASE WHEN job.attempt >= job.max_attempts THEN 'dead' ELSE 'queued' END,
        dead_reason = CASE WHEN job.attempt >= job.max_attempts THEN 'worker_lost' END,
        finished_at = CASE WHEN job.attempt >= job.max_attempts THEN {now} END,
        errors = job.errors || jsonb_build_array(jsonb_build_object(
            'attempt', job.attempt, 'type', 'WorkerLost',
            'message', 'worker ' || coalesce(job.worker_id, '?') ||
                       ' stopped heartbeating; its lease expired',
            'traceback', NULL, 'worker', job.worker_id, 'host', job.worker_host, 'at', {now})),
        run_at = {now}, lease_expires_at = NULL,
        dedupe_key = CASE WHEN job.attempt < job.max_attempts OR job.unique_for IS NOT NULL
                          THEN job.dedupe_key END,
        unique_until = CASE WHEN job.attempt >= job.max_attempts AND job.unique_for IS NOT NULL
                            THEN {now} + job.unique_for END
FROM picked WHERE job.id = picked.id AND job.state = 'running'
RETURNING job.id, job.state, job.queue, job.task, job.tenant, job.progress, job.attempt,
          job.worker_id, job.worker_host, job.started_at, {now} AS at""",
    _EVENT + ", attempt, worker_id, worker_host, started_at, at")

PROMOTE_SCHEDULED = with_feed("""
WITH picked AS MATERIALIZED (
    SELECT id FROM {schema}.conveyor_jobs
    WHERE state = 'scheduled' AND run_at <= {now}
    ORDER BY run_at LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
UPDATE {schema}.conveyor_jobs AS job SET state = 'queued'
FROM picked WHERE job.id = picked.id AND job.state = 'scheduled'
RETURNING job.id, job.state, job.queue, job.task, job.tenant, job.progress""", _EVENT)

NEXT_SCHEDULED = "SELECT min(run_at) FROM {schema}.conveyor_jobs WHERE state = 'scheduled'"
# Before PROMOTE_SCHEDULED: the same, and is anything due? Maintenance promotes every second
# on every worker process and mostly finds nothing due; PROMOTE_SCHEDULED (with its feed) is
# a statement the server plans at nearly every run (it runs on any of the pool's connections,
# a few times on each, so psycopg rarely prepares it), this one a small read of the scheduled
# index: 0.4 ms of server CPU a call with nothing due, was 1.4 (with BEGIN and COMMIT;
# bench/results/2026-12-09-pgplan.md).
NEXT_DUE = ("SELECT min(run_at), coalesce(min(run_at) <= {now}, false) FROM "
            "{schema}.conveyor_jobs WHERE state = 'scheduled'")

EXPIRE = with_feed("""
WITH picked AS MATERIALIZED (
    SELECT id FROM {schema}.conveyor_jobs
    WHERE state IN ('queued', 'scheduled') AND expires_at IS NOT NULL AND expires_at <= {now}
    ORDER BY expires_at LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
UPDATE {schema}.conveyor_jobs AS job
SET state = 'dead', dead_reason = 'expired', finished_at = {now}, """ + _RELEASE_KEY + """
FROM picked WHERE job.id = picked.id AND job.state IN ('queued', 'scheduled')
RETURNING job.id, job.state, job.queue, job.task, job.tenant, job.progress""", _EVENT)

PRUNE = """
WITH picked AS MATERIALIZED (
    SELECT id FROM {schema}.conveyor_jobs
    WHERE finished_at IS NOT NULL AND finished_at < {now} - %(shortest)s
      AND ((state = 'completed' AND finished_at < {now} - %(completed)s)
        OR (state = 'dead' AND finished_at < {now} - %(dead)s)
        OR (state = 'cancelled' AND finished_at < {now} - %(cancelled)s))
      AND (unique_until IS NULL OR unique_until <= {now})
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
DELETE FROM {schema}.conveyor_jobs AS job USING picked WHERE job.id = picked.id"""

CLOCK = "SELECT {now}"
# live workers' claimed-ahead jobs by queue (counting.claimed_ahead): a few rows, one a worker,
# each while the leases of the jobs it counts may live (0034: its heartbeat's lease)
CLAIMED_AHEAD = """SELECT claimed_queues FROM {schema}.conveyor_workers
WHERE claimed > 0 AND coalesce(claimed_until, heartbeat_at + %(fresh)s) > {now}"""

# --- reading ---------------------------------------------------------------------------------

JOB_COLUMNS = """id, task, queue, payload, state, priority, attempt, max_attempts, tenant,
    correlation_id, idempotency_key, created_at, run_at, started_at, finished_at, expires_at,
    progress, progress_step, result, errors, worker_id, worker_host, dead_reason, batch_id,
    parent_id, cancel_requested, sensitive"""

GET_JOB = ("SELECT " + JOB_COLUMNS + " FROM {schema}.conveyor_jobs WHERE id = %(id)s AND "
           + _TENANT)

# list_jobs: one fixed clause per filter field, joined in a fixed order (never from data).
LIST_SELECT = "SELECT " + JOB_COLUMNS + " FROM {schema}.conveyor_jobs"
# ... and without the bodies (payload, result, errors, progress step): a page of jobs that
# does not show them does not read them either
LIST_SELECT_LIGHT = ("SELECT " + JOB_COLUMNS.replace("payload,", "NULL,", 1)
                     .replace("progress_step, result, errors,", "NULL, NULL, NULL,", 1)
                     + " FROM {schema}.conveyor_jobs")
LIST_CLAUSES = {
    # literals from the JobState enum, in this place (filters.states_clause): a single state
    # is the very predicate of its partial index (running: conveyor_jobs_running_queue, 0024)
    "states": "state",
    "retrying": "(state = 'scheduled' AND attempt > 0)",
    # the partial index of a queue's running jobs (0024), its predicate written out
    "queue": "queue = %(queue)s AND queue <> ''",
    "task": "task = %(task)s",
    "queues": "queue = ANY(%(queues)s::text[])",
    "tasks": "task = ANY(%(tasks)s::text[])",
    "with_errors": "errors <> '[]'::jsonb",  # the partial index conveyor_jobs_errored (0012)
    # the partial indexes of tenants' jobs (0011, 0015), their predicate written out
    "tenant": "tenant = %(tenant)s AND tenant <> ''",
    "correlation_id": "correlation_id = %(correlation_id)s",
    "idempotency_key": "idempotency_key = %(idempotency_key)s",
    # a batch's jobs: its range of conveyor_job_batches' key, newest id first (0037), each
    # job then read by its own key. A page after a cursor bounds that range too, in a text of
    # its own ("batch_id:after": a prepared statement's generic plan keeps the bound; the
    # planner carries `id = job_id` across, not `id < after`). For a large batch the planner may
    # merge that range with a backward walk of the jobs' key instead, and it cannot see
    # where the batch's ids end: the batch's newest id bounds that walk (without it, a page
    # of an old batch of 125,000 jobs walked the 8M newer jobs first: 12.4 s at 10M). A
    # batch's ids are those of one enqueue_many, made together (preparing.py): the walk
    # then crosses only what other producers enqueued meanwhile.
    "batch_id": ("id IN (SELECT job_id FROM {schema}.conveyor_job_batches"
                 " WHERE batch_id = %(batch_id)s)"
                 " AND id <= (SELECT max(job_id) FROM {schema}.conveyor_job_batches"
                 " WHERE batch_id = %(batch_id)s)"),
    "batch_id:after": ("id IN (SELECT job_id FROM {schema}.conveyor_job_batches"
                       " WHERE batch_id = %(batch_id)s AND job_id < %(after)s)"
                       " AND id <= (SELECT max(job_id) FROM {schema}.conveyor_job_batches"
                       " WHERE batch_id = %(batch_id)s)"),
    "after": "id < %(after)s",
}
LIST_ORDER = "ORDER BY id DESC LIMIT %(limit)s"
COUNT_UP_TO = ("SELECT count(*) FROM (SELECT 1 FROM {schema}.conveyor_jobs{where} "
               "LIMIT %(limit)s) AS capped")

# Stats.durations in the database, one row: p50/p95/p99 of the run times of the last 5,000
# jobs completed in the hour before now (a walk of conveyor_jobs_finished newest first, cut
# at the hour and at 5,000), as summaries.percentile ranks them: the 1-based rank
# min(n, max(1, round(p / 100 * n))), round of a double precision rounding half to even
# as Python's does. Only the three numbers cross the wire, not up to 5,000 rows.
DURATION_PERCENTILES = """
WITH recent AS (
  SELECT finished_at - started_at AS duration FROM {schema}.conveyor_jobs
  WHERE finished_at IS NOT NULL AND finished_at > {now} - 3600 AND state = 'completed'
    AND started_at IS NOT NULL AND """ + _TENANT + """
  ORDER BY finished_at DESC LIMIT 5000),
sorted AS (SELECT array_agg(duration ORDER BY duration) AS d, count(*) AS n FROM recent)
SELECT d[least(n, greatest(1, round(50::float8 / 100 * n)::bigint))],
       d[least(n, greatest(1, round(95::float8 / 100 * n)::bigint))],
       d[least(n, greatest(1, round(99::float8 / 100 * n)::bigint))]
FROM sorted"""

QUEUE_FLAGS = "SELECT name, paused FROM {schema}.conveyor_queues"

WORKERS = """
SELECT id, host, pid, queues, concurrency, started_at, heartbeat_at, running, claimed,
       claimed_queues
FROM {schema}.conveyor_workers ORDER BY started_at"""

# --- key rotation ----------------------------------------------------------------------------

SCAN_SEALABLE = """
SELECT id, tenant, payload, result, errors::text FROM {schema}.conveyor_jobs
WHERE id > %(after)s ORDER BY id LIMIT %(limit)s"""

# Compare-and-set per field: a field changed since it was read (an error appended by a fail,
# a result cleared by a retry) keeps that newer value, and the job is not counted. A write
# that commits first is seen: READ COMMITTED re-evaluates each CASE on the newest row.
REPLACE_SEALABLE = """
UPDATE {schema}.conveyor_jobs AS job
SET payload = CASE WHEN job.payload = item.old_payload THEN item.new_payload
                   ELSE job.payload END,
    result = CASE WHEN job.result IS NOT DISTINCT FROM item.old_result THEN item.new_result
                  ELSE job.result END,
    errors = CASE WHEN job.errors = item.old_errors::jsonb THEN item.new_errors::jsonb
                  ELSE job.errors END
FROM unnest(%(ids)s::text[], %(old_payloads)s::bytea[], %(new_payloads)s::bytea[],
            %(old_results)s::bytea[], %(new_results)s::bytea[], %(old_errors)s::text[],
            %(new_errors)s::text[])
     AS item(id, old_payload, new_payload, old_result, new_result, old_errors, new_errors)
WHERE job.id = item.id
RETURNING job.payload = item.new_payload
      AND job.result IS NOT DISTINCT FROM item.new_result
      AND job.errors = item.new_errors::jsonb"""

# --- find a job by the start or the end of its id (lookup.py) -------------------------------
# the prefix: a range of the primary key (with the exact match checked, whatever the collation)
FIND_BY_PREFIX = """
SELECT id FROM {schema}.conveyor_jobs
WHERE id >= %(low)s AND id < %(high)s AND left(id, length(%(fragment)s)) = %(fragment)s
  AND """ + _TENANT + """
ORDER BY id LIMIT %(limit)s"""
# the suffix: the jobs' reversed ids, kept beside them (conveyor_job_tails, migration 0020:
# written when a job is inserted, deleted with it, never by a claim or a settle), index
# conveyor_jobs_id_tail (tail text_pattern_ops), in that index's own order (USING ~<~), so
# that the planner walks it and stops at the limit
FIND_BY_SUFFIX = """
SELECT id FROM (
    SELECT reverse(tail) AS id FROM {schema}.conveyor_job_tails
    WHERE tail LIKE %(reversed)s AND """ + _TENANT + """
    ORDER BY tail USING ~<~ LIMIT %(limit)s) AS found
ORDER BY id"""

# --- dead letters by time of death (index conveyor_jobs_dead, migration 0009) ---------------
_DEAD_WHERE = """
WHERE state = 'dead' AND (%(queue)s::text IS NULL OR queue = %(queue)s) AND """ + _TENANT + """
  AND (%(after)s::text IS NULL OR (finished_at, id) < (
       SELECT finished_at, id FROM {schema}.conveyor_jobs
       WHERE id = %(after)s AND state = 'dead'))
ORDER BY finished_at DESC, id DESC LIMIT %(limit)s"""
DEAD_LETTERS = LIST_SELECT + _DEAD_WHERE

# A read with a byte budget (store/budget.py): a running sum of each row's stored bodies, in
# the page's order, and only the rows that begin under the budget leave the server (their
# bodies are not even detoasted past it: octet_length and pg_column_size read the headers).
# ROWS, not the default RANGE: the sum streams along the index scan, which stops at LIMIT.
_BODY_BYTES = ("(octet_length(payload) + coalesce(octet_length(result), 0)"
               " + coalesce(octet_length(progress_step), 0) + pg_column_size(errors))")


def _budgeted(order: str, rest: str) -> str:
    return ("SELECT * FROM (SELECT " + JOB_COLUMNS + ", sum(" + _BODY_BYTES + ") OVER (ORDER BY "
            + order + " ROWS UNBOUNDED PRECEDING) - " + _BODY_BYTES
            + " AS bytes_before FROM {schema}.conveyor_jobs" + rest
            + ") AS page WHERE bytes_before < %(budget)s ORDER BY " + order)


LIST_BUDGETED = _budgeted("id DESC", "{where} " + LIST_ORDER)
DEAD_LETTERS_BUDGETED = _budgeted("finished_at DESC, id DESC", _DEAD_WHERE)
