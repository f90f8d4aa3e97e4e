"""Flow control on SQLite (limits/claiming.py): the limit statements, and a mixin for
SQLiteStore with the limited claim. SQLite has one writer at a time, so counting and
claiming inside one BEGIN IMMEDIATE transaction is exact across every process."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

import orjson

from ...limits import slowing
from ...limits.claiming import (
    FORGET_AFTER,
    REFRESH,
    Budget,
    Candidate,
    LimitedNames,
    claim_time,
    earliest_room,
)
from ...limits.grants import with_grants
from ...limits.model import Limit, LimitUsage, declared_once
from ..base import LIMITS_HINT
from ..counting import CLAIMED_FRESH, claimed_ahead
from . import queries as q
from .connection import Connections
from .grants import GRANT_USES, USED
from .keys import UNPARK_TASK, KeyLimits

# With each name: may a rate or a slow-down hold its jobs back (room_at asks only then)?
LIMITED_NAMES = """SELECT kind, name, rate IS NOT NULL OR blocked_until IS NOT NULL,
    concurrency IS NOT NULL
FROM conveyor_limits"""

_RUNNING = """(SELECT count(*) FROM conveyor_jobs AS job INDEXED BY conveyor_jobs_lease
     WHERE job.state = 'running' AND job.lease_expires_at > :now
       AND CASE WHEN lim.kind = 'queue' THEN job.queue ELSE job.task END = lim.name)"""
_KEYS_AT_LIMIT = """CASE WHEN kind = 'key' THEN (
        SELECT count(*) FROM conveyor_limit_keys AS k
        WHERE k.task = lim.name AND k.at_limit AND k.parked_until > :now) ELSE 0 END"""
_USAGE = """
SELECT kind, name, concurrency, rate, period, source, blocked_until,
    """ + _RUNNING + """,
    CASE WHEN rate IS NULL THEN 0 ELSE (
        SELECT count(*) FROM conveyor_limit_starts AS start
        WHERE start.kind = lim.kind AND start.name = lim.name
          AND start.started_at > :now - lim.period) END,
    strategy,
    """ + _KEYS_AT_LIMIT + """
FROM conveyor_limits AS lim"""
USAGE_ALL = _USAGE + " ORDER BY kind, name"
# The limits a claim from these queues answers to: theirs, and every task's. A key limit's
# running jobs and full keys are for the operator only: the claim counts each key's own.
# A cap's use counts live grants (grants.USED: what the claimer :worker_id may claim).
USAGE_FOR_QUEUES = _USAGE.replace(_RUNNING, USED).replace(_KEYS_AT_LIMIT, "0") + """
WHERE lim.kind IN ('task', 'key') OR lim.name IN (SELECT value FROM json_each(:queues))"""

# The rates and slow-downs a claim answers to, then for each rate its rate-th newest start
# in the window (its window has room again when that start leaves it): claiming.earliest_room.
HELD_BY_RATE = """
SELECT kind, name, rate, period, CASE WHEN blocked_until > :now THEN blocked_until END
FROM conveyor_limits
WHERE (rate IS NOT NULL OR blocked_until > :now)
  AND (kind = 'task' OR kind = 'queue'
       AND (:queues IS NULL OR name IN (SELECT value FROM json_each(:queues))))"""
NTH_NEWEST_START = """
SELECT started_at FROM conveyor_limit_starts
WHERE kind = ? AND name = ? AND started_at > ? ORDER BY started_at DESC LIMIT 1 OFFSET ?"""

SET_LIMIT = """
INSERT INTO conveyor_limits (kind, name, concurrency, rate, period, source, strategy,
                             updated_at)
