"""The PostgreSQL store: many workers on many machines sharing one queue.

    store = PostgresStore("postgresql://app@db:5432/jobs?schema=billing")
    await store.open(); await store.migrate()

Claims lock with FOR UPDATE SKIP LOCKED, every worker write is fenced by its lease token,
enqueue sends NOTIFY inside its own transaction, and `now=None` means the database's clock.
The store is used from more than one event loop (the worker's, and the app's sync-door
portal), so it keeps one connection pool per loop (connection.LoopPools).
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import psycopg

from ... import _rng
from ...job import (
    ClaimedJob,
    EnqueueResult,
    JobEvent,
    Lease,
    NewJob,
    WorkerInfo,
)
from ..base import (
    LIMITS_HINT,
    Cancelled,
    Capabilities,
    Complete,
    Fail,
    HeartbeatReply,
    Offer,
    Progress,
    Release,
    Retention,
    Settle,
    Snooze,
    held_counts,
)
from ..migrate import Migration, load_migrations
from . import handoff
from . import queries as q
from .broadcast import Broadcaster, Stopper
from .catalog import Catalog
from .connection import BlockingPool, LoopPools, parse_url
from .control import Control
from .cursor import Cursors, in_claim_order
from .enqueue import (
    AsyncSession,
    Channels,
    insert_blocking,
    insert_jobs,
    insert_on_caller,
    scope,
    stream_blocking,
)
from .exchange import Exchanging, jobs_of
from .grants import CapGrants
from .history import PostgresHistory, settled_rows, with_history, write_lost
from .limits import LimitedNames, Limits
from .listener import Listener
from .reads import Reads
from .retention import KeepByCount, events_of
from .rows import SettleGroup, group_settles, settle_results
from .sessions import Sessions
from .traces import Traces
from .trip import one_trip
from .upgrade import LOCK_TIMEOUT, apply_in_tries, lock_timeout

log = logging.getLogger("conveyor.store.postgres")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SETTLE_STATEMENTS: dict[type, str] = {
    Complete: q.COMPLETE, Fail: q.FAIL, Snooze: q.SNOOZE, Cancelled: q.FINISH_CANCELLED,
    Release: q.RELEASE, Progress: q.PROGRESS}
# The same, also writing the attempt rows of the items that applied (history.py)
SETTLE_WITH_HISTORY: dict[type, str] = {
    kind: with_history(SETTLE_STATEMENTS[kind]) for kind in (Complete, Fail, Snooze, Cancelled)}
Rows = list[tuple[Any, ...]]


class PostgresStore(Reads, Catalog, Control, Sessions, Limits, CapGrants, Exchanging,
                    KeepByCount, PostgresHistory, Traces):
    inline = False  # methods await the network: the sync door runs them on its portal loop

    def __init__(self, url: str) -> None:
        self.url = url
        self.target = parse_url(url)
        self.pools = LoopPools(self.target)
        self.blocking = BlockingPool(self.target)
        self.cursors = Cursors()  # claim cursors, for the bloat case (postgres/cursor.py)
        self._host = socket.gethostname()
        self._migrations = load_migrations(MIGRATIONS_DIR)
        self._rendered: dict[str, str] = {}
        self.broadcast = Broadcaster(self.pools, self.statement)
        # The feed's channel goes with every statement that changes a job; None switches it off.
        self._events = self.target.events_channel if self.target.events else None
        self._channels = Channels(self.target.channel, self._events, handoff.Gate())
        self._takers: dict[str, Listener] = {}  # worker id: its listener, while it takes hand-offs
        self._limited = LimitedNames()

    def statement(self, template: str) -> str:
        """A queries.py template as this store runs it (its schema, its clock expression)."""
        rendered = self._rendered.get(template)
        if rendered is None:
            rendered = self._rendered[template] = q.render(template,
                                                           self.target.quoted_schema)
        return rendered

    # --- sessions -------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _session(self, tenant: str | None = None,
                       atomic: bool = False) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection; in one transaction when `atomic` or tenant-scoped, sent as one round
        trip (trip.one_trip: BEGIN, the tenant setting, the statements and COMMIT in one
        pipeline). set_config(..., true) lasts for this transaction only, so a pooled
        connection never carries one caller's tenant into the next caller's transaction."""
        async with self.pools.connection() as conn:
            if tenant is None and not atomic:
                yield conn
                return
            async with one_trip(conn):
                if tenant is not None:
                    await self._run(conn, q.SET_TENANT, {"tenant": tenant})
                yield conn

    async def _fetch(self, conn: psycopg.AsyncConnection[Any], template: str,
                     params: dict[str, Any] | None = None) -> Rows:
        """Rows of a statement that returns some (in pipeline mode this waits for them)."""
        if params is not None:
            params = {"events": self._events, **params}
        cursor = await conn.execute(self.statement(template), params)
        return await cursor.fetchall()

    async def _run(self, conn: psycopg.AsyncConnection[Any], template: str,
                   params: dict[str, Any] | None = None) -> None:
        """A statement whose result is not needed (in pipeline mode: queued, not awaited)."""
        await conn.execute(self.statement(template), params)

    async def _count(self, template: str, params: dict[str, Any]) -> int:
        async with self._session() as conn:
            cursor = await conn.execute(self.statement(template), params)
            return max(cursor.rowcount, 0)

    async def _one(self, template: str, params: dict[str, Any] | None = None,
                   tenant: str | None = None) -> Rows:
        async with self._session(tenant) as conn:
            return await self._fetch(conn, template, params)

    # --- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        """Open this loop's pool now, so a wrong URL or a server that is down fails here."""
        async with self.pools.connection():
            pass

    async def release_loop(self) -> None:
        """Close this loop's pools before the loop ends: left open, the pool's own tasks
        outlive it (psycopg_pool takes the cancel of a reconnect for a failed connect and
        tries again), and asyncio.run waits for them for ever (a worker that did not exit
        after SIGTERM)."""
        await self.pools.close_loop()

    async def close(self) -> None:
        await self.broadcast.close()
        await self.pools.close()
        self.blocking.close()

    def capabilities(self) -> Capabilities:
        return Capabilities(listen_notify=True, skip_locked=True, max_batch=10_000,
                            transactional_enqueue=True)

    @property
    def latest_version(self) -> int:
        return self._migrations[-1].version if self._migrations else 0

    async def schema_version(self) -> int:
        table = f"{self.target.quoted_schema}.conveyor_schema"
        async with self._session() as conn:
            [(exists,)] = await self._fetch(conn, q.SCHEMA_EXISTS, {"table": table})
            if not exists:
                return 0
            [(version,)] = await self._fetch(conn, q.SCHEMA_VERSION)
        return int(version)

    async def migrate(self) -> int:
        """Apply the numbered migrations not yet applied, each in its own transaction.
        Safe to run from every node at once (an advisory lock per schema)."""
        applied = 0
        for migration in self._migrations:
            applied += await self._apply(migration)
        return applied

    async def _apply(self, migration: Migration) -> int:
        return await apply_in_tries(lambda: self._apply_once(migration), migration,
                                    self.target)

    async def _apply_once(self, migration: Migration) -> int:
        async with self.pools.connection() as conn, conn.transaction():
            await self._fetch(conn, q.MIGRATE_LOCK,
                              {"lock": f"conveyor.migrate.{self.target.schema}"})
            await self._fetch(conn, LOCK_TIMEOUT, {"timeout": lock_timeout(self.target)})
            if self.target.schema != "public":
                await self._run(conn, q.CREATE_SCHEMA)
            await self._run(conn, q.SCHEMA_TABLE)
            [(current,)] = await self._fetch(conn, q.SCHEMA_VERSION)
            if migration.version <= current:
                return 0
            for statement in migration.statements:
                await self._run(conn, statement)
            await self._run(conn, q.RECORD_VERSION, {"version": migration.version})
        log.info("applied migration %04d_%s to schema %s", migration.version, migration.name,
                 self.target.schema)
        return 1

    # --- producing ------------------------------------------------------------------------

    async def enqueue_many(self, jobs: Sequence[NewJob], now: float | None = None,
                           tx: Any = None) -> list[EnqueueResult]:
        if not jobs:
            return []
        channels = self._channels
        if tx is not None:
            return await insert_on_caller(tx, self.statement, jobs, now, channels)
        tenant, keyed = scope(jobs)
        async with self._session(tenant, atomic=keyed) as conn:
            return await insert_jobs(AsyncSession(conn), self.statement, jobs, now, channels,
                                     retryable=tenant is None and not keyed)

    def enqueue_many_blocking(self, jobs: Sequence[NewJob], now: float | None = None,
                              tx: Any = None) -> list[EnqueueResult]:
        """enqueue_many for plain sync callers, on the calling thread (enqueue.py)."""
        return insert_blocking(self.blocking, self.statement, jobs, now, tx, self._channels)

    def enqueue_stream(self, jobs: Iterable[NewJob],
                       now: float | None = None) -> list[EnqueueResult]:
        """enqueue_many for a blocking caller whose batch is still being produced: a plain
        batch streams in by COPY while the caller encodes the rest (copy.py)."""
        return stream_blocking(self.blocking, self.statement, jobs, now, self._channels)

    # --- consuming ------------------------------------------------------------------------

    async def claim(self, queues: Sequence[str] | None, worker_id: str, limit: int,
                    lease_for: float, now: float | None = None,
                    offer: Offer | None = None) -> list[ClaimedJob]:
        """Claim up to `limit` jobs. A waiting worker that listens with its id passes
        `offer`, its capacity: the claim then also offers its free slots for hand-off
        (handoff.py)."""
        params: dict[str, Any] = {"token": _rng.getrandbits(62), "now": now, "limit": limit,
                                  "lease_for": lease_for, "worker_id": worker_id,
                                  "host": self._host}
        if await self._limits_touch(queues):  # limits.py; a limited claim offers nothing
            return [ClaimedJob(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7] or None, r[8],
                               r[9], r[10], r[11], r[12], r[13])
                    for r in in_claim_order(await self._claim_limited(queues, params, limit))]
        return jobs_of(await self._claim_rows(self._one, queues, params, offer))

    async def heartbeat(self, worker: WorkerInfo, leases: Sequence[Lease], lease_for: float,
                        now: float | None = None) -> HeartbeatReply:
        rows = await self._one(q.HEARTBEAT, {
            "id": worker.id, "host": worker.host, "pid": worker.pid,
            "queues": ",".join(worker.queues), "concurrency": worker.concurrency,
            **held_counts(worker, leases), "now": now, "lease_for": lease_for})
        held = {r[0]: r[1] for r in rows}
        lost = frozenset(lease.job_id for lease in leases if held.get(lease.job_id) != lease.token)
        cancel = frozenset(r[0] for r in rows if r[2])
        listed = {lease.job_id for lease in leases}
        unknown = tuple(Lease(job_id, token) for job_id, token in held.items()
                        if job_id not in listed)
        return HeartbeatReply(lost=lost, cancel_requested=cancel, unknown=unknown)

    async def settle(self, items: Sequence[Settle], now: float | None = None) -> list[bool]:
        """Write a batch of outcomes: one fenced UPDATE per kind (with its attempt history),
        all sent in one pipeline."""
        groups = group_settles(items)
        if not groups:
            return []
        keyed = self._keyed_ended(items)  # keys.py: only these may unpark a key
        async with self._session(atomic=len(groups) > 1 or bool(keyed)) as conn:
            cursors = [await conn.execute(*self._settle_statement(g, items, now))
                       for g in groups]
            await self._unpark_settled(conn, keyed)
        # the pipeline is synced: BEGIN, the UPDATEs, COMMIT went as one trip
        returned = [await cursor.fetchall() for cursor in cursors]
        return settle_results(items, groups, [{(r[0], r[1]) for r in rows} for rows in returned])

    def _settle_statement(self, group: SettleGroup, items: Sequence[Settle],
                          now: float | None) -> tuple[str, dict[str, Any]]:
        """One kind's fenced UPDATE and its parameters; with the attempt rows of its items
        when they carry records (in the same statement: written with the settle or not)."""
        params = {"now": now, "events": self._events, "channel": self.target.channel,
                  **group.columns}
        rows = settled_rows([items[p] for p in group.positions])
        if rows is None:
            return self.statement(SETTLE_STATEMENTS[group.kind]), params
        return self.statement(SETTLE_WITH_HISTORY[group.kind]), {**params, "rows": rows}

    async def deregister_worker(self, worker_id: str) -> None:
        """Forget a stopped worker; jobs handed off to it that it never heard of go back."""
        await self.withdraw_offer(worker_id)
        released = await self._one(handoff.RELEASE_ORPHANS, {
            "id": worker_id, "channel": self.target.channel})
        if released[0][0]:
            log.info("released %d jobs handed off to worker %s after it stopped",
                     released[0][0], worker_id)
        await self._count(q.DELETE_WORKER, {"id": worker_id})
        await self._drop_grants(worker_id)  # its cap grants free at once

    async def withdraw_offer(self, worker_id: str) -> None:
        """No more hand-offs to this worker (it is stopping)."""
        await self._count(handoff.WITHDRAW, {"id": worker_id})

    # --- maintenance: bounded, SKIP LOCKED, safe on every node ---------------------------

    async def rescue_expired_jobs(self, now: float | None = None,
                                  limit: int = 1000) -> list[JobEvent]:
        async with self._session(atomic=True) as conn:
            rescued = await self._fetch(conn, q.RESCUE_EXPIRED, {"now": now, "limit": limit})
            if rescued:
                await write_lost(self, conn, rescued)
                await self._notify_on(conn, sorted({r[2] for r in rescued}))
        return events_of(rescued)

    async def promote_scheduled(self, now: float | None = None,
                                limit: int = 1000) -> tuple[int, float | None]:
        [(next_due, due)] = await self._one(q.NEXT_DUE, {"now": now})  # nothing due: done
        if not due:
            return 0, next_due
        async with self._session(atomic=True) as conn:
            promoted = await self._fetch(conn, q.PROMOTE_SCHEDULED, {"now": now, "limit": limit})
            if promoted:
                await self._notify_on(conn, sorted({r[2] for r in promoted}))
            [(next_due,)] = await self._fetch(conn, q.NEXT_SCHEDULED)
        return len(promoted), next_due

    async def expire_jobs(self, now: float | None = None, limit: int = 1000) -> list[JobEvent]:
        return events_of(await self._one(q.EXPIRE, {"now": now, "limit": limit}))

    async def prune(self, retention: Retention, now: float | None = None,
                    limit: int = 10000) -> int:
        params = {"now": now, "limit": limit, "completed": retention.completed,
                  "dead": retention.dead, "cancelled": retention.cancelled,
                  "shortest": min(retention.completed, retention.dead, retention.cancelled)}
        count = await self._count(q.PRUNE, params)
        await self._count(q.DELETE_STALE_WORKERS, {"now": now})
        await self._count(handoff.PRUNE_OFFERS, {})
        return count

    # --- wake-ups -------------------------------------------------------------------------

    async def _notify_on(self, conn: psycopg.AsyncConnection[Any], queues: list[str]) -> None:
        """NOTIFY inside the caller's transaction: delivered at its commit, never before.
        The jobs woken for were made claimable again: they may sort before claim cursors."""
        await self._run(conn, q.NOTIFY_BEHIND, {"channel": self.target.channel,
                                                "queues": queues})

    def notify(self, queues: Sequence[str]) -> None:
        """Wake listeners of these queues (a hint), sent in the background."""
        self.broadcast.notify(queues)

    async def listen(self, callback: Callable[[str], None], worker_id: str | None = None,
                     on_job: Callable[[ClaimedJob], None] | None = None) -> Stopper:
        """Call `callback(queue)` on this loop for every wake-up; returns a stopper. A wake-up
        for jobs that may sort before claim cursors ("*" too: a reconnect may have missed
        one) makes the next claims of that queue full ones. A worker that passes its id and
        `on_job` can be handed jobs (handoff.py): `on_job(job)` for each."""
        cursors = self.cursors
        taker = (worker_id if on_job is not None and worker_id is not None
                 and handoff.offerable(worker_id) else None)

        limited = self._limited

        def deliver(payload: str) -> None:
            if payload == LIMITS_HINT:  # a limit changed: read them again, claim at once
                limited.forget()
                callback(LIMITS_HINT)  # a worker renews its cap grants (then wakes as "*")
                payload = "*"
            if payload.startswith(handoff.MARK):
                target, _, body = payload[len(handoff.MARK):].partition("\n")
                if target == taker and on_job is not None:
                    on_job(handoff.parse(body))
                return
            callback(cursors.woken(payload))

        stop, listener = await self.broadcast.listen(deliver)
        cursors.listeners += 1
        if taker is not None:
            self._takers[taker] = listener
        stopped = False

        async def stopper() -> None:
            nonlocal stopped
            if not stopped:
                stopped = True
                cursors.listeners -= 1
                if taker is not None and self._takers.get(taker) is listener:
                    del self._takers[taker]
            await stop()

        return stopper

    async def subscribe(self, callback: Callable[[list[JobEvent]], None]) -> Stopper:
        """Call `callback(events)` on this loop for every batch of job state changes and
        progress, from any process on this schema; returns a stopper."""
        return await self.broadcast.subscribe(callback)
