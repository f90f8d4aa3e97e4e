"""Flow control on PostgreSQL (limits/claiming.py): the limit statements, and a mixin for
PostgresStore with the limited claim.

Exact under concurrent claimers: a limited claim runs in one transaction that first locks
every limit row it answers to (FOR UPDATE, in (kind, name) order, so two claimers never
deadlock), then counts running jobs and starts in each window, then claims. A claimer on the
same limits waits for the commit and counts again with a new snapshot (READ COMMITTED), so
it sees the jobs just claimed. Its clock is read after the lock (clock_timestamp()).
Hand-off never leases a job of a limited queue or task (handoff.INSERT_ONE_HANDOFF).
A claim may book its starts up to BOOK_AHEAD later than its clock (claiming.claim_time):
BOOKED_CLOCK says when, and the claim counts, leases and logs at that time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from ...limits.claiming import (
    BOOK_AHEAD,
    FORGET_AFTER,
    REFRESH,
    Budget,
    Candidate,
    LimitedNames,
    earliest_room,
)
from ...limits.grants import with_grants
from ...limits.model import Limit, LimitUsage
from ..counting import CLAIMED_FRESH, claimed_ahead
from .counters import NO_JIT
from .grants import GRANT_USES, used
from .keys import KeyLimits
from .limit_settings import LimitSettings
from .queries import _CLAIMED, _CLAIMED_COLUMNS, CLAIMED_AHEAD, compact, feed, with_feed
from .trip import LIMITED_CLAIM, one_trip

Rows = list[tuple[Any, ...]]

# With each name: may a rate or a slow-down hold its jobs back (room_at asks only then)?
LIMITED_NAMES = """SELECT kind, name, rate IS NOT NULL OR blocked_until IS NOT NULL,
    concurrency IS NOT NULL
FROM {schema}.conveyor_limits"""

_USAGE = """
SELECT kind, name, concurrency, rate, period, source, blocked_until,
    (SELECT count(*) FROM {schema}.conveyor_jobs AS job
     WHERE job.state = 'running' AND job.lease_expires_at > {now}
       AND CASE WHEN lim.kind = 'queue' THEN job.queue ELSE job.task END = lim.name),
    CASE WHEN rate IS NULL THEN 0 ELSE (
        SELECT count(*) FROM {schema}.conveyor_limit_starts AS start
        WHERE start.kind = lim.kind AND start.name = lim.name
          AND start.started_at > {now} - lim.period) END,
    strategy,
    CASE WHEN kind = 'key' THEN (
        SELECT count(*) FROM {schema}.conveyor_limit_keys AS k
        WHERE k.task = lim.name AND k.at_limit AND k.parked_until > {now}) ELSE 0 END
FROM {schema}.conveyor_limits AS lim"""
USAGE_ALL = _USAGE + " ORDER BY kind, name"
_ANSWERS_TO = "(kind IN ('task', 'key') OR name = ANY(%(queues)s::text[]))"
USAGE_FOR_QUEUES = _USAGE + " WHERE " + _ANSWERS_TO
LOCK_LIMITS = ("SELECT kind, name FROM {schema}.conveyor_limits WHERE " + _ANSWERS_TO +
               " ORDER BY kind, name FOR UPDATE")
# LOCK_LIMITS with the limited claim's settings (trip.LIMITED_CLAIM) in one statement, for a
# claim in an implicit transaction (Limits._claim_room_in): the settings come first in the
# select list, then the subquery takes the same locks in the same order.
LOCK_LIMITS_SET = (LIMITED_CLAIM + ", (SELECT count(*) FROM (" + LOCK_LIMITS + ") AS locked)")
# When a claim happens (claiming.claim_time), from `wall` (its clock, read once after the
# lock: a volatile CTE is evaluated once) and `lim` (the limits it answers to): at the
# earliest time within %(ahead)s s a full rate has room again, else at once; at once when a
# key limit with a rate answers to it. As (now, wall).
BOOKED_CLOCK = """
clock(now, wall) AS (
    SELECT CASE WHEN room.at <= wall.now + %(ahead)s
                 AND NOT EXISTS (SELECT FROM lim WHERE lim.kind = 'key' AND lim.rate IS NOT NULL)
                THEN room.at ELSE wall.now END, wall.now
    FROM wall, LATERAL (
        SELECT min(nth.at) AS at FROM lim CROSS JOIN LATERAL (
            SELECT start.started_at + lim.period AS at
            FROM {schema}.conveyor_limit_starts AS start
            WHERE start.kind = lim.kind AND start.name = lim.name
              AND start.started_at > wall.now - lim.period
            ORDER BY start.started_at DESC LIMIT 1 OFFSET lim.rate - 1) AS nth
        WHERE lim.rate > 0 AND lim.kind IN ('queue', 'task') AND nth.at > wall.now) AS room)"""
WALL = "wall(now) AS (SELECT coalesce(%(now)s::float8, date_part('epoch', clock_timestamp())))"
_MATCH = "CASE WHEN lim.kind = 'queue' THEN job.queue ELSE job.task END = lim.name"
# The claim's time, each limit it answers to and its use then (a NULL limit: none); wall last.
USAGE_AT_CLOCK = """
WITH """ + WALL + """,
lim AS (SELECT * FROM {schema}.conveyor_limits
        WHERE kind IN ('task', 'key') OR name = ANY(%(queues)s::text[])),
