"""Settle and claim in one round trip on PostgreSQL (Store.settle_and_claim), and the plain
claim's statements (Store.claim without limits).

Under a concurrency cap each slot is held from the claim's commit to the settle's commit, so
the time between a job's settle and the next claim for its slot is time the cap runs below
its size. A worker used to settle (one trip) and then claim (a second trip, after its answer
came back): ~4.4 ms per slot-hold for a no-op job, a capped drain at ~60 % of the unlimited
rate (bench/results/2026-12-06-limit20.md). Here, when the claim answers to a limit, the
settle's transaction and the limited claim's go out in ONE pipeline (trip.py): BEGIN, the
settle's fenced UPDATEs, COMMIT; BEGIN, the limit lock, the claim, CAP_FULL, COMMIT; one sync.
One queue under its own caps (the common case) claims in the implicit transaction the sync
ends instead: the lock with the claim's settings, then CLAIM_ROOM (limits._claim_room_in).
The server runs the claim right after the settle's commit, so the slots it freed are taken
again without a round trip between. Two transactions, not one: the settle stays durable and
the claim keeps its own commit without a WAL flush (trip.LIMITED_CLAIM), so the limit rows'
lock is never held through the settle's flush.

An error in the settle skips everything after it in the pipeline: nothing is written and it
is raised. An error in the claim (after the settle's COMMIT) leaves the outcomes written: the
answer carries their `applied` and the failure.

A claim no limit touches goes the same way (`_exchange`): BEGIN, the settle, COMMIT, then the
plain claim (the cursors' statement, with its hand-off offer) in a transaction of its own, all
in one pipeline. It was the plain settle (one trip) and then the plain claim (a second, after
the first came back): each worker round waited for two trips, the second behind the settle's
WAL flush (bench/results/2026-12-08-pgdrain.md). The claim's cursor times a full claim to
know whether claims have become slow (cursor.py); here its trip carries the settle and its
flush too, so the claim is timed by the server instead (CLAIM_TOOK, in its transaction).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import psycopg

from ... import _rng
from ...job import ClaimedJob
from ..base import ClaimAsk, Exchange, Offer, Settle
from . import handoff
from .cursor import Fetch, Timer, in_claim_order, since
from .limits import Claimed
from .rows import group_settles, settle_results
from .trip import BEGIN, COMMIT, _roll_back

Rows = list[tuple[Any, ...]]

# Is a concurrency cap this claim answers to full (its queues', any task's)? Read in the
# claim's transaction after its UPDATE, so the jobs just claimed count. Only for the claims
# with task or key limits: one queue limited by its own caps (CLAIM_ROOM, the common case)
# answers with its cap's room, read in the claim's own statement. A second statement had a
# snapshot of its own: a settle that committed between the two made a claim the full cap had
# shut out answer "not full" (its worker then waited its poll, ~1 s: 8-15 % of the shut-out
# claims in the PostgreSQL limit-20 drain), and it walked every running-index entry of the
# last lease period again, live or not (~4.7 ms a claim 4,500 jobs into a drain; a walk
# bench/results/2026-12-07-limit2p.md measured).
CAP_FULL = """
SELECT EXISTS (
    SELECT FROM {schema}.conveyor_limits AS lim
    WHERE lim.concurrency IS NOT NULL
      AND (lim.kind = 'task' OR lim.kind = 'queue' AND lim.name = ANY(%(queues)s::text[]))
      AND lim.concurrency <= (
          SELECT count(*) FROM {schema}.conveyor_jobs AS job
          WHERE job.state = 'running' AND job.lease_expires_at > {now}
            AND CASE WHEN lim.kind = 'queue' THEN job.queue ELSE job.task END = lim.name))"""
# queues=None: every queue's cap answers
CAP_FULL_ANY = CAP_FULL.replace("lim.name = ANY(%(queues)s::text[])", "true")


# The unlimited exchange's statements (BEGIN, the settles, COMMIT, the claim, CLAIM_TOOK: a
# few fixed texts, each run every worker round) are prepared on a connection at their first
# use there (`prepare=True`; not with prepare=off URLs, behind PgBouncer's pooling). By
# default psycopg prepares a statement at its fifth use on a connection, and a drain's pool
# grows to 6-7 connections per worker process, each sending its first four settles and claims
# unprepared: parsed, analysed and planned every time (bench/results/2026-12-09-pgplan.md).

# The plain claim's own time on the server, read in its transaction right after it: now() is
# that transaction's start, the claim's (the settle's COMMIT ended the one before).
CLAIM_TOOK = "SELECT extract(epoch FROM clock_timestamp() - now())::float8"


def jobs_of(rows: Sequence[tuple[Any, ...]]) -> list[ClaimedJob]:
    """Claimed rows (with started_at), in the order given, as jobs."""
    return [ClaimedJob(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7] or None, r[8], r[9],
                       r[10], r[11], r[12], r[13]) for r in rows]


def claimed_jobs(rows: Sequence[tuple[Any, ...]]) -> list[ClaimedJob]:
    """A limited claim's rows (with started_at) as jobs, in claim order."""
    return jobs_of(in_claim_order(list(rows)))


