"""Limits per key on PostgreSQL (limits/keys.py): enqueue with a key's strategy, the keyed
part of a limited claim, and unparking a key when one of its jobs is settled.

Exact under concurrent claimers: a claim locks the key rows it reads (FOR UPDATE SKIP LOCKED:
a key another claimer holds is skipped this time, never double-counted) and counts the key's
running jobs after the lock. Enqueue under "drop" or "debounce" takes a transaction-scoped
advisory lock per key (in key order, so two producers never deadlock), so two producers do
not both see room for one slot. Enqueue unparks a key with an upsert that waits for a claim
holding the key's row, so a key can never be deleted as empty while a job of it commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import psycopg

from ...job import EnqueueResult, JobState, NewJob
from ...limits import keys, slowing
from ...limits.claiming import Budget, LimitedNames
from ...limits.model import Limit
from ..base import Progress, Settle
from .enqueue import Channels, Render, Session, insert_jobs
from .queries import feed

Rows = list[tuple[Any, ...]]

LOCK_KEYS = """
SELECT pg_advisory_xact_lock(hashtextextended(task || chr(31) || key, 20261204))
FROM unnest(%(tasks)s::text[], %(keys)s::text[]) AS wanted(task, key)
ORDER BY task, key"""

KEY_LIMITS = """
SELECT kind, name, concurrency, rate, period, source, strategy FROM {schema}.conveyor_limits
WHERE kind = 'key' AND name = ANY(%(tasks)s::text[])"""

KEY_USE = """
SELECT wanted.task, wanted.key,
    (SELECT count(*) FROM {schema}.conveyor_jobs AS job
     WHERE job.task = wanted.task AND job.limit_key = wanted.key
       AND job.state IN ('queued', 'scheduled')),
    (SELECT count(*) FROM {schema}.conveyor_jobs AS job
     WHERE job.task = wanted.task AND job.limit_key = wanted.key AND job.state = 'running'
       AND job.lease_expires_at > {now}),
    (SELECT k.starts FROM {schema}.conveyor_limit_keys AS k
     WHERE k.task = wanted.task AND k.limit_key = wanted.key),
    {now}
FROM unnest(%(tasks)s::text[], %(keys)s::text[]) AS wanted(task, key)"""

SUPERSEDE = """
WITH changed AS (
    UPDATE {schema}.conveyor_jobs AS job
    SET state = 'cancelled', finished_at = {now}, dead_reason = 'superseded by ' || newest.id,
        dedupe_key = CASE WHEN job.unique_for IS NULL THEN NULL ELSE job.dedupe_key END,
        unique_until = CASE WHEN job.unique_for IS NULL THEN NULL
                            ELSE {now} + job.unique_for END
    FROM unnest(%(tasks)s::text[], %(keys)s::text[], %(ids)s::text[]) AS newest(task, key, id)
    WHERE job.task = newest.task AND job.limit_key = newest.key
      AND job.state IN ('queued', 'scheduled') AND job.id <> newest.id
    RETURNING job.id, job.state, job.queue, job.task, job.tenant, job.progress),
feed AS (""" + feed("changed") + """)
SELECT count(*) FROM changed WHERE (SELECT count(*) FROM feed) >= 0"""

# Enqueue unparks each key (the claim looks at it again and parks it again if it is full).
# DO UPDATE locks an existing row, so it waits for a claim holding it: see the docstring.
TOUCH_KEYS = """
INSERT INTO {schema}.conveyor_limit_keys AS k (task, limit_key, queue, turn)
SELECT task, key, queue, {now}
FROM unnest(%(tasks)s::text[], %(keys)s::text[], %(queues)s::text[]) AS wanted(task, key, queue)
ORDER BY task, key
ON CONFLICT (task, limit_key) DO UPDATE SET parked_until = NULL, at_limit = false,
    queue = excluded.queue"""

# A requeued job (a retry of a dead one) may belong to a key whose row is gone.
TOUCH_REQUEUED = """
INSERT INTO {schema}.conveyor_limit_keys AS k (task, limit_key, queue, turn)
SELECT DISTINCT ON (task, limit_key) task, limit_key, queue, {now}
FROM {schema}.conveyor_jobs
WHERE id = ANY(%(ids)s::text[]) AND limit_key IS NOT NULL
ORDER BY task, limit_key
ON CONFLICT (task, limit_key) DO UPDATE SET parked_until = NULL, at_limit = false,
    queue = excluded.queue"""

UNPARK_SETTLED = """
UPDATE {schema}.conveyor_limit_keys AS k SET parked_until = NULL, at_limit = false
FROM {schema}.conveyor_jobs AS job
WHERE job.id = ANY(%(ids)s::text[]) AND job.limit_key IS NOT NULL
  AND k.task = job.task AND k.limit_key = job.limit_key AND k.parked_until IS NOT NULL"""

UNPARK_TASK = """
UPDATE {schema}.conveyor_limit_keys SET parked_until = NULL, at_limit = false
WHERE task = %(name)s AND parked_until IS NOT NULL"""

UNPARK_DUE = """
UPDATE {schema}.conveyor_limit_keys AS k SET parked_until = NULL, at_limit = false
FROM (SELECT task, limit_key FROM {schema}.conveyor_limit_keys
      WHERE task = ANY(%(tasks)s::text[]) AND parked_until <= %(now)s
      ORDER BY task, parked_until LIMIT 1000 FOR UPDATE SKIP LOCKED) AS due
