"""Every SQLite statement Conveyor runs, as a named constant. Nothing is built from data.

Times are REAL epoch seconds; `:now` is always bound by the store (its clock or the caller's).
"""

SCHEMA_TABLE = """
CREATE TABLE IF NOT EXISTS conveyor_schema (
    version    INTEGER PRIMARY KEY,
    applied_at REAL NOT NULL
)"""
SCHEMA_VERSION = "SELECT coalesce(max(version), 0) FROM conveyor_schema"
SCHEMA_EXISTS = ("SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                 "AND name = 'conveyor_schema'")
RECORD_VERSION = "INSERT INTO conveyor_schema (version, applied_at) VALUES (?, ?)"

# A job that reaches a terminal state gives its idempotency key back, unless the task asked
# to keep it reserved for `unique_for` seconds after finishing.
_RELEASE_KEY = """
    dedupe_key = CASE WHEN unique_for IS NULL THEN NULL ELSE dedupe_key END,
    unique_until = CASE WHEN unique_for IS NULL THEN NULL ELSE :now + unique_for END"""

INSERT_JOB = """
INSERT INTO conveyor_jobs (id, task, queue, state, priority, payload, tenant, correlation_id,
    idempotency_key, dedupe_key, unique_for, max_attempts, created_at, run_at, expires_at,
    batch_id, parent_id, sensitive, limit_key)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING"""

FREE_EXPIRED_KEY = """
UPDATE conveyor_jobs SET dedupe_key = NULL
WHERE tenant = ? AND dedupe_key = ? AND unique_until IS NOT NULL AND unique_until <= ?
  AND state IN ('completed', 'dead', 'cancelled')"""

FIND_BY_ID = "SELECT id, state, created_at, run_at FROM conveyor_jobs WHERE id = ?"

FIND_BY_KEY = """
SELECT id, state, created_at, run_at FROM conveyor_jobs WHERE tenant = ? AND dedupe_key = ?"""

# Claims read one queue at a time from conveyor_jobs_claim (queue, priority DESC, run_at, id),
# so a worker on one queue never walks past another queue's backlog.
# The claim's columns; CLAIM_ONE_QUEUE and CLAIM_IDS are counted by the count trigger (a
# limited claim), their _SUMMED twins flip count_mark (0036): the store writes their counts
# as sums (count_sums.py) and the trigger stands aside for each row they move.
_CLAIMED = """
UPDATE conveyor_jobs
SET state = 'running', attempt = attempt + 1, lease_token = :token,
    lease_expires_at = :now + :lease_for, started_at = :now, worker_id = :worker_id,
    worker_host = :host, cancel_requested = 0{mark}"""
_CLAIM_RETURNING = """
RETURNING id, task, queue, payload, attempt, max_attempts, lease_token, tenant,
          correlation_id, priority, created_at, expires_at, run_at, started_at"""
_FROM_ONE_QUEUE = """
WHERE id IN (
    SELECT id FROM conveyor_jobs INDEXED BY conveyor_jobs_claim
    WHERE state = 'queued' AND queue = :queue AND (expires_at IS NULL OR expires_at > :now)
    ORDER BY priority DESC, run_at, id
    LIMIT :limit)"""
_FROM_IDS = """
WHERE id IN (SELECT value FROM json_each(:ids)) AND state = 'queued'"""
_MARK = ", count_mark = 1 - count_mark"  # 0036: counted by the store, not the trigger

CLAIM_ONE_QUEUE = _CLAIMED.format(mark="") + _FROM_ONE_QUEUE + _CLAIM_RETURNING
CLAIM_ONE_QUEUE_SUMMED = _CLAIMED.format(mark=_MARK) + _FROM_ONE_QUEUE + _CLAIM_RETURNING

# Several queues: the best `limit` candidates of each, merged by the store, then one UPDATE.
CLAIM_CANDIDATES = """
SELECT id, priority, run_at FROM conveyor_jobs INDEXED BY conveyor_jobs_claim
WHERE state = 'queued' AND queue = :queue AND (expires_at IS NULL OR expires_at > :now)
ORDER BY priority DESC, run_at, id
LIMIT :limit"""

CLAIM_IDS = _CLAIMED.format(mark="") + _FROM_IDS + _CLAIM_RETURNING
CLAIM_IDS_SUMMED = _CLAIMED.format(mark=_MARK) + _FROM_IDS + _CLAIM_RETURNING

# The queues that have queued jobs: a skip-scan over the claim index, one seek per queue.
QUEUED_QUEUES = """
WITH RECURSIVE found(name) AS (
    SELECT min(queue) FROM conveyor_jobs WHERE state = 'queued'
    UNION ALL
    SELECT (SELECT min(queue) FROM conveyor_jobs WHERE state = 'queued' AND queue > found.name)
    FROM found WHERE found.name IS NOT NULL)
SELECT name FROM found WHERE name IS NOT NULL"""

PAUSED_QUEUES = "SELECT name FROM conveyor_queues WHERE paused = 1"

UPSERT_WORKER = """
INSERT INTO conveyor_workers (id, host, pid, queues, concurrency, started_at, heartbeat_at,
                              running, claimed, claimed_queues, claimed_until)
VALUES (:id, :host, :pid, :queues, :concurrency, :now, :now, :running, :claimed,
        :claimed_queues, :now + :lease_for)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at,
                               running = excluded.running, claimed = excluded.claimed,
                               claimed_queues = excluded.claimed_queues,
                               claimed_until = excluded.claimed_until"""

EXTEND_LEASES = """
UPDATE conveyor_jobs SET lease_expires_at = :now + :lease_for
WHERE worker_id = :worker_id AND state = 'running'
RETURNING id, lease_token, cancel_requested"""

DELETE_WORKER = "DELETE FROM conveyor_workers WHERE id = ?"
DELETE_STALE_WORKERS = "DELETE FROM conveyor_workers WHERE heartbeat_at < ?"

_FENCE = "WHERE id = :id AND lease_token = :token AND state = 'running'"

COMPLETE = f"""
UPDATE conveyor_jobs
SET state = 'completed', result = :result, finished_at = :now, lease_expires_at = NULL,
    progress = CASE WHEN progress IS NULL THEN NULL ELSE 100 END, {_RELEASE_KEY}
{_FENCE}
RETURNING id, state, queue, task, tenant, progress"""

# A trip's completions in one statement (settling.py): the same write as COMPLETE, each row
# fenced by its own lease. {rows} is one "(?, ?, ?)" per completion (its id, token, result),
# after ?1, the time; RETURNING gives each written row once, matched back by id. It flips
# count_mark: its counts are the store's sums (0036), the count trigger stands aside.
COMPLETE_MANY = """
UPDATE conveyor_jobs
SET state = 'completed', result = item.column3, finished_at = ?1, lease_expires_at = NULL,
    count_mark = 1 - count_mark,
    progress = CASE WHEN progress IS NULL THEN NULL ELSE 100 END,
    dedupe_key = CASE WHEN unique_for IS NULL THEN NULL ELSE dedupe_key END,
    unique_until = CASE WHEN unique_for IS NULL THEN NULL ELSE ?1 + unique_for END
FROM (VALUES {rows}) AS item
WHERE conveyor_jobs.id = item.column1 AND conveyor_jobs.lease_token = item.column2
  AND conveyor_jobs.state = 'running'
RETURNING conveyor_jobs.id, conveyor_jobs.state, conveyor_jobs.queue, conveyor_jobs.task,
    conveyor_jobs.tenant, conveyor_jobs.progress, conveyor_jobs.attempt"""

FAIL = f"""
UPDATE conveyor_jobs
SET state = CASE WHEN :retry_at IS NULL THEN 'dead'
                 WHEN :retry_at <= :now THEN 'queued' ELSE 'scheduled' END,
    run_at = coalesce(:retry_at, run_at),
    errors = json_insert(errors, '$[#]', json(:error)),
    finished_at = CASE WHEN :retry_at IS NULL THEN :now END,
    dead_reason = CASE WHEN :retry_at IS NULL THEN :reason END,
    dead_fingerprint = CASE WHEN :retry_at IS NULL THEN :fingerprint END,
    lease_expires_at = NULL,
    dedupe_key = CASE WHEN :retry_at IS NOT NULL OR unique_for IS NOT NULL THEN dedupe_key END,
    unique_until = CASE WHEN :retry_at IS NULL AND unique_for IS NOT NULL
                        THEN :now + unique_for END
{_FENCE}
RETURNING id, state, queue, task, tenant, progress"""

# A trip's failures in one statement (settling.py): the same write as FAIL, each row fenced by
# its own lease. {rows} is one "(?, ?, ?, ?, ?, ?)" per failure (its id, token, error,
# retry_at, reason, the attempt's error fingerprint), after ?1, the time. Its counts are
# written as sums by state (settling.py): a retry due now is queued, a later one scheduled
# (counted as retrying: a claimed job has an attempt), a failure without one dead; the
# count trigger stands aside for its rows, whose count_mark it flips (0036).
FAIL_MANY = """
UPDATE conveyor_jobs
SET state = CASE WHEN item.column4 IS NULL THEN 'dead'
                 WHEN item.column4 <= ?1 THEN 'queued' ELSE 'scheduled' END,
    count_mark = 1 - count_mark,
    run_at = coalesce(item.column4, run_at),
    errors = json_insert(errors, '$[#]', json(item.column3)),
    finished_at = CASE WHEN item.column4 IS NULL THEN ?1 END,
    dead_reason = CASE WHEN item.column4 IS NULL THEN item.column5 END,
    dead_fingerprint = CASE WHEN item.column4 IS NULL THEN item.column6 END,
    lease_expires_at = NULL,
    dedupe_key = CASE WHEN item.column4 IS NOT NULL OR unique_for IS NOT NULL
                      THEN dedupe_key END,
    unique_until = CASE WHEN item.column4 IS NULL AND unique_for IS NOT NULL
                        THEN ?1 + unique_for END
FROM (VALUES {rows}) AS item
WHERE conveyor_jobs.id = item.column1 AND conveyor_jobs.lease_token = item.column2
  AND conveyor_jobs.state = 'running'
RETURNING conveyor_jobs.id, conveyor_jobs.state, conveyor_jobs.queue, conveyor_jobs.task,
    conveyor_jobs.tenant, conveyor_jobs.progress, conveyor_jobs.attempt"""

SNOOZE = f"""
UPDATE conveyor_jobs
SET state = CASE WHEN :until <= :now THEN 'queued' ELSE 'scheduled' END, run_at = :until,
    attempt = attempt - 1, lease_expires_at = NULL, started_at = NULL
{_FENCE}
RETURNING id, state, queue, task, tenant, progress"""

FINISH_CANCELLED = f"""
UPDATE conveyor_jobs
SET state = 'cancelled', finished_at = :now, lease_expires_at = NULL, dead_reason = :reason,
    {_RELEASE_KEY}
{_FENCE}
RETURNING id, state, queue, task, tenant, progress"""

RELEASE = f"""
UPDATE conveyor_jobs
SET state = 'queued', attempt = attempt - 1, lease_expires_at = NULL, started_at = NULL
{_FENCE}
RETURNING id, state, queue, task, tenant, progress"""

PROGRESS = f"""
UPDATE conveyor_jobs SET progress = :percent, progress_step = :step
{_FENCE}
RETURNING id, state, queue, task, tenant, progress"""

CANCEL_WAITING = f"""
UPDATE conveyor_jobs SET state = 'cancelled', finished_at = :now, {_RELEASE_KEY}
WHERE id = :id AND state IN ('queued', 'scheduled') AND (:tenant IS NULL OR tenant = :tenant)
RETURNING id, state, queue, task, tenant, progress"""

CANCEL_RUNNING = """
UPDATE conveyor_jobs SET cancel_requested = 1
WHERE id = :id AND state = 'running' AND (:tenant IS NULL OR tenant = :tenant)
RETURNING id, state, queue, task, tenant, progress"""

STATE_OF = """
SELECT state FROM conveyor_jobs WHERE id = :id AND (:tenant IS NULL OR tenant = :tenant)"""

# A requeued job is active again: it takes its idempotency key back unless another active job
# holds it now, and gets a fresh set of attempts unless it was only waiting to retry.
REQUEUE = """
UPDATE conveyor_jobs
SET state = 'queued', run_at = :now, finished_at = NULL, dead_reason = NULL, result = NULL,
    dead_fingerprint = NULL,
    expires_at = NULL, cancel_requested = 0, lease_expires_at = NULL, unique_until = NULL,
    dedupe_key = CASE WHEN idempotency_key IS NULL OR EXISTS (
                          SELECT 1 FROM conveyor_jobs AS other
                          WHERE other.tenant = conveyor_jobs.tenant
                            AND other.dedupe_key = conveyor_jobs.idempotency_key
                            AND other.id != conveyor_jobs.id)
                      THEN NULL ELSE idempotency_key END,
    attempt = CASE WHEN state = 'scheduled' THEN attempt ELSE 0 END
WHERE id = :id AND state IN ('dead', 'cancelled', 'scheduled')
  AND (:tenant IS NULL OR tenant = :tenant)
RETURNING id, state, queue, task, tenant, progress"""

SET_PAUSED = """
INSERT INTO conveyor_queues (name, paused, updated_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at"""

# --- maintenance -----------------------------------------------------------------------------

RESCUE_EXPIRED = """
UPDATE conveyor_jobs
SET state = CASE WHEN attempt >= max_attempts THEN 'dead' ELSE 'queued' END,
    dead_reason = CASE WHEN attempt >= max_attempts THEN 'worker_lost' END,
    finished_at = CASE WHEN attempt >= max_attempts THEN :now END,
    errors = json_insert(errors, '$[#]', json_object(
        'attempt', attempt, 'type', 'WorkerLost',
        'message', 'worker ' || coalesce(worker_id, '?') ||
                   ' stopped heartbeating; its lease expired',
        'traceback', NULL, 'worker', worker_id, 'host', worker_host, 'at', :now)),
    run_at = :now, lease_expires_at = NULL,
    dedupe_key = CASE WHEN attempt < max_attempts OR unique_for IS NOT NULL
                      THEN dedupe_key END,
    unique_until = CASE WHEN attempt >= max_attempts AND unique_for IS NOT NULL
                        THEN :now + unique_for END
WHERE id IN (SELECT id FROM conveyor_jobs
                WHERE state = 'running' AND lease_expires_at < :now LIMIT :limit)
RETURNING id, state, queue, task, tenant, progress, attempt, worker_id, worker_host,
          started_at"""

PROMOTE_SCHEDULED = """
UPDATE conveyor_jobs SET state = 'queued'
WHERE id IN (SELECT id FROM conveyor_jobs
                WHERE state = 'scheduled' AND run_at <= :now ORDER BY run_at LIMIT :limit)
RETURNING id, state, queue, task, tenant, progress"""

NEXT_SCHEDULED = "SELECT min(run_at) FROM conveyor_jobs WHERE state = 'scheduled'"

EXPIRE = f"""
UPDATE conveyor_jobs
SET state = 'dead', dead_reason = 'expired', finished_at = :now, {_RELEASE_KEY}
WHERE id IN (SELECT id FROM conveyor_jobs
                WHERE state IN ('queued', 'scheduled') AND expires_at IS NOT NULL
                  AND expires_at <= :now LIMIT :limit)
RETURNING id, state, queue, task, tenant, progress"""

PRUNE = """
DELETE FROM conveyor_jobs
WHERE id IN (SELECT id FROM conveyor_jobs INDEXED BY conveyor_jobs_finished
                WHERE finished_at IS NOT NULL AND finished_at < :oldest
                  AND ((state = 'completed' AND finished_at < :completed_before)
                    OR (state = 'dead' AND finished_at < :dead_before)
                    OR (state = 'cancelled' AND finished_at < :cancelled_before))
                  AND (unique_until IS NULL OR unique_until <= :now)
                LIMIT :limit)"""

# --- reading ---------------------------------------------------------------------------------

JOB_COLUMNS = """id, task, queue, payload, state, priority, attempt, max_attempts, tenant,
    correlation_id, idempotency_key, created_at, run_at, started_at, finished_at, expires_at,
    progress, progress_step, result, errors, worker_id, worker_host, dead_reason, batch_id,
    parent_id, cancel_requested, sensitive"""

GET_JOB = f"""SELECT {JOB_COLUMNS} FROM conveyor_jobs
WHERE id = :id AND (:tenant IS NULL OR tenant = :tenant)"""

# list_jobs: one fixed clause per filter field, joined in a fixed order (never from data).
LIST_SELECT = f"SELECT {JOB_COLUMNS} FROM conveyor_jobs"
# ... and without the bodies (payload, result, errors, progress step): a page of jobs that
# does not show them does not read them either
LIST_SELECT_LIGHT = ("SELECT " + JOB_COLUMNS.replace("payload,", "NULL,", 1)
                     .replace("progress_step, result, errors,", "NULL, NULL, NULL,", 1)
                     + " FROM conveyor_jobs")
LIST_CLAUSES = {
    # literals from the JobState enum, in this place (filters.states_clause). `+state`: no
    # index for the state, so a list walks the key newest first and stops at its LIMIT (the
    # partial index of dead rows, say, would read and sort a tenth of the table first);
    # but running jobs, few (the workers' slots), are read from their own index (0015)
    "states": "+state",
    "state:running": "state = 'running'",
    "retrying": "(state = 'scheduled' AND attempt > 0)",
    "queue": "queue = :queue",
    "task": "task = :task",
    "queues": "queue IN (SELECT value FROM json_each(:queues))",
    "tasks": "task IN (SELECT value FROM json_each(:tasks))",
    "with_errors": "errors != '[]'",  # the partial index conveyor_jobs_errored (0012)
    "tenant": "tenant = :tenant AND tenant != ''",  # the partial index of tenants' jobs
    "correlation_id": "correlation_id = :correlation_id",
    "idempotency_key": "idempotency_key = :idempotency_key",
    "batch_id": "batch_id = :batch_id",
    "after": "id < :after",
}
LIST_ORDER = "ORDER BY id DESC LIMIT :limit"
COUNT_UP_TO = "SELECT count(*) FROM (SELECT 1 FROM conveyor_jobs{where} LIMIT :limit)"

DURATIONS = """
SELECT finished_at - started_at FROM conveyor_jobs INDEXED BY conveyor_jobs_finished
WHERE finished_at IS NOT NULL AND finished_at > :since AND state = 'completed'
  AND started_at IS NOT NULL AND (:tenant IS NULL OR tenant = :tenant)
ORDER BY finished_at DESC LIMIT 5000"""

QUEUE_FLAGS = "SELECT name, paused FROM conveyor_queues"

# live workers' claimed-ahead jobs by queue (counting.claimed_ahead): a few rows, one a worker
# ... each while the leases of the jobs it counts may live (0034: its heartbeat's lease)
CLAIMED_AHEAD = """SELECT claimed_queues FROM conveyor_workers
WHERE claimed > 0 AND coalesce(claimed_until, heartbeat_at + :fresh) > :now"""

WORKERS = """
SELECT id, host, pid, queues, concurrency, started_at, heartbeat_at, running, claimed,
       claimed_queues
FROM conveyor_workers ORDER BY started_at"""

# --- key rotation ----------------------------------------------------------------------------

SCAN_SEALABLE = """
SELECT id, tenant, payload, result, errors FROM conveyor_jobs
WHERE id > :after ORDER BY id LIMIT :limit"""

# Compare-and-set per field: a field changed since it was read (an error appended by a fail,
# a result cleared by a retry) keeps that newer value; the job is then not counted.
REPLACE_SEALABLE = """
UPDATE conveyor_jobs
SET payload = CASE WHEN payload = :old_payload THEN :new_payload ELSE payload END,
    result = CASE WHEN result IS :old_result THEN :new_result ELSE result END,
    errors = CASE WHEN errors = :old_errors THEN :new_errors ELSE errors END
WHERE id = :id
RETURNING payload = :new_payload AND result IS :new_result AND errors = :new_errors"""

# --- read-first checks: maintenance takes the write lock only when it has work --------------

ANY_LEASE_EXPIRED = """
SELECT 1 FROM conveyor_jobs INDEXED BY conveyor_jobs_lease
WHERE state = 'running' AND lease_expires_at < :now LIMIT 1"""

ANY_EXPIRED = """
SELECT 1 FROM conveyor_jobs INDEXED BY conveyor_jobs_expires
WHERE state IN ('queued', 'scheduled') AND expires_at IS NOT NULL AND expires_at <= :now
LIMIT 1"""

OLDEST_FINISHED = """
SELECT min(finished_at) FROM conveyor_jobs INDEXED BY conveyor_jobs_finished
WHERE finished_at IS NOT NULL"""

DISCARD = """
DELETE FROM conveyor_jobs
WHERE id = :id AND state IN ('completed', 'dead', 'cancelled')
  AND (:tenant IS NULL OR tenant = :tenant)"""

# --- find a job by the start or the end of its id (lookup.py) -------------------------------
# the expression of index conveyor_jobs_id_tail (migration 0021): the last 4 characters
# of the id, reversed (ID_TAIL_WIDTH; the fragment's own check follows)
ID_TAIL_WIDTH = 4
ID_TAIL = "||".join(f"substr(id, {i}, 1)" for i in range(36, 36 - ID_TAIL_WIDTH, -1))
FIND_BY_PREFIX = """
SELECT id FROM conveyor_jobs
WHERE id >= :low AND id < :high AND (:tenant IS NULL OR tenant = :tenant)
ORDER BY id LIMIT :limit"""
FIND_BY_SUFFIX = f"""
SELECT id FROM conveyor_jobs
WHERE {ID_TAIL} >= :low AND {ID_TAIL} < :high AND substr(id, -length(:fragment)) = :fragment
  AND (:tenant IS NULL OR tenant = :tenant)
ORDER BY id LIMIT :limit"""

# --- dead letters by time of death (index conveyor_jobs_dead, migration 0009) ---------------
_DEAD_WHERE = """
WHERE state = 'dead' AND (:queue IS NULL OR queue = :queue)
  AND (:tenant IS NULL OR tenant = :tenant)"""
DEAD_LETTERS = f"""{LIST_SELECT}{_DEAD_WHERE}
  AND (:after IS NULL OR (finished_at, id) < (
       SELECT finished_at, id FROM conveyor_jobs WHERE id = :after AND state = 'dead'))
ORDER BY finished_at DESC, id DESC LIMIT :limit"""