""" + BOOKED_CLOCK + """
SELECT clock.now, lim.kind, lim.name, lim.concurrency, lim.rate, lim.period, lim.source,
    lim.blocked_until,
    -- a cap's use as this claimer counts it (grants.used); a key's: its own, in keys.py
    """ + used("clock.now", _MATCH) + """,
    CASE WHEN lim.rate IS NULL THEN 0 ELSE (
        SELECT count(*) FROM {schema}.conveyor_limit_starts AS start
        WHERE start.kind = lim.kind AND start.name = lim.name
          AND start.started_at > clock.now - lim.period) END,
    lim.strategy, 0, clock.wall
FROM clock LEFT JOIN lim ON true"""

# The queues that have queued jobs: a skip scan through the claim index.
QUEUED_QUEUES = """
WITH RECURSIVE found(queue) AS (
    (SELECT queue FROM {schema}.conveyor_jobs WHERE state = 'queued' ORDER BY queue LIMIT 1)
    UNION ALL
    SELECT (SELECT next.queue FROM {schema}.conveyor_jobs AS next
            WHERE next.state = 'queued' AND next.queue > found.queue
            ORDER BY next.queue LIMIT 1)
    FROM found WHERE found.queue IS NOT NULL)
SELECT queue FROM found WHERE queue IS NOT NULL"""

# Each queue's best candidates, as many as its room, none of a task that has no room, none
# of a task limited per key (keys.py claims those). The walk through the claim index is
# bounded (`walk` entries, NULL: all) so a queue full of keyed jobs at their limit is not
# read whole at every claim (claiming.LimitedNames.walk).
CANDIDATES = """
SELECT candidate.id, candidate.task, candidate.queue, candidate.priority, candidate.run_at
FROM unnest(%(queues)s::text[], %(rooms)s::integer[]) AS wanted(queue, room)
CROSS JOIN LATERAL (
    SELECT id, task, queue, priority, run_at FROM (
        SELECT id, task, queue, priority, run_at, limit_key FROM {schema}.conveyor_jobs
        WHERE state = 'queued' AND queue = wanted.queue
          AND (expires_at IS NULL OR expires_at > %(now)s)
          AND task <> ALL(%(blocked)s::text[])
        ORDER BY priority DESC, run_at, id
        LIMIT %(walk)s) AS walked
    WHERE limit_key IS NULL OR task <> ALL(%(keyed)s::text[])
    ORDER BY priority DESC, run_at, id
    LIMIT wanted.room) AS picked
CROSS JOIN LATERAL (
    SELECT id, task, queue, priority, run_at FROM {schema}.conveyor_jobs AS job
    WHERE job.id = picked.id AND job.state = 'queued'
    FOR UPDATE SKIP LOCKED) AS candidate
WHERE wanted.room > 0
  AND wanted.queue NOT IN (SELECT name FROM {schema}.conveyor_queues WHERE paused)
ORDER BY candidate.priority DESC, candidate.run_at, candidate.id"""

# A limited claim returns each job's started_at too (ClaimedJob.starts_at), as every claim.
_BOOKED = _CLAIMED
_BOOKED_COLUMNS = _CLAIMED_COLUMNS
CLAIM_IDS = with_feed("""
UPDATE {schema}.conveyor_jobs AS job
SET state = 'running', attempt = job.attempt + 1, lease_token = %(token)s,
    lease_expires_at = %(now)s + %(lease_for)s, started_at = %(now)s,
    worker_id = %(worker_id)s, worker_host = %(host)s, cancel_requested = false
