"""Cap grants on PostgreSQL (limits/grants.py): renewing a worker's grants in one transaction
that holds the caps' limit rows FOR UPDATE (the lock every limited claim takes first, in the
same (kind, name) order), and how a claim counts a cap's use with grants (used())."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...limits.claiming import CAPS_FRESH
from ...limits.grants import HOLDER_AHEAD, Grant, GrantAsk, GrantRow, decide

Rows = list[tuple[Any, ...]]


def used(now: str, match: str, held: str = "NULL::bigint") -> str:
    """A cap's use as a claim by %(worker_id)s counts it (its LimitUsage's `running`, so that
    cap - used is its room), `lim` the limit, `now` the claim's time, `match` a job's
    belonging to the limit: for a holder of a live grant, the cap less its room to claim
    ahead (HOLDER_AHEAD times its share, less what it holds); for any other claimer, every
    live grant's booked slots and the jobs claimed by workers without one.

    `held`: what the holder holds as its worker says (ClaimAsk.holding), else NULL: counted
    here, a walk of every running-index entry of the last lease period, live or not, each
    heap row fetched (~6,600 a claim mid-drain: half the index scanning of a capped drain's
    backends, bench/results/2026-12-08-pgcap.md). coalesce() leaves the count unrun when
    the worker says. A claim from several queues (USAGE_AT_CLOCK) still counts."""
    live = f"g.kind = lim.kind AND g.name = lim.name AND g.expires_at > {now}"
    jobs = f"""FROM {{schema}}.conveyor_jobs AS job
        WHERE job.state = 'running' AND job.lease_expires_at > {now} AND {match}"""
    return f"""CASE WHEN lim.concurrency IS NULL OR lim.kind = 'key' THEN 0 ELSE coalesce(
    (SELECT lim.concurrency - greatest(0, {HOLDER_AHEAD} * g.share - coalesce({held}, (
         SELECT count(*) {jobs} AND job.worker_id = %(worker_id)s)))
     FROM {{schema}}.conveyor_cap_grants AS g WHERE {live} AND g.worker_id = %(worker_id)s),
    (SELECT coalesce(sum(g.slots), 0) FROM {{schema}}.conveyor_cap_grants AS g WHERE {live})
    + (SELECT count(*) {jobs} AND coalesce(job.worker_id, '') NOT IN (
           SELECT g.worker_id FROM {{schema}}.conveyor_cap_grants AS g WHERE {live}))) END"""


_IS_CAPPED = """concurrency IS NOT NULL
  AND (kind = 'task' AND (%(tasks)s::text[] IS NULL OR name = ANY(%(tasks)s::text[]))
       OR kind = 'queue'
       AND (%(queues)s::text[] IS NULL OR name = ANY(%(queues)s::text[])))"""
CAPPED = """
SELECT kind, name, concurrency FROM {schema}.conveyor_limits WHERE """ + _IS_CAPPED + """
ORDER BY kind, name"""
# The caps a renewal books, and those of the worker's grants it drops (DROP_OTHERS), locked
# in (kind, name) order: dropping a grant without its limit's lock could wait for a renewal
# that forgets it (expired) and waits in turn for a limit this one holds.
LOCK_CAPPED = """
SELECT kind, name, concurrency, """ + _IS_CAPPED + """ FROM {schema}.conveyor_limits
WHERE """ + _IS_CAPPED + """
   OR (kind, name) IN (SELECT kind, name FROM {schema}.conveyor_cap_grants
                       WHERE worker_id = %(worker_id)s)
