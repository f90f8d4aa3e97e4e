"""The embedded SQLite store: WAL, one connection per thread, BEGIN IMMEDIATE for writes.

Safe for several worker and producer processes on one machine. The async methods run their
sqlite3 calls inline (each takes microseconds); they never suspend, which lets the app's
sync door drive them without an event loop (see door.SyncDoor).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from ...job import (
    ClaimedJob,
    JobEvent,
    Lease,
    WorkerInfo,
)
from ..base import (
    LIMITS_HINT,
    Capabilities,
    ClaimAsk,
    HeartbeatReply,
    Offer,
    Retention,
    Settle,
    held_counts,
)
from ..migrate import load_migrations
from . import queries as q
from .catalog import Catalog
from .connection import Connections, parse_url
from .durability import Durability
from .enqueue import Enqueues
from .exchange import Exchanging
from .grants import CapGrants
from .history import SQLiteHistory, write_history, write_lost
from .limits import LimitedNames, Limits
from .reads import Reads
from .retention import KeepByCount, events_of
from .rows import (
    apply,
    state_or_missing,
)
from .sessions import Sessions
from .settling import settle_rows
from .traces import Traces
from .wake import WakeChannel

log = logging.getLogger("conveyor.store.sqlite")
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_TERMINAL_SQL = ("completed", "dead", "cancelled")


class SQLiteStore(Reads, Catalog, Sessions, Limits, CapGrants, Enqueues, Exchanging,
                  KeepByCount, SQLiteHistory, Traces):
    inline = True  # methods never suspend: the sync door drives them without a loop

    def __init__(self, url: str, *, synchronous: str | None = None, durability: str = "auto",
                 busy_timeout: float = 10.0, enqueue_wait: float | None = None) -> None:
        """`durability`: auto, full or normal (durability.py); `synchronous` forces one level
        on every connection. `busy_timeout`: seconds a write waits for the lock;
        `enqueue_wait`: the same for enqueues, when shorter (a producer with a spool)."""
        self.url = url
        self.path = parse_url(url)
        self.memory = self.path == ":memory:"
        self.durability = Durability.parse(durability, synchronous)
        self.busy_timeout = busy_timeout
        self.enqueue_wait = enqueue_wait
        self.db = Connections(self.path, self.durability, busy_timeout)
        self.wake = WakeChannel(None if self.memory else os.path.abspath(self.path))
        self._host = socket.gethostname()
        self._migrations = load_migrations(MIGRATIONS_DIR)
        self._limited = LimitedNames()

    @staticmethod
    def _now(now: float | None) -> float:
        return time.time() if now is None else now

    # --- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        if not self.memory:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with self.db.read():
            pass

    async def close(self) -> None:
        self.wake.close()
        self.db.close()

    async def release_loop(self) -> None:
        """Nothing is held on a loop (the connections are per thread)."""

    def release_thread(self) -> None:
        self.db.release_thread()

    def capabilities(self) -> Capabilities:
        return Capabilities(listen_notify=not self.memory, skip_locked=False, max_batch=10_000)

    @property
    def latest_version(self) -> int:
        return self._migrations[-1].version if self._migrations else 0

    async def schema_version(self) -> int:
        with self.db.read() as conn:
            if not conn.execute(q.SCHEMA_EXISTS).fetchone()[0]:
                return 0
            return int(conn.execute(q.SCHEMA_VERSION).fetchone()[0])

    async def migrate(self) -> int:
        """Apply the numbered migrations not yet applied, each in its own transaction."""
        with self.db.write() as conn:
            conn.execute(q.SCHEMA_TABLE)
        applied = 0
        for migration in self._migrations:
            with self.db.write() as conn:
                current = int(conn.execute(q.SCHEMA_VERSION).fetchone()[0])
                if migration.version <= current:
                    continue
                apply(conn, migration)
                conn.execute(q.RECORD_VERSION, (migration.version, time.time()))
                applied += 1
        return applied

    # --- consuming ------------------------------------------------------------------------

    async def claim(self, queues: Sequence[str] | None, worker_id: str, limit: int,
                    lease_for: float, now: float | None = None,
                    offer: Offer | None = None) -> list[ClaimedJob]:
        """No hand-off here (sqlite/migrations/0002): `offer` is unused (exchange.py)."""
        return self._claim_flagged(ClaimAsk(queues, worker_id, limit, lease_for), now)[0]

    async def heartbeat(self, worker: WorkerInfo, leases: Sequence[Lease], lease_for: float,
                        now: float | None = None) -> HeartbeatReply:
        now = self._now(now)
        with self.db.write() as conn:
            conn.execute(q.UPSERT_WORKER, {
                "id": worker.id, "host": worker.host, "pid": worker.pid,
                "queues": ",".join(worker.queues), "concurrency": worker.concurrency,
                "now": now, "lease_for": lease_for, **held_counts(worker, leases)})
            rows = conn.execute(q.EXTEND_LEASES, {"now": now, "lease_for": lease_for,
                                                  "worker_id": worker.id}).fetchall()
            conn.execute(q.DELETE_STALE_WORKERS, (now - 3600,))
        held = {r[0]: r[1] for r in rows}
        lost = frozenset(lease.job_id for lease in leases if held.get(lease.job_id) != lease.token)
        cancel = frozenset(r[0] for r in rows if r[2])
        return HeartbeatReply(lost=lost, cancel_requested=cancel)

    async def settle(self, items: Sequence[Settle], now: float | None = None) -> list[bool]:
        now = self._now(now)
        with self.db.write() as conn:
            rows = settle_rows(conn, items, now)  # settling.py: completions at once
            write_history(conn, items, [row is not None for row in rows])
            self._unpark_settled(conn, items)  # keys.py
        self._publish(rows)
        return [row is not None for row in rows]

    async def deregister_worker(self, worker_id: str) -> None:
        with self.db.write() as conn:
            conn.execute(q.DELETE_WORKER, (worker_id,))
            self._drop_grants(conn, worker_id)  # its cap grants free at once

    async def withdraw_offer(self, worker_id: str) -> None:
        """No hand-off on SQLite: nothing was offered."""

    # --- control --------------------------------------------------------------------------

    async def cancel(self, ids: Sequence[str], tenant: str | None = None,
                     now: float | None = None) -> dict[str, str]:
        now = self._now(now)
        out: dict[str, str] = {}
        changed: list[Any] = []
        with self.db.write(promise=True) as conn:
            for job_id in ids:
                params = {"id": job_id, "tenant": tenant, "now": now}
                if row := conn.execute(q.CANCEL_WAITING, params).fetchone():
                    out[job_id] = "cancelled"
                elif row := conn.execute(q.CANCEL_RUNNING, params).fetchone():
                    out[job_id] = "cancel_requested"
                else:  # a job already queued is left as it is, and says so
                    state = state_or_missing(conn, job_id, tenant)
                    out[job_id] = "already_queued" if state == "queued" else state
                changed.append(row)
        self._publish(changed)
        return out

    async def requeue(self, ids: Sequence[str], tenant: str | None = None,
                      now: float | None = None) -> dict[str, str]:
        now = self._now(now)
        out: dict[str, str] = {}
        changed: list[Any] = []
        with self.db.write(promise=True) as conn:
            for job_id in ids:
                params = {"id": job_id, "tenant": tenant, "now": now}
                if row := conn.execute(q.REQUEUE, params).fetchone():
                    out[job_id] = "queued"
                else:  # a job already queued is left as it is, and says so
                    state = state_or_missing(conn, job_id, tenant)
                    out[job_id] = "already_queued" if state == "queued" else state
                changed.append(row)
            self._touch_requeued(conn, [r[0] for r in changed if r], now)  # keys.py
        self.wake.notify({"*"})
        self._publish(changed)
        return out

    async def discard(self, ids: Sequence[str], tenant: str | None = None) -> int:
        """Delete finished jobs (completed, dead, cancelled) by id; returns how many."""
        with self.db.write(promise=True) as conn:
            return sum(conn.execute(q.DISCARD, {"id": job_id, "tenant": tenant}).rowcount
                       for job_id in ids)

    async def pause(self, queue: str) -> None:
        with self.db.write(promise=True) as conn:
            conn.execute(q.SET_PAUSED, (queue, 1, time.time()))

    async def resume(self, queue: str) -> None:
        with self.db.write(promise=True) as conn:
            conn.execute(q.SET_PAUSED, (queue, 0, time.time()))
        self.wake.notify({queue})

    # --- maintenance ----------------------------------------------------------------------

    def _any(self, sql: str, now: float) -> bool:
        """A read-first check, so that idle maintenance never takes the write lock."""
        with self.db.read() as conn:
            return conn.execute(sql, {"now": now}).fetchone() is not None

    async def rescue_expired_jobs(self, now: float | None = None,
                                  limit: int = 1000) -> list[JobEvent]:
        now = self._now(now)
        if not self._any(q.ANY_LEASE_EXPIRED, now):
            return []
        with self.db.write() as conn:
            rows = conn.execute(q.RESCUE_EXPIRED, {"now": now, "limit": limit}).fetchall()
            write_lost(conn, [(r[0], r[6], r[3], r[2], r[4], r[7], r[8], r[9]) for r in rows],
                       now)
        if rows:
            self.wake.notify({"*"})
            self._publish(rows)
        return events_of(rows)

    async def promote_scheduled(self, now: float | None = None,
                                limit: int = 1000) -> tuple[int, float | None]:
        now = self._now(now)
        with self.db.read() as conn:  # the common case, nothing due, takes no write lock
            next_due = conn.execute(q.NEXT_SCHEDULED).fetchone()[0]
        if next_due is None or next_due > now:
            return 0, next_due
        with self.db.write() as conn:
            rows = conn.execute(q.PROMOTE_SCHEDULED, {"now": now, "limit": limit}).fetchall()
            next_due = conn.execute(q.NEXT_SCHEDULED).fetchone()[0]
        if rows:
            self.wake.notify({r[2] for r in rows})
            self._publish(rows)
        return len(rows), next_due

    async def expire_jobs(self, now: float | None = None, limit: int = 1000) -> list[JobEvent]:
        now = self._now(now)
        if not self._any(q.ANY_EXPIRED, now):
            return []
        with self.db.write() as conn:
            rows = conn.execute(q.EXPIRE, {"now": now, "limit": limit}).fetchall()
        self._publish(rows)
        return events_of(rows)

    async def prune(self, retention: Retention, now: float | None = None,
                    limit: int = 10000) -> int:
        now = self._now(now)
        params = {"now": now, "limit": limit,
                  "completed_before": now - retention.completed,
                  "dead_before": now - retention.dead,
                  "cancelled_before": now - retention.cancelled,
                  "oldest": now - min(retention.completed, retention.dead, retention.cancelled)}
        with self.db.read() as conn:
            oldest = conn.execute(q.OLDEST_FINISHED).fetchone()[0]
        if oldest is None or oldest >= params["oldest"]:
            return 0
        with self.db.write() as conn:
            count = conn.execute(q.PRUNE, params).rowcount
        return count

    # --- wake-ups and the event feed -------------------------------------------------------

    def _publish(self, rows: Sequence[Any]) -> None:
        if self.wake.has_subscribers():
            self.wake.publish(events_of(rows))

    async def subscribe(self, callback: Callable[[list[JobEvent]], None]
                        ) -> Callable[[], Awaitable[None]]:
        """Call `callback(events)` on the running loop for every batch of job state changes
        and progress, from any process on this database. Returns a stopper."""
        return await self.wake.subscribe(callback)

    def notify(self, queues: Sequence[str]) -> None:
        self.wake.notify(set(queues))

    async def listen(self, callback: Callable[[str], None], worker_id: str | None = None,
                     on_job: Callable[[ClaimedJob], None] | None = None
                     ) -> Callable[[], Awaitable[None]]:
        """Wake-ups only: a SQLite store hands no jobs off (`worker_id`, `on_job` unused).
        A change of limits (LIMITS_HINT) is read again at the next claim, and wakes all: the
        callback hears LIMITS_HINT, then "*"."""
        limited = self._limited

        def deliver(queue: str) -> None:
            if queue == LIMITS_HINT:
                limited.forget()
                callback(LIMITS_HINT)  # a worker renews its cap grants (then wakes as "*")
                queue = "*"
            callback(queue)

        return await self.wake.listen(deliver)