FROM unnest(%(ids)s::text[]) AS picked(id)
WHERE job.id = picked.id AND job.state = 'queued'
RETURNING """ + _BOOKED, _BOOKED_COLUMNS)

# One queue limited by its own caps only (no task limits anywhere): its room, the claim and
# the start log in one statement. It runs after LOCK_LIMITS in the same transaction, so its
# snapshot sees every claim committed before the lock was granted. least() skips a cap that
# is NULL; a limit removed meanwhile leaves the plain `limit`. `used` is a subquery per clock
# row: its time bounds the index walk (a join would not); it is the cap as this claimer counts
# it (grants.used; 0024's index). `cap` is NULL when there is no cap (greatest() would skip a
# NULL concurrency). The statement is sent compacted (queries.compact): see there.
CLAIM_ROOM = """
WITH """ + WALL + """,
lim AS (
    SELECT kind, name, concurrency, rate, period, blocked_until FROM {schema}.conveyor_limits
    WHERE kind = 'queue' AND name = %(queue)s),
""" + BOOKED_CLOCK + """,
used(n) AS (
    SELECT (SELECT """ + used("clock.now", "job.queue = %(queue)s AND job.queue <> ''",
                              "%(held)s::bigint") + """
            FROM lim)
    FROM clock),
cap(room) AS (
    SELECT (SELECT lim.concurrency - used.n FROM lim, used WHERE lim.concurrency IS NOT NULL)),
room(n) AS (
    SELECT coalesce((
        SELECT CASE WHEN lim.blocked_until > clock.now THEN 0 ELSE greatest(0, least(
            %(limit)s,
            lim.concurrency - (SELECT n FROM used),
            CASE WHEN lim.rate IS NOT NULL THEN
                lim.rate - (SELECT count(*) FROM {schema}.conveyor_limit_starts AS start
                            WHERE start.kind = 'queue' AND start.name = %(queue)s
                              AND start.started_at > clock.now - lim.period) END)) END
        FROM lim, clock), %(limit)s)),
picked AS (
    SELECT id FROM {schema}.conveyor_jobs
    WHERE state = 'queued' AND queue = %(queue)s
      AND (expires_at IS NULL OR expires_at > (SELECT now FROM clock))
      AND queue NOT IN (SELECT name FROM {schema}.conveyor_queues WHERE paused)
    ORDER BY priority DESC, run_at, id
    LIMIT (SELECT n FROM room)
    FOR UPDATE SKIP LOCKED),
changed AS (
    UPDATE {schema}.conveyor_jobs AS job
    SET state = 'running', attempt = job.attempt + 1, lease_token = %(token)s,
        lease_expires_at = clock.now + %(lease_for)s, started_at = clock.now,
        worker_id = %(worker_id)s, worker_host = %(host)s, cancel_requested = false
    FROM picked, clock WHERE job.id = picked.id
    RETURNING """ + _BOOKED + """),
logged AS (
    INSERT INTO {schema}.conveyor_limit_starts (kind, name, started_at)
    SELECT 'queue', %(queue)s, clock.now FROM changed, clock
    WHERE EXISTS (SELECT FROM lim WHERE rate IS NOT NULL)),
forgotten AS (
    DELETE FROM {schema}.conveyor_limit_starts AS start
    USING lim, clock
    WHERE lim.rate IS NOT NULL AND start.kind = 'queue' AND start.name = %(queue)s
      AND start.started_at <= clock.wall - """ + FORGET_AFTER.format(period="lim.period") + """),
feed AS (""" + feed("changed") + """)
SELECT cap.room, """ + ", ".join(f"changed.{c.strip()}" for c in _BOOKED_COLUMNS.split(",")) + """
FROM cap LEFT JOIN changed ON true WHERE (SELECT count(*) FROM feed) >= 0"""

# The same at the claim's clock: a claim none of whose limits has a rate or a slow-down (as
# the store last read them: LimitedNames.paces) cannot book ahead, and reads no start for
# it. Booking only picks the claim's time, so a rate set meanwhile is still counted and its
# starts logged, at the clock's time.
WALL_CLOCK = "\nclock(now, wall) AS (SELECT wall.now, wall.now FROM wall)"
USAGE_AT_WALL = USAGE_AT_CLOCK.replace(BOOKED_CLOCK, WALL_CLOCK)
CLAIM_ROOM_AT_WALL = compact(CLAIM_ROOM.replace(BOOKED_CLOCK, WALL_CLOCK))
CLAIM_ROOM = compact(CLAIM_ROOM)

# Log the starts (at the claim's time), and forget those that have left their limit's window
# by its clock (`wall`: a claim booked before `now` may still count them).
LOG_STARTS = """
WITH logged AS (
    INSERT INTO {schema}.conveyor_limit_starts (kind, name, started_at)
    SELECT kind, name, %(now)s FROM unnest(%(kinds)s::text[], %(names)s::text[])
        AS started(kind, name))
