"""Limits per key on SQLite (limits/keys.py): enqueue with a key's strategy, the keyed part
of a limited claim, and unparking a key when one of its jobs is settled. Every step runs in
the caller's write transaction: SQLite's single writer makes each one exact."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

import orjson

from ...job import EnqueueResult, JobEvent, JobState, NewJob
from ...limits import keys
from ...limits.claiming import Budget, LimitedNames
from ...limits.model import Limit
from ..base import SCHEDULED_HINT, Progress, Settle
from .connection import Connections
from .rows import insert_row

_IN_TASKS = "(SELECT value FROM json_each(:tasks))"

KEY_LIMITS = """
SELECT kind, name, concurrency, rate, period, source, strategy FROM conveyor_limits
WHERE kind = 'key' AND name IN """ + _IN_TASKS

# A key's use as a new job under "drop" sees it: waiting and running jobs, starts in window.
KEY_USE = """
SELECT (SELECT count(*) FROM conveyor_jobs INDEXED BY conveyor_jobs_limit_key
        WHERE task = :task AND limit_key = :key AND state IN ('queued', 'scheduled')),
       (SELECT count(*) FROM conveyor_jobs INDEXED BY conveyor_jobs_limit_key
        WHERE task = :task AND limit_key = :key AND state = 'running'
          AND lease_expires_at > :now),
       (SELECT starts FROM conveyor_limit_keys WHERE task = :task AND limit_key = :key)"""

SUPERSEDE = """
UPDATE conveyor_jobs
SET state = 'cancelled', finished_at = :now, dead_reason = 'superseded by ' || :newest,
    dedupe_key = CASE WHEN unique_for IS NULL THEN NULL ELSE dedupe_key END,
    unique_until = CASE WHEN unique_for IS NULL THEN NULL ELSE :now + unique_for END
WHERE task = :task AND limit_key = :key AND state IN ('queued', 'scheduled') AND id <> :newest
RETURNING id, state, queue, task, tenant, progress"""

# Enqueue unparks the key: the claim looks at it again, and parks it again if it is full.
TOUCH_KEY = """
INSERT INTO conveyor_limit_keys (task, limit_key, queue, turn) VALUES (:task, :key, :queue, :now)
ON CONFLICT (task, limit_key) DO UPDATE SET parked_until = NULL, at_limit = 0,
    queue = excluded.queue"""

# A requeued job (a retry of a dead one) may belong to a key whose row is gone.
TOUCH_REQUEUED = """
INSERT INTO conveyor_limit_keys (task, limit_key, queue, turn)
SELECT task, limit_key, queue, :now FROM conveyor_jobs
WHERE id IN (SELECT value FROM json_each(:ids)) AND limit_key IS NOT NULL
ON CONFLICT (task, limit_key) DO UPDATE SET parked_until = NULL, at_limit = 0,
    queue = excluded.queue"""

UNPARK_SETTLED = """
UPDATE conveyor_limit_keys SET parked_until = NULL, at_limit = 0
WHERE parked_until IS NOT NULL AND (task, limit_key) IN (
    SELECT task, limit_key FROM conveyor_jobs
    WHERE id IN (SELECT value FROM json_each(:ids)) AND limit_key IS NOT NULL)"""

UNPARK_TASK = """
UPDATE conveyor_limit_keys SET parked_until = NULL, at_limit = 0
WHERE task = :name AND parked_until IS NOT NULL"""

UNPARK_DUE = """
UPDATE conveyor_limit_keys SET parked_until = NULL, at_limit = 0
WHERE task IN """ + _IN_TASKS + " AND parked_until <= :now"

_KEY_JOBS = "FROM conveyor_jobs AS job INDEXED BY conveyor_jobs_limit_key " \
            "WHERE job.task = k.task AND job.limit_key = k.limit_key"
READY_KEYS = f"""
SELECT k.task, k.limit_key, k.turn, k.starts,
    (SELECT count(*) {_KEY_JOBS} AND job.state = 'running' AND job.lease_expires_at > :now),
    (SELECT min(job.lease_expires_at) {_KEY_JOBS} AND job.state = 'running'),
    (SELECT min(job.run_at) {_KEY_JOBS} AND job.state = 'scheduled'),
    (SELECT count(*) FROM (SELECT 1 {_KEY_JOBS} AND job.state = 'queued' LIMIT :probe)),
    (SELECT job.queue {_KEY_JOBS} AND job.state = 'queued'
     ORDER BY job.priority DESC, job.run_at, job.id LIMIT 1),
    k.slowed_until
FROM conveyor_limit_keys AS k INDEXED BY conveyor_limit_keys_ready
WHERE k.task = :task AND k.queue IN (SELECT value FROM json_each(:queues))
  AND k.parked_until IS NULL
ORDER BY k.turn LIMIT :keys"""

KEY_CANDIDATES = """
SELECT id, task, queue, priority, run_at, limit_key
FROM conveyor_jobs INDEXED BY conveyor_jobs_limit_key
WHERE task = :task AND limit_key = :key AND state = 'queued'
  AND (expires_at IS NULL OR expires_at > :now)
  AND queue IN (SELECT value FROM json_each(:queues))
