"""Inserting jobs, on the store's own connection or inside the caller's transaction.

Transactional enqueue: `enqueue_many(jobs, tx=conn)` runs the same statements on the caller's
psycopg connection (sync `Connection` or `AsyncConnection`) without committing, so the jobs
exist exactly when the caller's transaction commits, and the NOTIFY sent with them is
delivered only then too.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, Protocol

import psycopg
from psycopg import pq

from ... import _rng
from ...errors import ConfigError, ConveyorError
from ...job import EnqueueResult, JobState, NewJob
from ..base import drive_inline
from . import handoff
from . import queries as q
from .connection import BlockingPool
from .copy import NotPlain, copy_jobs
from .rows import (
    handed_whole,
    insert_one_params,
    insert_params,
    key_params,
    plain,
    plain_params,
)

Render = Callable[[str], str]
Params = dict[str, Any] | tuple[Any, ...]  # named, or positional (the single plain inserts)
log = logging.getLogger("conveyor.store.postgres")


class Channels(NamedTuple):
    wake: str             # NOTIFY channel of wake-ups (queue names)
    events: str | None    # NOTIFY channel of the event feed; None: the feed is off
    gate: handoff.Gate    # whether a single enqueue tries to hand its job to a waiting worker


class Session(Protocol):
    async def run(self, query: str, params: Params) -> None: ...
    async def fetch(self, query: str, params: Params) -> list[tuple[Any, ...]]: ...


class AsyncSession:
    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn

    async def run(self, query: str, params: Params) -> None:
        await self.conn.execute(query, params)

    async def fetch(self, query: str, params: Params) -> list[tuple[Any, ...]]:
        cursor = await self.conn.execute(query, params)
        return await cursor.fetchall()


class SyncSession:
    """A blocking connection: each call blocks for one round trip. It never suspends, so a
    coroutine over it can be driven to its end in place (store.base.drive_inline).
    `prepared`: the statements prepared on it through libpq (NativeStatement), or None."""

    def __init__(self, conn: psycopg.Connection[Any],
                 cursor: psycopg.Cursor[Any] | None = None,
                 prepared: set[bytes] | None = None) -> None:
        self.conn = conn
        self.cursor = cursor or conn.cursor()  # reused: a cursor per call costs more
        self.prepared = prepared

    async def run(self, query: str, params: Params) -> None:
        self.cursor.execute(query, params)

    async def fetch(self, query: str, params: Params) -> list[tuple[Any, ...]]:
        return self.cursor.execute(query, params).fetchall()


async def insert_jobs(session: Session, render: Render, jobs: Sequence[NewJob],
                      now: float | None, channels: Channels,
                      retryable: bool = False, keys_done: bool = False) -> list[EnqueueResult]:
    """Insert a batch; a job whose idempotency key is held comes back as the holder, marked
    duplicate. Dedupe is the partial unique index plus ON CONFLICT DO NOTHING: a concurrent
    insert of the same key waits for the other transaction, then finds its row.

    `retryable`: the session is in autocommit outside any transaction, so a failed statement
    leaves nothing behind, and jobs without keys may go in without ON CONFLICT (INSERT_PLAIN
    for a plain batch, else INSERT_ONE_NEW / INSERT_JOBS_NEW), falling back to the general
    statements in the rare case that an id is already stored. A batch with keyed jobs
    (limits/keys.py) goes through keys.insert_keyed, which comes back here with `keys_done`."""
    if not keys_done and any(job.limit_key is not None for job in jobs):
        from .keys import insert_keyed  # keys.py imports this module

        return await insert_keyed(session, render, jobs, now, channels)
    keyed = any(job.idempotency_key for job in jobs)
    if retryable and not keyed:
        try:
            fresh = await _insert_fresh(session, render, jobs, now, channels)
        except psycopg.errors.UniqueViolation:
            pass  # an id is stored already (a spooled batch sent twice): sort it out below
        else:
            if len(fresh) != len(jobs):
                raise ConveyorError(f"bulk insert stored {len(fresh)} of {len(jobs)} jobs")
            return fresh
    if keyed:
        await session.run(render(q.FREE_EXPIRED_KEYS), key_params(jobs, now))
    if len(jobs) == 1:
        rows = await session.fetch(render(q.INSERT_ONE),
                                   insert_one_params(jobs[0], now, channels.wake, channels.events))
    else:
        rows = await session.fetch(render(q.INSERT_JOBS),
                                   insert_params(jobs, now, channels.wake, channels.events))
    inserted = {r[0]: EnqueueResult(r[0], False, JobState(r[1]), r[2], r[3]) for r in rows}
    if len(inserted) == len(jobs):
        return [inserted[job.id] for job in jobs]
    missing = [job for job in jobs if job.id not in inserted]
    holders = await _key_holders(session, render, missing, now) if keyed else {}
    existing = await _stored(session, render, [j for j in missing if _key(j) not in holders])
    results = [inserted.get(job.id) or holders.get(_key(job)) or existing.get(job.id)
               for job in jobs]
    if None in results:  # its key's holder finished and let the key go in between
        results = await _insert_again(session, render, jobs, results, now, channels)
    return results  # type: ignore[return-value]


KEY_RACE_TRIES = 3


async def _insert_again(session: Session, render: Render, jobs: Sequence[NewJob],
                        results: list[EnqueueResult | None], now: float | None,
                        channels: Channels) -> list[EnqueueResult | None]:
    """Insert again the jobs whose key's holder finished between our INSERT (which skipped
    them) and our look-up (which no longer found it). Each statement of a READ COMMITTED
    transaction sees the newest commits, so the next try inserts them or finds the new
    holder; only a key that keeps changing hands that often gives up, with ConflictRace."""
    for _ in range(KEY_RACE_TRIES):
        again = [job for job, result in zip(jobs, results, strict=True) if result is None]
        if not again:
            return results
        found = dict(zip((job.id for job in again),
                         await _insert_or_find(session, render, again, now, channels),
                         strict=True))
        results = [found.get(job.id) if result is None else result
                   for job, result in zip(jobs, results, strict=True)]
    if None in results:
        raise ConflictRace("an idempotency key changed hands during enqueue: enqueue again")
    return results


async def _insert_or_find(session: Session, render: Render, jobs: Sequence[NewJob],
                          now: float | None, channels: Channels) -> list[EnqueueResult | None]:
    await session.run(render(q.FREE_EXPIRED_KEYS), key_params(jobs, now))
    rows = await session.fetch(render(q.INSERT_JOBS),
                               insert_params(jobs, now, channels.wake, channels.events))
    inserted = {r[0]: EnqueueResult(r[0], False, JobState(r[1]), r[2], r[3]) for r in rows}
    holders = await _key_holders(session, render, jobs, now)
    return [inserted.get(job.id) or holders.get(_key(job)) for job in jobs]


async def _insert_fresh(session: Session, render: Render, jobs: Sequence[NewJob],
                        now: float | None, channels: Channels) -> list[EnqueueResult]:
    """Jobs without keys, none of whose ids is stored yet (UniqueViolation otherwise)."""
    if len(jobs) > 1:
        params = plain_params(jobs, now, channels.wake, channels.events)
        if params is not None:
            [(clock, count)] = await session.fetch(render(q.INSERT_PLAIN), params)
            return [EnqueueResult(job.id, False, JobState.QUEUED, clock, clock)
                    for job in jobs[:count]]
        rows = await session.fetch(render(q.INSERT_JOBS_NEW),
                                   insert_params(jobs, now, channels.wake, channels.events))
    else:
        job = jobs[0]
        one = await _insert_one(session, render, job, channels) if (
            now is None and handed_whole(job)) else None
        if one is not None:
            return [one]
        rows = await session.fetch(render(q.INSERT_ONE_NEW), insert_one_params(
            job, now, channels.wake, channels.events))
    stored = {r[0]: EnqueueResult(r[0], False, JobState(r[1]), r[2], r[3]) for r in rows}
    return [stored[job.id] for job in jobs if job.id in stored]  # RETURNING has no order


class NativeStatement:
    """A statement a blocking caller runs through libpq itself, prepared once per connection:
    for the hottest call, one plain job from sync code, psycopg's per-call work (adapting
    each value, the cursor's bookkeeping) is about a sixth of the call (0.148 against 0.176
    ms p50 here). Values go as text, the payload as binary; errors are psycopg's own."""

    def __init__(self, name: bytes, formats: tuple[int, ...]) -> None:
        self.name = name
        self.formats = formats  # per value: 0 text, 1 binary

    def row(self, session: SyncSession, query: str,
            values: list[bytes | None]) -> list[bytes | None]:
        """The first row of `query` (rendered, with %s / %b placeholders) for `values`."""
        pgconn = session.conn.pgconn
        prepared = session.prepared
        assert prepared is not None
        for _ in range(2):
            if self.name not in prepared:
                _check(session, pgconn.prepare(self.name, _numbered(query).encode()))
                prepared.add(self.name)
            result = pgconn.exec_prepared(self.name, values, self.formats)  # type: ignore[arg-type]
            if _state(result) != _NO_SUCH_STATEMENT:
                break
            prepared.discard(self.name)  # deallocated under us (DEALLOCATE ALL): again
        _check(session, result)
        return [result.get_value(0, i) for i in range(result.nfields)]