WHERE k.task = due.task AND k.limit_key = due.limit_key"""

_KEY_JOBS = "FROM {schema}.conveyor_jobs AS job " \
            "WHERE job.task = k.task AND job.limit_key = k.limit_key"
READY_KEYS = f"""
SELECT k.task, k.limit_key, k.turn, k.starts,
    (SELECT count(*) {_KEY_JOBS} AND job.state = 'running'
        AND job.lease_expires_at > %(now)s),
    (SELECT min(job.lease_expires_at) {_KEY_JOBS} AND job.state = 'running'),
    (SELECT min(job.run_at) {_KEY_JOBS} AND job.state = 'scheduled'),
    (SELECT count(*) FROM (SELECT 1 {_KEY_JOBS} AND job.state = 'queued'
                           LIMIT %(probe)s) AS queued),
    (SELECT job.queue {_KEY_JOBS} AND job.state = 'queued'
     ORDER BY job.priority DESC, job.run_at, job.id LIMIT 1),
    k.slowed_until
FROM (SELECT picked.task, picked.limit_key FROM unnest(%(tasks)s::text[]) AS wanted(name)
      CROSS JOIN LATERAL (
          SELECT ready.task, ready.limit_key FROM {{schema}}.conveyor_limit_keys AS ready
          WHERE ready.task = wanted.name AND ready.queue = ANY(%(queues)s::text[])
            AND ready.parked_until IS NULL
          ORDER BY ready.turn LIMIT %(keys)s FOR UPDATE SKIP LOCKED) AS picked) AS picked
JOIN {{schema}}.conveyor_limit_keys AS k USING (task, limit_key)"""

KEY_CANDIDATES = """
SELECT candidate.id, candidate.task, candidate.queue, candidate.priority, candidate.run_at,
       candidate.limit_key
FROM unnest(%(tasks)s::text[], %(keys)s::text[], %(rooms)s::integer[])
    AS wanted(task, key, room)
CROSS JOIN LATERAL (
    SELECT id, task, queue, priority, run_at, limit_key FROM {schema}.conveyor_jobs
    WHERE task = wanted.task AND limit_key = wanted.key AND state = 'queued'
      AND (expires_at IS NULL OR expires_at > %(now)s)
      AND queue = ANY(%(queues)s::text[])
      AND queue NOT IN (SELECT name FROM {schema}.conveyor_queues WHERE paused)
    ORDER BY priority DESC, run_at, id
    LIMIT wanted.room
    FOR UPDATE SKIP LOCKED) AS candidate"""

KEYS_CLAIMED = """
WITH changed AS (
    UPDATE {schema}.conveyor_limit_keys AS k
    SET turn = change.turn, starts = change.starts, parked_until = change.parked_until,
        at_limit = change.at_limit, queue = coalesce(change.queue, k.queue)
    FROM unnest(%(tasks)s::text[], %(keys)s::text[], %(turns)s::float8[], %(starts)s::text[],
                %(parked)s::float8[], %(at_limit)s::boolean[], %(delete)s::boolean[],
                %(queues)s::text[])
        AS change(task, key, turn, starts, parked_until, at_limit, gone, queue)
    WHERE k.task = change.task AND k.limit_key = change.key AND NOT change.gone)
DELETE FROM {schema}.conveyor_limit_keys AS k
USING unnest(%(tasks)s::text[], %(keys)s::text[], %(delete)s::boolean[])
    AS change(task, key, gone)