ORDER BY priority DESC, run_at, id LIMIT :room"""

UPDATE_KEY = """
UPDATE conveyor_limit_keys SET turn = ?, starts = ?, parked_until = ?, at_limit = ?,
    queue = coalesce(?, queue)
WHERE task = ? AND limit_key = ?"""
DELETE_KEY = "DELETE FROM conveyor_limit_keys WHERE task = ? AND limit_key = ?"


# A job's key and its use (LimitControl.holding: which limit holds a queued job back).
KEY_OF_JOB = """
SELECT job.limit_key,
    (SELECT count(*) FROM conveyor_jobs AS other INDEXED BY conveyor_jobs_limit_key
     WHERE other.task = job.task AND other.limit_key = job.limit_key
       AND other.state = 'running' AND other.lease_expires_at > :now),
    (SELECT k.starts FROM conveyor_limit_keys AS k
     WHERE k.task = job.task AND k.limit_key = job.limit_key),
    (SELECT k.slowed_until FROM conveyor_limit_keys AS k
     WHERE k.task = job.task AND k.limit_key = job.limit_key)
FROM conveyor_jobs AS job WHERE job.id = :id AND job.limit_key IS NOT NULL"""

# RateLimited(..., slow="key"): the job's key is parked until the slow-down ends (a claim
# that reads it sooner, after an enqueue or a settle unparked it, parks it again). A task
# whose key limit has no caps gets a row with none, so claims of it take the keyed way.
KEY_OF_SLOWED = """
SELECT task, limit_key, queue FROM conveyor_jobs WHERE id = :id AND limit_key IS NOT NULL"""
KEY_LIMIT_FOR_SLOW = """
INSERT INTO conveyor_limits (kind, name, source, updated_at) VALUES ('key', :task, 'code', :now)
ON CONFLICT (kind, name) DO NOTHING"""
SLOW_KEY = """
INSERT INTO conveyor_limit_keys (task, limit_key, queue, turn, slowed_until, parked_until,
                                 at_limit)