DELETE FROM {schema}.conveyor_limit_starts AS start
USING {schema}.conveyor_limits AS lim
WHERE start.kind = lim.kind AND start.name = lim.name
  AND (lim.kind, lim.name) IN (SELECT * FROM unnest(%(kinds)s::text[], %(names)s::text[]))
  AND start.started_at <= %(wall)s - """ + FORGET_AFTER.format(period="lim.period")

# For each rate or slow-down the claim answers to: until when it is slowed down, and when
# its full window has room again (its rate-th newest start leaves the window). See
# claiming.earliest_room.
ROOM_AT = """
WITH clock(now) AS (SELECT {now})
SELECT CASE WHEN lim.blocked_until > clock.now THEN lim.blocked_until END,
    CASE WHEN lim.rate IS NOT NULL THEN (
        SELECT start.started_at + lim.period FROM {schema}.conveyor_limit_starts AS start
        WHERE start.kind = lim.kind AND start.name = lim.name
          AND start.started_at > clock.now - lim.period
        ORDER BY start.started_at DESC LIMIT 1 OFFSET lim.rate - 1) END
FROM clock, {schema}.conveyor_limits AS lim
WHERE (lim.rate IS NOT NULL OR lim.blocked_until > clock.now)
  AND (lim.kind = 'task' OR lim.kind = 'queue'
       AND (%(queues)s::text[] IS NULL OR lim.name = ANY(%(queues)s::text[])))"""

class Claimed:
    """A limited claim queued in a pipeline: its cursor (None: nothing to claim), and whether
    its rows lead with the queue's cap room (CLAIM_ROOM: `roomed`)."""

    def __init__(self, cursor: psycopg.AsyncCursor[Any] | None, roomed: bool = False) -> None:
        self.cursor = cursor
        self.roomed = roomed

    async def read(self) -> tuple[int | None, Rows]:
        """(the cap's room before the claim, None: unknown or no cap; the claimed rows)."""
        if self.cursor is None:
            return None, []
        rows: Rows = await self.cursor.fetchall()
        if not self.roomed:
            return None, rows
        room = rows[0][0] if rows else None
        return room, [r[1:] for r in rows if r[1] is not None]


def usage_from_row(row: tuple[Any, ...]) -> LimitUsage:
    limit = Limit(row[0], row[1], row[2], row[3], row[4], row[5], row[9])
    return LimitUsage(limit, int(row[7]), int(row[8]), row[6], int(row[10]))