WHERE k.task = change.task AND k.limit_key = change.key AND change.gone"""


async def insert_keyed(session: Session, render: Render, jobs: Sequence[NewJob],
                       now: float | None, channels: Channels) -> list[EnqueueResult]:
    """Insert a batch with keyed jobs (in the caller's transaction): "drop" leaves out those
    whose key is full, "debounce" cancels each key's older waiting jobs, every key is
    unparked."""
    named = sorted({(job.task, job.limit_key) for job in jobs if job.limit_key is not None})
    tasks, names = [t for t, _ in named], [k for _, k in named]
    limits = {r[1]: Limit(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in await
              session.fetch(render(KEY_LIMITS), {"tasks": sorted(set(tasks))})}
    if any(limit.strategy != "queue" for limit in limits.values()):
        await session.fetch(render(LOCK_KEYS), {"tasks": tasks, "keys": names})
    kept = await _admitted(session, render, jobs, limits, now)
    stored = await insert_jobs(session, render, [j for j in jobs if j.id in kept], now,
                               channels, keys_done=True) if kept else []
    results = iter(stored)
    answers = [next(results) if job.id in kept else EnqueueResult(
        job.id, False, JobState.CANCELLED, 0.0, 0.0, dropped=True) for job in jobs]
    fresh = [job for job, answer in zip(jobs, answers, strict=True)
             if not (answer.dropped or answer.duplicate)]
    newest = keys.newest_debounced(fresh, limits)
    if newest:
        await session.fetch(render(SUPERSEDE), {
            "now": now, "events": channels.events, "tasks": [t for t, _ in newest],
            "keys": [k for _, k in newest], "ids": list(newest.values())})
    if named:
        queues = keys.key_queues(jobs)
        await session.run(render(TOUCH_KEYS), {"now": now, "tasks": tasks, "keys": names,
                                               "queues": [queues[n] for n in named]})
    return answers


async def _admitted(session: Session, render: Render, jobs: Sequence[NewJob],
                    limits: dict[str, Limit], now: float | None) -> set[str]:
    """The ids stored: all but the jobs "drop" leaves out, batch order deciding."""
    kept, wanted = keys.under_drop(jobs, limits)
    if wanted:
        rows = await session.fetch(render(KEY_USE), {"now": now,
                                                     "tasks": [t for t, _ in wanted],
                                                     "keys": [k for _, k in wanted]})
        for task, key, waiting, running, starts, clock in rows:
            limit = limits[task]
            started = len(keys.in_window(orjson.loads(starts or "[]"), limit, clock))
            ids = wanted[(task, key)]
            kept.update(ids[:keys.admit(limit, waiting, running, started, len(ids))])
    return kept


# A job's key and its use (LimitControl.holding: which limit holds a queued job back).
KEY_OF_JOB = """
SELECT job.limit_key,
    (SELECT count(*) FROM {schema}.conveyor_jobs AS other
     WHERE other.task = job.task AND other.limit_key = job.limit_key
       AND other.state = 'running' AND other.lease_expires_at > {now}),
    (SELECT k.starts FROM {schema}.conveyor_limit_keys AS k
     WHERE k.task = job.task AND k.limit_key = job.limit_key),
    (SELECT k.slowed_until FROM {schema}.conveyor_limit_keys AS k
     WHERE k.task = job.task AND k.limit_key = job.limit_key)
FROM {schema}.conveyor_jobs AS job WHERE job.id = %(id)s AND job.limit_key IS NOT NULL"""

# RateLimited(..., slow="key"): the job's key is parked until the slow-down ends (a claim
# that reads it sooner, after an enqueue or a settle unparked it, parks it again). A task
# whose key limit has no caps gets a row with none, so claims of it take the keyed way
# (DO NOTHING locks no existing limit row: no lock-order question with claims).
SLOW_KEY = """
WITH job AS (
    SELECT task, limit_key, queue FROM {schema}.conveyor_jobs
    WHERE id = %(id)s AND limit_key IS NOT NULL),
old AS (
    SELECT k.slowed_until FROM {schema}.conveyor_limit_keys AS k, job
    WHERE k.task = job.task AND k.limit_key = job.limit_key),
created AS (
    INSERT INTO {schema}.conveyor_limits (kind, name, source, updated_at)
    SELECT 'key', task, 'code', {now} FROM job
    ON CONFLICT (kind, name) DO NOTHING RETURNING name),
slowed AS (
    INSERT INTO {schema}.conveyor_limit_keys AS k
        (task, limit_key, queue, turn, slowed_until, parked_until, at_limit)
    SELECT task, limit_key, queue, {now}, {now} + %(seconds)s, {now} + %(seconds)s, true
    FROM job
    ON CONFLICT (task, limit_key) DO UPDATE
    SET slowed_until = greatest(coalesce(k.slowed_until, 0), excluded.slowed_until),
        parked_until = greatest(coalesce(k.parked_until, 0), excluded.slowed_until),
        at_limit = true
    RETURNING 1)
SELECT (SELECT count(*) FROM slowed), (SELECT count(*) FROM created),
       (SELECT slowed_until FROM old), {now} + %(seconds)s, {now}"""


class KeyLimits:
    """PostgresStore's per-key limits (a part of its Limits mixin)."""

    _limited: LimitedNames

    async def key_use(self: Any, job_id: str, now: float | None = None) -> keys.KeyUse | None:
        """The job's key with its running jobs and starts (None: the job has no key)."""
        rows = await self._one(KEY_OF_JOB, {"id": job_id, "now": now})
        return None if not rows else keys.KeyUse(rows[0][0], rows[0][1],
                                                 orjson.loads(rows[0][2] or "[]"), rows[0][3])

    async def slow_key(self: Any, job_id: str, seconds: float,
                       now: float | None = None) -> bool:
        """No job of this job's key starts before now + seconds. True when that began the
        key's slow-down or moved its end later (False too when the job has no key)."""
        [(slowed, created, before, until, at)] = await self._one(SLOW_KEY, {
            "id": job_id, "seconds": seconds, "now": now})
        if created:
            await self._limits_changed()
        return bool(slowed) and slowing.change(before, max(before or 0.0, until), at).moved

    def _keyed_ended(self, items: Sequence[Settle]) -> list[str]:
        """The settled jobs that this store claimed under a key limit, whose run ends."""
        return self._limited.keyed_claims.ended(
            item.lease.job_id for item in items if not isinstance(item, Progress))

    async def _unpark_settled(self: Any, conn: psycopg.AsyncConnection[Any],
                              ids: Sequence[str]) -> None:
        """A settled job freed its key's slot: the next claim looks at the key."""
        if ids:
            await conn.execute(self.statement(UNPARK_SETTLED), {"ids": list(ids)})

    async def _touch_requeued(self: Any, conn: psycopg.AsyncConnection[Any],
                              ids: Sequence[str]) -> None:
        if ids:
            await conn.execute(self.statement(TOUCH_REQUEUED), {"ids": list(ids), "now": None})

    async def _key_candidates(self: Any, conn: psycopg.AsyncConnection[Any], budget: Budget,
                              queues: Sequence[str], limit: int, now: float
                              ) -> tuple[Rows, dict[tuple[str, str], keys.KeyState]]:
        """The ready keys (round-robin order, parked ones not read) and their next jobs."""
        if not budget.keys:
            return [], {}
        tasks = sorted(budget.keys)
        await conn.execute(self.statement(UNPARK_DUE), {"tasks": tasks, "now": now})
        rows = await self._fetch(conn, READY_KEYS, {
            "tasks": tasks, "now": now, "probe": limit + 1, "queues": list(queues),
            "keys": max(limit, keys.KEYS_PER_CLAIM)})
        states = {(r[0], r[1]): keys.KeyState(r[0], r[1], r[2], orjson.loads(r[3]), r[4],
                                              r[5], r[6], r[7], r[8], slowed_until=r[9])
                  for r in rows}
        keys.rooms(list(states.values()), budget.keys, now, limit)
        open_keys = [s for s in states.values() if s.room > 0]
        if not open_keys:
            return [], states
        found = await self._fetch(conn, KEY_CANDIDATES, {
            "tasks": [s.task for s in open_keys], "keys": [s.key for s in open_keys],
            "rooms": [s.room for s in open_keys], "now": now, "queues": list(queues)})
        return keys.round_robin(found, states), states

    async def _keys_claimed(self: Any, conn: psycopg.AsyncConnection[Any], budget: Budget,
                            states: dict[tuple[str, str], keys.KeyState],
                            taken: Sequence[tuple[Any, ...]], now: float,
                            lease_for: float, queues: Sequence[str]) -> None:
        """Write back each key read: its turn, its starts, parked or not (keys.changes)."""
        if not states:
            return
        served = keys.count_taken(states, taken)
        changes = keys.changes(states.values(), budget.keys, now, lease_for, served, queues)
        await conn.execute(self.statement(KEYS_CLAIMED), {
            "tasks": [c.task for c in changes], "keys": [c.key for c in changes],
            "turns": [c.turn for c in changes],
            "starts": [orjson.dumps(c.starts).decode() for c in changes],
            "parked": [c.parked_until for c in changes],
            "at_limit": [c.at_limit for c in changes], "delete": [c.delete for c in changes],
            "queues": [c.queue for c in changes]})