ORDER BY kind, name FOR UPDATE"""
# Per cap the renewal may book (_IS_CAPPED; the renewal keeps those it locked): the clock,
# read after the lock; the jobs claimed by workers without a live grant (this one left out);
# this worker's; the other workers' live grants. One statement for every cap, sent with the
# lock (its own statement, so its snapshot sees what committed before the lock was granted).
# A cap's running jobs are read from its queue's or its task's rows only (one branch runs).
READ_ALL = """
WITH clock(now) AS (SELECT coalesce(%(now)s::float8, date_part('epoch', clock_timestamp())))
SELECT lim.kind, lim.name, clock.now,
    count(held.n) FILTER (WHERE coalesce(held.worker_id, '') <> %(worker_id)s
        AND coalesce(held.worker_id, '') NOT IN (
            SELECT g.worker_id FROM {schema}.conveyor_cap_grants AS g
            WHERE g.kind = lim.kind AND g.name = lim.name AND g.expires_at > clock.now)),
    count(held.n) FILTER (WHERE held.worker_id = %(worker_id)s),
    (SELECT coalesce(json_agg(json_build_array(g.worker_id, g.slots, g.wanted)), '[]')
     FROM {schema}.conveyor_cap_grants AS g
     WHERE g.kind = lim.kind AND g.name = lim.name AND g.expires_at > clock.now
       AND g.worker_id <> %(worker_id)s)
FROM clock CROSS JOIN {schema}.conveyor_limits AS lim
LEFT JOIN LATERAL (
    SELECT 1, job.worker_id FROM {schema}.conveyor_jobs AS job
    WHERE lim.kind = 'queue' AND job.queue = lim.name
      AND job.state = 'running' AND job.lease_expires_at > clock.now
    UNION ALL
    SELECT 1, job.worker_id FROM {schema}.conveyor_jobs AS job
    WHERE lim.kind = 'task' AND job.task = lim.name
      AND job.state = 'running' AND job.lease_expires_at > clock.now) AS held(n, worker_id)
  ON true
WHERE """ + _IS_CAPPED.replace("concurrency", "lim.concurrency").replace(
    "kind =", "lim.kind =").replace("name =", "lim.name =") + """
GROUP BY lim.kind, lim.name, clock.now"""
# The renewal's writes, sent with its COMMIT: each cap's expired grants forgotten (not this
# worker's: it is booked again), this worker's grants booked, its others dropped. The three
# touch disjoint rows, so one statement holds them.
BOOK_ALL = """
WITH booked(kind, name, slots, share, wanted) AS (
    SELECT * FROM unnest(%(kinds)s::text[], %(names)s::text[], %(slots)s::integer[],
                         %(shares)s::integer[], %(wanteds)s::integer[])),
forgotten AS (
    DELETE FROM {schema}.conveyor_cap_grants AS g USING booked
    WHERE g.kind = booked.kind AND g.name = booked.name AND g.expires_at <= %(now)s
      AND g.worker_id <> %(worker_id)s),
dropped AS (
    DELETE FROM {schema}.conveyor_cap_grants
    WHERE worker_id = %(worker_id)s
      AND (kind, name) NOT IN (SELECT kind, name FROM booked))
INSERT INTO {schema}.conveyor_cap_grants
    (kind, name, worker_id, slots, share, wanted, expires_at)
SELECT kind, name, %(worker_id)s, slots, share, wanted, %(expires_at)s FROM booked
ON CONFLICT (kind, name, worker_id) DO UPDATE
SET slots = excluded.slots, share = excluded.share, wanted = excluded.wanted,
    expires_at = excluded.expires_at"""
# A worker's grants dropped (it deregisters) under the limit rows of their caps, locked FOR
# UPDATE in (kind, name) order first, as a renewal locks them: a renewal forgets expired
# grants cap by cap, so a bare DELETE of the worker's rows across two caps could lock one
# row a renewal is about to forget and wait for another the renewal has forgotten already
# (a deadlock: one of them fails).
LOCK_WORKER_CAPS = """
SELECT 1 FROM {schema}.conveyor_limits
WHERE (kind, name) IN (SELECT kind, name FROM {schema}.conveyor_cap_grants
                       WHERE worker_id = %(id)s)