VALUES (:kind, :name, :concurrency, :rate, :period, :source, :strategy, :now)
ON CONFLICT (kind, name) DO UPDATE
SET concurrency = excluded.concurrency, rate = excluded.rate, period = excluded.period,
    source = excluded.source, strategy = excluded.strategy, updated_at = excluded.updated_at"""
# A declaration in code changes only what code set before (an operator's change stays),
# and only when it differs from what is stored.
DECLARE_LIMIT = SET_LIMIT + """ WHERE conveyor_limits.source = 'code'
  AND (conveyor_limits.concurrency, conveyor_limits.rate, conveyor_limits.period,
       conveyor_limits.strategy) IS NOT
      (excluded.concurrency, excluded.rate, excluded.period, excluded.strategy)"""
STORED_LIMITS = "SELECT kind, name, concurrency, rate, period, source, strategy " \
                "FROM conveyor_limits"
DELETE_LIMIT = "DELETE FROM conveyor_limits WHERE kind = :kind AND name = :name"
DELETE_STARTS = "DELETE FROM conveyor_limit_starts WHERE kind = :kind AND name = :name"
# A slow-down on a name without a limit makes a row with no caps (listed, removable with
# set_limit of no caps); claims of that name then take the limited way.
SLOWED_UNTIL = "SELECT blocked_until FROM conveyor_limits WHERE kind = :kind AND name = :name"
SLOW_DOWN = """
INSERT INTO conveyor_limits (kind, name, source, blocked_until, updated_at)
VALUES (:kind, :name, 'code', :until, :now)
ON CONFLICT (kind, name) DO UPDATE
SET blocked_until = max(coalesce(blocked_until, 0), excluded.blocked_until)"""

# A queue's best candidates, none of a task without room, none of a task limited per key
# (those come from keys.py). The walk through the claim index is bounded (`walk` entries)
# so a queue full of keyed jobs at their limit is not read whole at every claim; a bounded
# walk that found too few is followed by a whole one at most once a second (WalkBound).
CANDIDATES = """
SELECT id, task, queue, priority, run_at FROM (
    SELECT id, task, queue, priority, run_at, limit_key
    FROM conveyor_jobs INDEXED BY conveyor_jobs_claim
    WHERE state = 'queued' AND queue = :queue AND (expires_at IS NULL OR expires_at > :now)
      AND task NOT IN (SELECT value FROM json_each(:blocked))
    ORDER BY priority DESC, run_at, id
    LIMIT :walk)