class _Trip:
    """The unlimited exchange's pipeline: what is queued on it goes out with the first claim
    statement, whose fetch ends the pipeline (its one sync: one round trip); a later claim
    statement (a cursor's full claim after a continuation found nothing) is a trip of its
    own. The first one is timed by the server (CLAIM_TOOK), the others as the cursor times
    them (their trip)."""

    def __init__(self, store: Any, conn: psycopg.AsyncConnection[Any],
                 prepare: bool | None) -> None:
        self.store, self.conn, self.prepare = store, conn, prepare
        self.pipeline: AbstractAsyncContextManager[Any] | None = None
        self.took: float | None = None

    async def open(self) -> None:
        self.pipeline = self.conn.pipeline()
        await self.pipeline.__aenter__()

    async def end(self, exc: BaseException | None = None) -> None:
        """Sync and leave the pipeline (if still in it). With `exc`, the error that ends it
        early: the pipeline's own error is then logged by psycopg, not raised."""
        pipeline, self.pipeline = self.pipeline, None
        if pipeline is not None:
            await pipeline.__aexit__(type(exc) if exc else None, exc,
                                     exc.__traceback__ if exc else None)

    async def fetch(self, template: str, params: dict[str, Any]) -> Rows:
        cursor = await self.conn.execute(self.store.statement(template),
                                         {"events": self.store._events, **params},
                                         prepare=self.prepare)
        self.took = None  # a later statement (its own trip): timed by its trip
        if self.pipeline is not None:
            timed = await self.conn.execute(CLAIM_TOOK, prepare=self.prepare)
            await self.end()  # the trip: BEGIN, the settle, COMMIT, the claim, its time
            row = await timed.fetchone()
            self.took = float(row[0]) if row else None
        return await cursor.fetchall()

    def timer(self, began: float) -> float:
        took, self.took = self.took, None
        return since(began) if took is None else took