ORDER BY kind, name FOR UPDATE"""
DROP_WORKER = "DELETE FROM {schema}.conveyor_cap_grants WHERE worker_id = %(id)s"
# Every live grant, for the operator (limits.grants.with_grants).
GRANT_USES = """
SELECT kind, name, worker_id, slots FROM {schema}.conveyor_cap_grants
WHERE expires_at > {now} ORDER BY kind, name, worker_id"""


class CapGrants:
    """PostgresStore's grants."""

    async def renew_grants(self: Any, worker_id: str, queues: Sequence[str] | None,
                           wanted: int, asks: Sequence[GrantAsk], lease_for: float,
                           now: float | None = None,
                           tasks: Sequence[str] | None = None,
                           wants: Mapping[tuple[str, str], int] | None = None
                           ) -> list[Grant]:
        """Book this worker's grant under each cap it claims under (limits/grants.decide),
        drop those whose cap is gone; its grants as booked. A worker holding no grant
        while no cap concerns it reads nothing but the limited names, which the claims read
        anyway (claiming.LimitedNames: one read a second for both, at most CAPS_FRESH old)."""
        if not asks:
            await self._read_limited(CAPS_FRESH)
            if not self._limited.caps(queues, tasks):
                return []
        params: dict[str, Any] = {"worker_id": worker_id,
                                  "queues": None if queues is None else list(queues),
                                  "tasks": None if tasks is None else list(tasks)}
        if not asks and not await self._one(CAPPED, params):
            return []  # no cap, no grant: no lock
        # Two round trips under the caps' lock: BEGIN, the lock and READ_ALL; then BOOK_ALL
        # with the COMMIT (trip.one_trip). It was LOCK_CAPPED, CLOCK, READ and BOOK per
        # cap, DROP_OTHERS and COMMIT: ~5 trips a renewal, each claim on the caps waiting
        # behind them (bench/results/2026-12-10-capresume.md).
        async with self._session(atomic=True) as conn:
            locked = await conn.execute(self.statement(LOCK_CAPPED), params)
            read = {(r[0], r[1]): r[2:] for r in await self._fetch(conn, READ_ALL, {
                **params, "now": now})}
            capped = [(kind, name, cap) for kind, name, cap, booked
                      in await locked.fetchall() if booked and (kind, name) in read]
            at = next(iter(read.values()))[0] if read else 0.0
            told = {(a.kind, a.name): a for a in asks}
            grants = [self._book(read[(kind, name)], worker_id, kind, name, cap,
                                 (wants or {}).get((kind, name), wanted),
                                 told.get((kind, name)), at + lease_for)
                      for kind, name, cap in capped]
            await self._run(conn, BOOK_ALL, {
                "worker_id": worker_id, "now": at, "expires_at": at + lease_for,
                "kinds": [g.kind for g in grants], "names": [g.name for g in grants],
                "slots": [g.booked for g in grants], "shares": [g.slots for g in grants],
                "wanteds": [(wants or {}).get((g.kind, g.name), wanted) for g in grants]})
        return grants

    @staticmethod
    def _book(read: Sequence[Any], worker_id: str, kind: str, name: str, cap: int,
              wanted: int, ask: GrantAsk | None, expires_at: float) -> Grant:
        """One cap's grant from its READ_ALL row (the clock, outside, mine, others)."""
        _, outside, mine, others = read
        ask = ask or GrantAsk(kind, name, mine, mine)  # its first: all it holds
        rows = [GrantRow(*r) for r in others]
        slots, booked, fair = decide(cap, outside, rows, worker_id, wanted, ask)
        return Grant(kind, name, cap, slots, booked, fair, expires_at)

    async def _drop_grants(self: Any, worker_id: str) -> None:
        async with self._session(atomic=True) as conn:
            await self._fetch(conn, LOCK_WORKER_CAPS, {"id": worker_id})
            await self._fetch(conn, DROP_WORKER + " RETURNING 1", {"id": worker_id})