WHERE limit_key IS NULL OR task NOT IN (SELECT value FROM json_each(:keyed))
ORDER BY priority DESC, run_at, id
LIMIT :limit"""
LOG_START = "INSERT INTO conveyor_limit_starts (kind, name, started_at) VALUES (?, ?, ?)"
FORGET_STARTS = """
DELETE FROM conveyor_limit_starts
WHERE kind = :kind AND name = :name AND started_at <= :now - (
    SELECT """ + FORGET_AFTER.format(period="period") + """
    FROM conveyor_limits WHERE kind = :kind AND name = :name)"""


def usage_from_row(row: tuple[Any, ...]) -> LimitUsage:
    limit = Limit(row[0], row[1], row[2], row[3], row[4], row[5], row[9])
    return LimitUsage(limit, int(row[7]), int(row[8]), row[6], int(row[10]))


class Limits(KeyLimits):
    """SQLiteStore's limits: set and read them, and the claim that respects them."""

    db: Connections
    _limited: LimitedNames

    def _limits_touch(self, queues: Sequence[str] | None) -> bool:
        self._read_limited(REFRESH)
        return self._limited.touches(queues)

    def _read_limited(self, fresh: float) -> None:
        """Read the limited names again if this store's are `fresh` seconds old or more."""
        if self._limited.stale(fresh):
            began = self._limited.forgotten  # a hint while the read is out: stale again
            try:
                with self.db.read() as conn:
                    self._limited.update(conn.execute(LIMITED_NAMES).fetchall(), began)
            except sqlite3.OperationalError:  # a schema before 0005: nothing is limited
                self._limited.update([])

    async def set_limit(self, limit: Limit, now: float | None = None) -> None:
        """Set (or with no caps, remove) an operator's limit."""
        params = _params(limit, now)
        with self.db.write() as conn:
            if limit.empty:
                conn.execute(DELETE_LIMIT, params)
                conn.execute(DELETE_STARTS, params)
            else:
                conn.execute(SET_LIMIT, params)
            if limit.kind == "key":  # its parked keys are looked at again under the new caps
                conn.execute(UNPARK_TASK, params)
        self._limits_changed()

    def _limits_changed(self) -> None:
        """Read the limits again here at the next claim, and tell every worker to."""
        self._limited.forget()
        self.wake.notify({LIMITS_HINT})

    async def declare_limits(self, limits: Sequence[Limit], now: float | None = None) -> None:
        """Write limits declared in code, leaving alone any an operator has set. No write
        (no write lock) when the stored limits already are the declared ones: a worker's
        start-up does not queue behind the claims, nor they behind it."""
        with self.db.read() as conn:
            stored = {(r[0], r[1]): r for r in conn.execute(STORED_LIMITS)}
        changed = [limit for limit in declared_once(limits)
                   if _differs(limit, stored.get((limit.kind, limit.name)))]
        if changed:
            with self.db.write() as conn:
                for limit in changed:
                    conn.execute(DECLARE_LIMIT, _params(limit, now))
            self._limits_changed()
        self._limited.forget()

    async def slow_down(self, kind: str, name: str, seconds: float,
                        now: float | None = None) -> bool:
        """No starts under this limit for `seconds` (a RateLimited with slow=...). True when
        that began a slow-down or moved its end later; only a beginning wakes the workers
        (limits/slowing.py)."""
        now = time.time() if now is None else now
        with self.db.write() as conn:
            row = conn.execute(SLOWED_UNTIL, {"kind": kind, "name": name}).fetchone()
            conn.execute(SLOW_DOWN, {"kind": kind, "name": name, "until": now + seconds,
                                     "now": now})
        before = None if row is None else row[0]
        change = slowing.change(before, max(before or 0.0, now + seconds), now)
        if change.began:
            self._limits_changed()
        return change.moved

    async def limits(self, now: float | None = None) -> list[LimitUsage]:
        """Every limit and its use; a cap's as started jobs and grants (grants.with_grants)."""
        now = time.time() if now is None else now
        try:
            with self.db.read() as conn:
                usages = [usage_from_row(r) for r in conn.execute(USAGE_ALL, {"now": now})]
                grants = conn.execute(GRANT_USES, {"now": now}).fetchall()
                ahead = claimed_ahead(conn.execute(q.CLAIMED_AHEAD, {
                    "now": now, "fresh": CLAIMED_FRESH}).fetchall())
        except sqlite3.OperationalError:  # a schema before 0005
            return []
        return with_grants(usages, grants, ahead)

    async def room_at(self, queues: Sequence[str] | None,
                      now: float | None = None) -> float | None:
        """The earliest store time a rate (or slow-down) of these queues or of any task has
        room again; None when none holds anything back (claiming.earliest_room)."""
        if not self._limits_touch(queues) or not self._limited.paces(queues):
            return None
        now = time.time() if now is None else now
        with self.db.read() as conn:
            return earliest_room(_held(conn, queues, now))

    def _claim_limited(self, conn: sqlite3.Connection, queues: Sequence[str],
                       params: dict[str, Any], limit: int) -> list[tuple[Any, ...]]:
        """Inside the claim's write transaction: claim what the limits have room for, at
        the claim's time (claiming.claim_time: now, or booked a little ahead)."""
        wall = params["now"]
        budget, now = _at_claim_time(conn, queues, wall, params["worker_id"])
        params = {**params, "now": now}
        if not budget.tasks and not budget.keys and len(queues) == 1:  # the queue's room
            room = budget.queue_room(queues[0], limit)
            rows = conn.execute(q.CLAIM_ONE_QUEUE, {**params, "queue": queues[0],
                                                    "limit": room}).fetchall() if room else []
            self._log_starts(conn, budget, [(r[0], r[1], r[2]) for r in rows], now, wall)
            return rows
        keyed, states = self._key_candidates(conn, budget, queues, limit, now)
        candidates = [((-c[3], 0, c[4], c[0]), c) for c in self._candidates(
            conn, budget, queues, limit, now)]
        candidates.extend(((-c[3], 1, 0.0, ""), c) for c in keyed)  # round-robin order kept
        candidates.sort(key=lambda pair: pair[0])
        taken = budget.take(((c[0], c[1], c[2]) for _, c in candidates), limit)
        keys_of = {c[0]: c[5] for c in keyed}
        self._limited.keyed_claims.claimed(t[0] for t in taken if t[0] in keys_of)
        self._keys_claimed(conn, budget, states, [(t[0], t[1], t[2], keys_of.get(t[0]))
                                                  for t in taken], now, params["lease_for"],
                           queues)
        if not taken:
            return []
        self._log_starts(conn, budget, taken, now, wall)
        ids = orjson.dumps([c[0] for c in taken]).decode()
        return conn.execute(q.CLAIM_IDS, {**params, "ids": ids}).fetchall()

    def _candidates(self, conn: sqlite3.Connection, budget: Budget, queues: Sequence[str],
                    limit: int, now: float) -> list[tuple[Any, ...]]:
        """Each queue's best candidates without a key limit (see CANDIDATES)."""
        blocked = orjson.dumps(budget.blocked_tasks()).decode()
        keyed = orjson.dumps(sorted(budget.keys)).decode()
        found: list[tuple[Any, ...]] = []
        for queue in queues:
            room = budget.queue_room(queue, limit)
            if room <= 0:
                continue
            walk = self._limited.walk(room, bool(budget.keys))
            params = {"queue": queue, "now": now, "blocked": blocked, "keyed": keyed,
                      "limit": room, "walk": walk}
            rows = conn.execute(CANDIDATES, params).fetchall()
            if len(rows) < room and self._limited.deep_walk(walk):
                rows = conn.execute(CANDIDATES, {**params, "walk": -1}).fetchall()
            found.extend(rows)
        return found

    @staticmethod
    def _log_starts(conn: sqlite3.Connection, budget: Budget, taken: list[Candidate],
                    now: float, wall: float) -> None:
        """Log the starts at the claim's time; forget those out of their window by the
        clock (`wall`: a claim booked before `now` may still count them)."""
        starts = budget.starts(taken)
        if starts:
            conn.executemany(LOG_START, [(kind, name, now) for kind, name in starts])
            for kind, name in set(starts):
                conn.execute(FORGET_STARTS, {"kind": kind, "name": name, "now": wall})