class Exchanging:
    """PostgresStore.settle_and_claim."""

    async def settle_and_claim(self: Any, items: Sequence[Settle], ask: ClaimAsk,
                               now: float | None = None) -> Exchange:
        if ask.limit <= 0:
            return Exchange(await self.settle(items, now) if items else [])
        if await self._limits_touch(ask.queues):
            return await self._exchange_limited(items, ask, now)
        if not group_settles(items):
            try:
                jobs = await self.claim(ask.queues, ask.worker_id, ask.limit, ask.lease_for,
                                        now, offer=ask.offer)
            except Exception as exc:
                return Exchange([], claim_failed=exc)
            return Exchange([], jobs)
        return await self._exchange(items, ask, now)

    async def _exchange(self: Any, items: Sequence[Settle], ask: ClaimAsk,
                        now: float | None) -> Exchange:
        """No limit answers to the claim: BEGIN, the settle's UPDATEs, COMMIT, then the plain
        claim in its own (implicit) transaction, as one pipeline."""
        groups = group_settles(items)
        keyed = self._keyed_ended(items)  # keys.py: only these may unpark a key
        params: dict[str, Any] = {"token": _rng.getrandbits(62), "now": now, "limit": ask.limit,
                                  "lease_for": ask.lease_for, "worker_id": ask.worker_id,
                                  "host": self._host}
        settled: list[psycopg.AsyncCursor[Any]] = []
        committed: psycopg.AsyncCursor[Any] | None = None
        prepare = True if self.target.prepare else None  # the note above CLAIM_TOOK
        async with self.pools.connection() as conn:
            trip = _Trip(self, conn, prepare)
            try:
                await trip.open()
                await conn.execute(BEGIN, prepare=prepare)
                settled = [await conn.execute(*self._settle_statement(g, items, now),
                                              prepare=prepare) for g in groups]
                await self._unpark_settled(conn, keyed)
                committed = await conn.execute(COMMIT, prepare=prepare)
                rows = await self._claim_rows(trip.fetch, ask.queues, params, ask.offer,
                                              trip.timer)
                await trip.end()
            except Exception as exc:
                await trip.end(exc)
                await _roll_back(conn)
                if not _done(committed):
                    raise  # the settle was not written: neither was anything after it
                return Exchange(await _applied(items, groups, settled), claim_failed=exc)
            except BaseException as exc:  # cancelled: leave the pipeline, as `async with` does
                await trip.end(exc)
                await _roll_back(conn)
                raise
            applied = await _applied(items, groups, settled)
        return Exchange(applied, jobs_of(rows))

    async def _claim_rows(self: Any, fetch: Fetch, queues: Sequence[str] | None,
                          params: dict[str, Any], offer: Offer | None,
                          timer: Timer = since) -> Rows:
        """A claim no limit touches, through the cursors (cursor.py), its rows in claim order.
        A waiting worker that listens with its id passes `offer`, its capacity: the claim
        then also offers its free slots for hand-off (handoff.py)."""
        worker_id = params["worker_id"]
        listener = self._takers.get(worker_id) if offer is not None else None
        pid = listener.backend_pid if listener is not None else None
        if pid is not None and offer is not None:
            params.update(offer=offer.slots, offer_for=offer.lapse, listener_pid=pid,
                          offer_queues=list(queues) if queues else None)
            plain = fetch

            async def offering(template: str, params: dict[str, Any]) -> Rows:
                return await plain(handoff.OFFERING[template], params)

            fetch = offering
        if queues and len(queues) == 1:
            params["queue"] = queues[0]
            return await self.cursors.claim_queue(fetch, params, worker_id, queues[0], timer)
        if queues:
            params["queues"] = list(queues)
            return await self.cursors.claim_queues(fetch, params, worker_id, list(queues),
                                                   timer)
        rows: Rows = await self.cursors.claim_any(fetch, params, worker_id, timer)
        return rows

    async def _exchange_limited(self: Any, items: Sequence[Settle], ask: ClaimAsk,
                                now: float | None) -> Exchange:
        groups = group_settles(items)
        keyed = self._keyed_ended(items)  # keys.py: only these may unpark a key
        params: dict[str, Any] = {"token": _rng.getrandbits(62), "now": now, "limit": ask.limit,
                                  "lease_for": ask.lease_for, "worker_id": ask.worker_id,
                                  "host": self._host, "holding": ask.holding}
        settled: list[psycopg.AsyncCursor[Any]] = []
        committed: psycopg.AsyncCursor[Any] | None = None
        claimed: Claimed | None = None
        full: psycopg.AsyncCursor[Any] | None = None
        async with self.pools.connection() as conn:
            try:
                async with conn.pipeline():
                    if groups:
                        await conn.execute(BEGIN)
                        settled = [await conn.execute(*self._settle_statement(g, items, now))
                                   for g in groups]
                        await self._unpark_settled(conn, keyed)
                        committed = await conn.execute(COMMIT)
                    if ask.queues and self._rooms(ask.queues):  # implicit: the sync ends it
                        claimed = await self._claim_room_in(conn, ask.queues[0], params,
                                                            ask.limit)
                    else:
                        await conn.execute(BEGIN)
                        claimed = await self._claim_in(conn, ask.queues, params, ask.limit)
                        if not claimed.roomed:  # CLAIM_ROOM's rows: its room
                            full = await conn.execute(
                                self.statement(CAP_FULL if ask.queues else CAP_FULL_ANY),
                                {"queues": list(ask.queues or ()), "now": now})
                        await conn.execute(COMMIT)
            except Exception as exc:
                await _roll_back(conn)
                if groups and not _done(committed):
                    raise  # the settle was not written: neither was anything after it
                return Exchange(await _applied(items, groups, settled), claim_failed=exc)
            applied = await _applied(items, groups, settled)
            assert claimed is not None
            room, rows = await claimed.read()
            if full is not None:
                cap_full = bool((await full.fetchone() or (False,))[0])
            else:  # the cap's room, read in the claim's own statement, is used up
                cap_full = room is not None and len(rows) >= room
        return Exchange(applied, claimed_jobs(rows), cut_short=cap_full and len(rows) < ask.limit)


def _done(commit: psycopg.AsyncCursor[Any] | None) -> bool:
    """Did this COMMIT run (its result came back before the pipeline failed)?"""
    return commit is not None and commit.pgresult is not None and \
        commit.statusmessage == "COMMIT"


async def _applied(items: Sequence[Settle], groups: Any,
                   settled: list[psycopg.AsyncCursor[Any]]) -> list[bool]:
    if not groups:
        return []
    returned = [await cursor.fetchall() for cursor in settled]
    return settle_results(items, groups, [{(r[0], r[1]) for r in rows} for rows in returned])