VALUES (:task, :key, :queue, :now, :until, :until, 1)
ON CONFLICT (task, limit_key) DO UPDATE
SET slowed_until = max(coalesce(slowed_until, 0), excluded.slowed_until),
    parked_until = max(coalesce(parked_until, 0), excluded.slowed_until), at_limit = 1"""


class KeyLimits:
    """SQLiteStore's per-key limits (a part of its Limits mixin)."""

    db: Connections
    _limited: LimitedNames
    wake: Any

    def _enqueue_keyed(self, jobs: Sequence[NewJob], now: float) -> list[EnqueueResult]:
        """Insert a batch with keyed jobs: "drop" leaves out those whose key is full,
        "debounce" cancels the older waiting jobs of each key, every key is unparked."""
        built = [insert_row(job, now) for job in jobs]
        with self.db.write(promise=True,
                           wait=self.enqueue_wait) as conn:  # type: ignore[attr-defined]
            limits = _key_limits(conn, {job.task for job in jobs if job.limit_key})
            kept = _admitted(conn, jobs, limits, now)
            results = [self._insert_one(conn, row, result, now)  # type: ignore[attr-defined]
                       if job.id in kept else result._replace(state=JobState.CANCELLED,
                                                              dropped=True)
                       for job, (row, result) in zip(jobs, built, strict=True)]
            stored = [(job, result) for job, result in zip(jobs, results, strict=True)
                      if not (result.dropped or result.duplicate)]
            superseded = _supersede(conn, [job for job, _ in stored], limits, now)
            for (task, key), queue in sorted(keys.key_queues(j for j, _ in stored).items()):
                conn.execute(TOUCH_KEY, {"task": task, "key": key, "queue": queue, "now": now})
            # count the stored jobs (counters.py) and publish their first events
            self._enqueued(conn, [j for j, _ in stored],  # type: ignore[attr-defined]
                           [r for _, r in stored])
            if superseded and self.wake.has_subscribers():
                self.wake.publish([JobEvent(r[0], r[1], r[2], r[3], r[4] or None)
                                   for r in superseded])
        queues = {job.queue for job, _ in stored}
        if any(r.state == JobState.SCHEDULED for _, r in stored):
            queues.add(SCHEDULED_HINT)
        self.wake.notify(queues)
        return results

    async def key_use(self, job_id: str, now: float | None = None) -> keys.KeyUse | None:
        """The job's key with its running jobs and starts (None: the job has no key)."""
        with self.db.read() as conn:
            row = conn.execute(KEY_OF_JOB, {"id": job_id, "now": time.time() if now is None
                                            else now}).fetchone()
        return None if row is None else keys.KeyUse(row[0], row[1], orjson.loads(row[2] or "[]"),
                                                    row[3])

    async def slow_key(self, job_id: str, seconds: float, now: float | None = None) -> bool:
        """No job of this job's key starts before now + seconds (False: it has no key)."""
        now = time.time() if now is None else now
        with self.db.write() as conn:
            row = conn.execute(KEY_OF_SLOWED, {"id": job_id}).fetchone()
            if row is None:
                return False
            created = conn.execute(KEY_LIMIT_FOR_SLOW, {"task": row[0], "now": now}).rowcount
            conn.execute(SLOW_KEY, {"task": row[0], "key": row[1], "queue": row[2],
                                    "now": now, "until": now + seconds})
        if created:
            self._limits_changed()  # type: ignore[attr-defined]
        return True

    def _unpark_settled(self, conn: sqlite3.Connection, items: Sequence[Settle]) -> None:
        """A settled job of a key freed its slot: the next claim looks at the key. Only the
        jobs this store claimed under a key limit (claiming.KeyedClaims) run the statement."""
        ended = self._limited.keyed_claims.ended(
            item.lease.job_id for item in items if not isinstance(item, Progress))
        if ended:
            conn.execute(UNPARK_SETTLED, {"ids": orjson.dumps(ended).decode()})

    @staticmethod
    def _touch_requeued(conn: sqlite3.Connection, ids: Sequence[str], now: float) -> None:
        """A requeued job (a retry of a dead one) may belong to a key whose row is gone."""
        if ids:
            conn.execute(TOUCH_REQUEUED, {"ids": orjson.dumps(list(ids)).decode(), "now": now})

    def _key_candidates(self, conn: sqlite3.Connection, budget: Budget, queues: Sequence[str],
                        limit: int, now: float) -> tuple[list[tuple[Any, ...]],
                                                         dict[tuple[str, str], keys.KeyState]]:
        """The ready keys (round-robin order, parked ones not read) and their next jobs."""
        if not budget.keys:
            return [], {}
        conn.execute(UNPARK_DUE, {"tasks": orjson.dumps(sorted(budget.keys)).decode(),
                                  "now": now})
        states: dict[tuple[str, str], keys.KeyState] = {}
        wanted = orjson.dumps(list(queues)).decode()
        for task in sorted(budget.keys):
            for row in conn.execute(READY_KEYS, {"task": task, "now": now, "probe": limit + 1,
                                                 "keys": max(limit, keys.KEYS_PER_CLAIM),
                                                 "queues": wanted}):
                states[(row[0], row[1])] = keys.KeyState(
                    row[0], row[1], row[2], orjson.loads(row[3]), row[4], row[5], row[6], row[7],
                    row[8], slowed_until=row[9])
        keys.rooms(list(states.values()), budget.keys, now, limit)
        found: list[tuple[Any, ...]] = []
        for state in states.values():
            if state.room > 0:
                found.extend(conn.execute(KEY_CANDIDATES, {
                    "task": state.task, "key": state.key, "now": now, "queues": wanted,
                    "room": state.room}))
        return keys.round_robin(found, states), states

    @staticmethod
    def _keys_claimed(conn: sqlite3.Connection, budget: Budget,
                      states: dict[tuple[str, str], keys.KeyState],
                      taken: Sequence[tuple[Any, ...]], now: float, lease_for: float,
                      queues: Sequence[str]) -> None:
        """Write back each key read: its turn, its starts, parked or not (keys.changes)."""
        if not states:
            return
        served = keys.count_taken(states, taken)
        for change in keys.changes(states.values(), budget.keys, now, lease_for, served,
                                   queues):
            if change.delete:
                conn.execute(DELETE_KEY, (change.task, change.key))
            else:
                conn.execute(UPDATE_KEY, (change.turn, orjson.dumps(change.starts).decode(),
                                          change.parked_until, change.at_limit, change.queue,
                                          change.task, change.key))


def _key_limits(conn: sqlite3.Connection, tasks: set[str]) -> dict[str, Limit]:
    rows = conn.execute(KEY_LIMITS, {"tasks": orjson.dumps(sorted(tasks)).decode()})
    return {r[1]: Limit(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows}


def _admitted(conn: sqlite3.Connection, jobs: Sequence[NewJob], limits: dict[str, Limit],
              now: float) -> set[str]:
    """The ids stored: all but the jobs "drop" leaves out, batch order deciding."""
    kept, wanted = keys.under_drop(jobs, limits)
    for (task, key), ids in wanted.items():
        limit = limits[task]
        waiting, running, starts = conn.execute(KEY_USE, {"task": task, "key": key,
                                                          "now": now}).fetchone()
        started = len(keys.in_window(orjson.loads(starts or "[]"), limit, now))
        kept.update(ids[:keys.admit(limit, waiting, running, started, len(ids))])
    return kept


def _supersede(conn: sqlite3.Connection, stored: Sequence[NewJob], limits: dict[str, Limit],
               now: float) -> list[tuple[Any, ...]]:
    """Under "debounce": each key keeps only its newest waiting job (the batch's last)."""
    cancelled: list[tuple[Any, ...]] = []
    for (task, key), job_id in keys.newest_debounced(stored, limits).items():
        cancelled.extend(conn.execute(SUPERSEDE, {"task": task, "key": key, "now": now,
                                                  "newest": job_id}))
    return cancelled