class Limits(LimitSettings, KeyLimits):
    """PostgresStore's limits: set and read them, and the claim that respects them."""

    _limited: LimitedNames

    async def _limits_touch(self: Any, queues: Sequence[str] | None) -> bool:
        await self._read_limited(REFRESH)
        touches: bool = self._limited.touches(queues)
        return touches

    async def _read_limited(self: Any, fresh: float) -> None:
        """Read the limited names again if this store's are `fresh` seconds old or more."""
        if self._limited.stale(fresh):
            began = self._limited.forgotten  # a hint while the read is out: stale again
            try:
                self._limited.update(await self._one(LIMITED_NAMES, {}), began)
            except psycopg.errors.UndefinedTable:  # a schema before 0005: nothing is limited
                self._limited.update([])

    async def limits(self: Any, now: float | None = None) -> list[LimitUsage]:
        """Every limit with its use, read with JIT off (counters.NO_JIT, in one trip): a
        conveyor_limits never analysed (a few rows, or none: autovacuum's analyse waits for
        50 changes) is guessed at hundreds of rows, each with its subqueries, past
        jit_above_cost; compiling then cost a millisecond of server CPU or more for each read
        of the queues page, to read no rows (issue 16, bench/results/2026-12-08-q16.md)."""
        try:
            async with self._session(atomic=True) as conn:
                await conn.execute(self.statement(NO_JIT))
                usage = await conn.execute(self.statement(USAGE_ALL), {"now": now})
                grants = await conn.execute(self.statement(GRANT_USES), {"now": now})
                ahead = await conn.execute(self.statement(CLAIMED_AHEAD), {
                    "now": now, "fresh": CLAIMED_FRESH})
                usages = [usage_from_row(r) for r in await usage.fetchall()]
                return with_grants(usages, await grants.fetchall(),
                                   claimed_ahead(await ahead.fetchall()))
        except psycopg.errors.UndefinedTable:  # a schema before 0005
            return []

    async def room_at(self: Any, queues: Sequence[str] | None,
                      now: float | None = None) -> float | None:
        """The earliest store time a rate (or slow-down) of these queues or of any task has
        room again; None when none holds anything back (claiming.earliest_room)."""
        if not await self._limits_touch(queues) or not self._limited.paces(queues):
            return None
        found = await self._one(ROOM_AT, {"now": now,
                                          "queues": list(queues) if queues else None})
        return earliest_room(found)

    async def _claim_limited(self: Any, queues: Sequence[str] | None, params: dict[str, Any],
                             limit: int) -> Rows:
        """Claim up to `limit` jobs that every limit they answer to has room for."""
        if queues and len(queues) == 1 and not (self._limited.tasks or self._limited.keys):
            return await self._claim_room(queues[0], params, limit)
        # Round trips (trip.one_trip): BEGIN, the lock and the usage read; the candidates
        # with the keys' reads; the claim, its start log and COMMIT with the pipeline's sync.
        async with self.pools.connection() as conn:
            async with one_trip(conn):
                claimed = await self._claim_in(conn, queues, params, limit)
            rows = (await claimed.read())[1]
        return rows

    async def _claim_in(self: Any, conn: psycopg.AsyncConnection[Any],
                        queues: Sequence[str] | None, params: dict[str, Any],
                        limit: int) -> Claimed:
        """Queue a limited claim in the caller's transaction: its cursor, read after the
        commit (Claimed.read)."""
        await conn.execute(LIMITED_CLAIM)
        names = list(queues) if queues else [
            r[0] for r in await self._fetch(conn, QUEUED_QUEUES, {})]
        if not names:
            return Claimed(None)
        await conn.execute(self.statement(LOCK_LIMITS), {"queues": names})
        paced = self._limited.paces(names)
        if not (self._limited.tasks or self._limited.keys) and len(names) == 1:
            holding = params.get("holding") or {}
            return Claimed(await conn.execute(self.statement(CLAIM_ROOM if paced else
                                                             CLAIM_ROOM_AT_WALL), {
                "events": self._events, **params, "queue": names[0], "limit": limit,
                "ahead": BOOK_AHEAD, "held": holding.get(names[0])}), roomed=True)
        found = await self._fetch(conn, USAGE_AT_CLOCK if paced else USAGE_AT_WALL, {
            "now": params["now"], "queues": names, "ahead": BOOK_AHEAD,
            "worker_id": params["worker_id"]})
        now, wall = found[0][0], found[0][-1]  # the claim's (booked) time, its clock
        budget = Budget.of([usage_from_row(r[1:]) for r in found if r[1] is not None], now)
        # CANDIDATES goes out first, and comes back with the keys' reads (one trip)
        general = await self._send_candidates(conn, budget, names, limit, now)
        keyed, states = await self._key_candidates(conn, budget, names, limit, now)
        candidates = [((-c[3], 0, c[4], c[0]), c)
                      for c in await self._candidates(conn, *general)]
        candidates.extend(((-c[3], 1, 0.0, ""), c) for c in keyed)  # round-robin order
        candidates.sort(key=lambda pair: pair[0])
        taken = budget.take(((c[0], c[1], c[2]) for _, c in candidates), limit)
        keys_of = {c[0]: c[5] for c in keyed}
        self._limited.keyed_claims.claimed(t[0] for t in taken if t[0] in keys_of)
        await self._keys_claimed(conn, budget, states, [
            (t[0], t[1], t[2], keys_of.get(t[0])) for t in taken], now, params["lease_for"],
            names)
        if not taken:
            return Claimed(None)
        claimed: psycopg.AsyncCursor[Any] = await conn.execute(self.statement(CLAIM_IDS), {
            "events": self._events, **params, "now": now, "ids": [t[0] for t in taken]})
        await self._log_starts(conn, budget, taken, now, wall)
        return Claimed(claimed)

    def _rooms(self: Any, queues: Sequence[str] | None) -> bool:
        """Does a claim from these queues answer to one queue's own caps only (CLAIM_ROOM)?"""
        return bool(queues) and len(queues or ()) == 1 and \
            not (self._limited.tasks or self._limited.keys)

    async def _claim_room_in(self: Any, conn: psycopg.AsyncConnection[Any], queue: str,
                             params: dict[str, Any], limit: int) -> Claimed:
        """Queue one queue's capped claim (`_rooms`) in the caller's pipeline, in the
        implicit transaction its sync ends (no BEGIN, no COMMIT: two statements, the lock
        with the claim's settings, then CLAIM_ROOM). In pipeline mode the statements up to a
        sync are one transaction, so CLAIM_ROOM still runs after the lock, with a snapshot
        of its own (READ COMMITTED) that sees every claim committed before the lock was
        granted; the settings are this transaction's (set_config's `true`). It was BEGIN,
        LIMITED_CLAIM, LOCK_LIMITS, CLAIM_ROOM and COMMIT: each statement is an execute of
        its own on the client (a cursor, its parameters, a send), ~4 more a capped exchange
        than the unlimited one's (bench/results/2026-12-09-pgcap20.md)."""
        holding = params.get("holding") or {}
        await conn.execute(self.statement(LOCK_LIMITS_SET), {"queues": [queue]})
        room = CLAIM_ROOM if self._limited.paces([queue]) else CLAIM_ROOM_AT_WALL
        return Claimed(await conn.execute(self.statement(room), {
            "events": self._events, **params, "queue": queue, "limit": limit,
            "ahead": BOOK_AHEAD, "held": holding.get(queue)}), roomed=True)

    async def _send_candidates(self: Any, conn: psycopg.AsyncConnection[Any], budget: Budget,
                               names: list[str], limit: int, now: float
                               ) -> tuple[Any, dict[str, Any], int]:
        """Queue each queue's best candidates without a key limit (see CANDIDATES)."""
        rooms = [budget.queue_room(n, limit) for n in names]
        walk = self._limited.walk(max(rooms, default=0), bool(budget.keys))
        params = {"queues": names, "rooms": rooms, "blocked": budget.blocked_tasks(),
                  "keyed": sorted(budget.keys), "now": now, "walk": None if walk < 0 else walk}
        return await conn.execute(self.statement(CANDIDATES), params), params, sum(rooms)

    async def _candidates(self: Any, conn: psycopg.AsyncConnection[Any], cursor: Any,
                          params: dict[str, Any], wanted: int) -> Rows:
        """The candidates sent: a bounded walk that found too few is done whole (at most
        once a second: claiming.LimitedNames.deep_walk)."""
        rows: Rows = await cursor.fetchall()
        walk = -1 if params["walk"] is None else params["walk"]
        if len(rows) < wanted and self._limited.deep_walk(walk):
            rows = await self._fetch(conn, CANDIDATES, {**params, "walk": None})
        return rows

    async def _claim_room(self: Any, queue: str, params: dict[str, Any], limit: int) -> Rows:
        """One queue limited by its own caps: BEGIN, the lock, CLAIM_ROOM and COMMIT sent
        together in one pipeline, one round trip (trip.one_trip)."""
        async with self.pools.connection() as conn:
            async with one_trip(conn):
                await conn.execute(LIMITED_CLAIM)
                await conn.execute(self.statement(LOCK_LIMITS), {"queues": [queue]})
                room = CLAIM_ROOM if self._limited.paces([queue]) else CLAIM_ROOM_AT_WALL
                claimed = Claimed(await conn.execute(self.statement(room), {
                    "events": self._events, **params, "queue": queue, "limit": limit,
                    "ahead": BOOK_AHEAD, "held": None}), roomed=True)
            rows = (await claimed.read())[1]
        return rows

    async def _log_starts(self: Any, conn: psycopg.AsyncConnection[Any], budget: Budget,
                          taken: list[Candidate], now: float, wall: float) -> None:
        """Queue the start log of rate-limited claims (sent with the commit)."""
        starts = budget.starts(taken)
        if starts:
            await conn.execute(self.statement(LOG_STARTS), {
                "now": now, "wall": wall, "kinds": [s[0] for s in starts],
                "names": [s[1] for s in starts]})