def _usages(conn: sqlite3.Connection, queues: Sequence[str], now: float,
            worker_id: str) -> list[LimitUsage]:
    """Every limit a claim from `queues` by `worker_id` answers to, with its use at `now`
    (a cap's as that claimer counts it: grants.USED)."""
    return [usage_from_row(r) for r in conn.execute(USAGE_FOR_QUEUES, {
        "now": now, "queues": orjson.dumps(list(queues)).decode(), "worker_id": worker_id})]


def _at_claim_time(conn: sqlite3.Connection, queues: Sequence[str],
                   wall: float, worker_id: str) -> tuple[Budget, float]:
    """The claim's time (claiming.claim_time: `wall`, the clock, or booked a little ahead)
    and the room of its limits then. Only a rate or a slow-down of a queue or task may book
    ahead, and none when a key limit has a rate: without one, no rate is read at all."""
    usages = _usages(conn, queues, wall, worker_id)
    if not _may_book_ahead(usages, wall):
        return Budget.of(usages, wall), wall
    now = claim_time(wall, [at for _, at in _held(conn, queues, wall)], keyed=False)
    return Budget.of(usages if now == wall else _usages(conn, queues, now, worker_id),
                     now), now


def _may_book_ahead(usages: list[LimitUsage], wall: float) -> bool:
    """Might claim_time book ahead of `wall` (a queue's or task's rate or slow-down, and no
    key limit with a rate)?"""
    if any(u.limit.kind == "key" and u.limit.rate is not None for u in usages):
        return False
    return any(u.limit.rate is not None or (u.blocked_until or 0.0) > wall for u in usages
               if u.limit.kind != "key")


def _held(conn: sqlite3.Connection, queues: Sequence[str] | None,
          now: float) -> list[tuple[float | None, float | None]]:
    """For each rate and slow-down a claim from `queues` answers to: (slowed down until, when
    its window has room again), as claiming.earliest_room takes them."""
    found: list[tuple[float | None, float | None]] = []
    held = conn.execute(HELD_BY_RATE, {"now": now, "queues": None if not queues
                                       else orjson.dumps(list(queues)).decode()})
    for kind, name, rate, period, blocked in held.fetchall():
        nth = None if not rate else conn.execute(
            NTH_NEWEST_START, (kind, name, now - period, rate - 1)).fetchone()
        found.append((blocked, None if nth is None else nth[0] + period))
    return found


def _differs(limit: Limit, stored: tuple[Any, ...] | None) -> bool:
    """Would declaring `limit` change the stored row (kind, name, caps, source, strategy)?"""
    if stored is None:
        return True
    _, _, concurrency, rate, period, source, strategy = stored
    return source == "code" and (concurrency, rate, period, strategy) != (
        limit.concurrency, limit.rate, limit.period, limit.strategy)


def _params(limit: Limit, now: float | None) -> dict[str, Any]:
    return {"kind": limit.kind, "name": limit.name, "concurrency": limit.concurrency,
            "rate": limit.rate, "period": limit.period, "source": limit.source,
            "strategy": limit.strategy,
            "now": time.time() if now is None else now}