def _numbered(query: str) -> str:
    """%s and %b placeholders as $1, $2, ... (the statement has no other % signs)."""
    parts = query.replace("%b", "%s").split("%s")
    return parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))


_NO_SUCH_STATEMENT = "26000"  # invalid_sql_statement_name


def _state(result: Any) -> str:
    return (result.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()


def _check(session: SyncSession, result: Any) -> None:
    if result.status in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
        return
    if session.conn.pgconn.status == pq.ConnStatus.BAD:  # the connection is gone
        raise psycopg.OperationalError(result.error_message.decode(errors="replace").strip())
    raise psycopg.errors.error_from_result(result)


_ONE_PLAIN = NativeStatement(b"conveyor_insert_one_plain",
                             (0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0))


def _native_values(job: NewJob, channels: Channels) -> list[bytes | None] | None:
    """INSERT_ONE_PLAIN's values as libpq takes them; None when one is not plain text (a NUL
    would cut a C string short; an infinite float): the cursor's way then."""
    texts = (job.id, job.task, job.queue, job.batch_id or "", job.sensitive or "",
             channels.wake, channels.events or "")
    unique_for = job.unique_for
    if any("\x00" in text for text in texts) or (
            unique_for is not None and not math.isfinite(unique_for)):
        return None
    events = None if channels.events is None else channels.events.encode()
    return [job.id.encode(), job.task.encode(), job.queue.encode(), b"%d" % job.priority,
            job.payload, None if unique_for is None else repr(float(unique_for)).encode(),
            b"%d" % job.max_attempts, None if job.batch_id is None else job.batch_id.encode(),
            None if job.sensitive is None else job.sensitive.encode(),
            channels.wake.encode(), events, events]


async def _insert_one(session: Session, render: Render, job: NewJob,
                      channels: Channels) -> EnqueueResult | None:
    """One job that a hand-off carries whole (rows.handed_whole): handed to a waiting worker
    when the gate says try and one is found; else a plain one by INSERT_ONE_PLAIN, and None
    for one with a correlation id or a parent (the general statement's to insert)."""
    gate = channels.gate
    if not (handoff.small(job.payload) and gate.open()):
        if not plain(job):
            return None
        values = (_native_values(job, channels) if isinstance(session, SyncSession)
                  and session.prepared is not None else None)
        if values is not None:
            assert isinstance(session, SyncSession)
            created = _ONE_PLAIN.row(session, render(q.INSERT_ONE_PLAIN), values)[0]
            assert created is not None
            clock = float(created)
            return EnqueueResult(job.id, False, JobState.QUEUED, clock, clock)
        [(clock, _, _)] = await session.fetch(render(q.INSERT_ONE_PLAIN), (
            job.id, job.task, job.queue, job.priority, job.payload, job.unique_for,
            job.max_attempts, job.batch_id, job.sensitive, channels.wake, channels.events,
            channels.events))
        return EnqueueResult(job.id, False, JobState.QUEUED, clock, clock)
    try:
        [(clock, state, waiting)] = await session.fetch(render(handoff.INSERT_ONE_HANDOFF), (
            job.queue, job.queue, job.queue, job.queue, job.task, job.id, job.task, job.queue,
            job.priority, job.payload, job.unique_for, job.max_attempts, job.batch_id,
            job.correlation_id, job.parent_id, job.sensitive, _rng.getrandbits(62), channels.wake,
            channels.events, channels.events))
    except psycopg.errors.UndefinedTable:  # a schema before 0002: autocommit, nothing stored
        log.warning("this schema has no hand-off table (conveyor migrate adds it): enqueue "
                    "goes on without hand-off")
        gate.never()
        return await _insert_one(session, render, job, channels)
    gate.tried(waiting)
    return EnqueueResult(job.id, False, JobState(state), clock, clock)


class ConflictRace(ConveyorError):
    """A skipped job's key holder vanished before it could be read (rare; safe to retry)."""


def _key(job: NewJob) -> tuple[str, str | None]:
    return (job.tenant or "", job.idempotency_key or None)


async def _key_holders(session: Session, render: Render, jobs: Sequence[NewJob],
                       now: float | None) -> dict[tuple[str, str | None], EnqueueResult]:
    """The jobs now holding these keys: each skipped job comes back as its key's holder."""
    found = await session.fetch(render(q.FIND_BY_KEYS), key_params(jobs, now))
    return {(tenant, key): EnqueueResult(job_id, True, JobState(state), created_at, run_at)
            for tenant, key, job_id, state, created_at, run_at in found}


async def _stored(session: Session, render: Render,
                  jobs: Sequence[NewJob]) -> dict[str, EnqueueResult]:
    """Jobs skipped because their id is already stored: the stored one, marked duplicate."""
    if not jobs:
        return {}
    found = await session.fetch(render(q.FIND_BY_IDS), {"ids": [j.id for j in jobs]})
    return {r[0]: EnqueueResult(r[0], True, JobState(r[1]), r[2], r[3]) for r in found}


async def insert_on_caller(tx: Any, render: Render, jobs: Sequence[NewJob],
                           now: float | None, channels: Channels) -> list[EnqueueResult]:
    """Run the insert inside the caller's transaction. A caller in autocommit with no open
    transaction gets one of its own, so the batch is still all or nothing."""
    if isinstance(tx, psycopg.AsyncConnection):
        if _idle_autocommit(tx):
            async with tx.transaction():
                return await insert_jobs(AsyncSession(tx), render, jobs, now, channels)
        return await insert_jobs(AsyncSession(tx), render, jobs, now, channels)
    if isinstance(tx, psycopg.Connection):
        if _idle_autocommit(tx):
            with tx.transaction():
                return await insert_jobs(SyncSession(tx), render, jobs, now, channels)
        return await insert_jobs(SyncSession(tx), render, jobs, now, channels)
    raise ConfigError("connection= must be a psycopg Connection or AsyncConnection "
                      f"(got {type(tx).__name__})")


def _idle_autocommit(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> bool:
    return conn.autocommit and conn.info.transaction_status == pq.TransactionStatus.IDLE


def scope(jobs: Sequence[NewJob]) -> tuple[str | None, bool]:
    """The batch's one tenant (None if none or several), and whether any job has a key: a
    tenant or a key (an idempotency or a limit key) needs a transaction of its own;
    otherwise autocommit will do."""
    tenants = {job.tenant for job in jobs}
    return (tenants.pop() if len(tenants) == 1 else None,
            any(job.idempotency_key or job.limit_key is not None for job in jobs))


def insert_blocking(pool: BlockingPool, render: Render, jobs: Sequence[NewJob],
                    now: float | None, tx: Any, channels: Channels) -> list[EnqueueResult]:
    """Insert from plain sync code on the calling thread, over the caller's own `tx` or one
    of the blocking pool's connections: one round trip for a job without a key."""
    if not jobs:
        return []
    if isinstance(tx, psycopg.AsyncConnection):
        raise ConfigError("an AsyncConnection belongs to its event loop: pass it to "
                          "enqueue_async / enqueue_many_async, or pass a psycopg Connection")
    if tx is not None:
        return drive_inline(insert_on_caller(tx, render, jobs, now, channels))
    tenant, keyed = scope(jobs)
    with pool.connection() as (conn, cursor):
        session = SyncSession(conn, cursor, pool.prepared(conn))
        if tenant is None and not keyed:
            return drive_inline(insert_jobs(session, render, jobs, now, channels,
                                            retryable=True))
        with conn.pipeline(), conn.transaction():
            if tenant is not None:
                cursor.execute(render(q.SET_TENANT), {"tenant": tenant})
            return drive_inline(insert_jobs(session, render, jobs, now, channels))


def stream_blocking(pool: BlockingPool, render: Render, jobs: Iterable[NewJob],
                    now: float | None, channels: Channels) -> list[EnqueueResult]:
    """COPY a batch that is still being produced (copy.py); one that turns out not to be
    plain, or meets a stored id, is collected and inserted by insert_blocking instead."""
    source, taken = iter(jobs), list[NewJob]()
    with pool.connection() as (conn, _):
        try:
            return copy_jobs(conn, render, source, taken, now, channels.wake, channels.events)
        except (NotPlain, psycopg.errors.UniqueViolation,
                psycopg.errors.FeatureNotSupported) as exc:
            log.debug("bulk enqueue by INSERT instead of COPY: %r", exc)
    taken.extend(source)  # what the stream had not reached yet
    return insert_blocking(pool, render, taken, now, None, channels)
