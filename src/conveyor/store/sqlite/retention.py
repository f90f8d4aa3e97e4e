"""The SQLite store's retention by count, and the counting faces of rescue and expiry. A part
of SQLiteStore (store.py), kept apart for size; its methods run on the store's connections.

prune_kept deletes, in one bounded statement, the finished jobs of one state (in one queue,
of one task, or both) past the newest `keep`, newest by finish time. A job whose idempotency
key is still reserved (unique_for) is neither counted nor deleted, as in age pruning.
"""

from __future__ import annotations

from typing import Protocol

from ...job import JobEvent
from ..base import check_kept, events_of
from .connection import Connections

__all__ = ["KeepByCount", "events_of"]

# No index of its own: one would cost every finished job a write (about 6 % of a no-op
# job's CPU), for a pass that runs once a minute. So the planner walks the finished jobs
# (conveyor_jobs_finished, newest first) or the queue's rows; age retention bounds both.
PRUNE_KEPT_QUEUE = """
DELETE FROM conveyor_jobs WHERE id IN (
    SELECT id FROM conveyor_jobs
    WHERE queue = :queue AND state = :state AND finished_at IS NOT NULL
      AND (:task IS NULL OR task = :task)
      AND (unique_until IS NULL OR unique_until <= :now)
    ORDER BY finished_at DESC, id DESC
    LIMIT :limit OFFSET :keep)"""

PRUNE_KEPT_ANY = """
DELETE FROM conveyor_jobs WHERE id IN (
    SELECT id FROM conveyor_jobs
    WHERE state = :state AND finished_at IS NOT NULL AND (:task IS NULL OR task = :task)
      AND (unique_until IS NULL OR unique_until <= :now)
    ORDER BY finished_at DESC, id DESC
    LIMIT :limit OFFSET :keep)"""


class Database(Protocol):
    db: Connections

    def _now(self, now: float | None) -> float: ...
    async def rescue_expired_jobs(self, now: float | None = None,
                                  limit: int = 1000) -> list[JobEvent]: ...
    async def expire_jobs(self, now: float | None = None,
                          limit: int = 1000) -> list[JobEvent]: ...


class KeepByCount:
    async def prune_kept(self: Database, state: str, keep: int, queue: str | None = None,
                         task: str | None = None, limit: int = 1000,
                         now: float | None = None) -> int:
        """Delete up to `limit` jobs in `state` beyond the newest `keep`; returns how many."""
        check_kept(state, keep, limit)
        params = {"state": state, "keep": keep, "queue": queue, "task": task,
                  "limit": limit, "now": self._now(now)}
        statement = PRUNE_KEPT_ANY if queue is None else PRUNE_KEPT_QUEUE
        with self.db.write() as conn:
            return int(conn.execute(statement, params).rowcount)

    async def rescue_expired(self: Database, now: float | None = None,
                             limit: int = 1000) -> int:
        return len(await self.rescue_expired_jobs(now, limit))

    async def expire(self: Database, now: float | None = None, limit: int = 1000) -> int:
        return len(await self.expire_jobs(now, limit))
