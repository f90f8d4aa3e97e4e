"""The SQLite store's trace contexts (migrations/0007_traces.sql). A part of SQLiteStore
(store.py), kept apart for size; its methods run on the store's connections."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .connection import Connections

SAVE_TRACE = """
INSERT INTO conveyor_traces (job_id, traceparent, created_at) VALUES (?, ?, ?)
ON CONFLICT (job_id) DO NOTHING"""

LOAD_TRACE = "SELECT traceparent FROM conveyor_traces WHERE job_id = ?"

ANY_OLD_TRACE = "SELECT 1 FROM conveyor_traces WHERE created_at < :settled LIMIT 1"

# A row is written just before its job: only rows older than `settled` can be orphans.
PRUNE_TRACES = """
DELETE FROM conveyor_traces WHERE job_id IN (
    SELECT trace.job_id FROM conveyor_traces AS trace
    WHERE trace.created_at < :settled
      AND NOT EXISTS (SELECT 1 FROM conveyor_jobs AS job WHERE job.id = trace.job_id)
    LIMIT :limit)"""


class Database(Protocol):
    db: Connections

    def _now(self, now: float | None) -> float: ...


class Traces:
    async def save_traces(self: Database, traces: Sequence[tuple[str, str]],
                          now: float | None = None) -> None:
        at = self._now(now)
        with self.db.write() as conn:
            conn.executemany(SAVE_TRACE, [(job_id, parent, at) for job_id, parent in traces])

    async def load_trace(self: Database, job_id: str) -> str | None:
        with self.db.read() as conn:
            row = conn.execute(LOAD_TRACE, (job_id,)).fetchone()
        return None if row is None else str(row[0])

    async def prune_traces(self: Database, now: float | None = None, limit: int = 1000,
                           grace: float = 300.0) -> int:
        params = {"settled": self._now(now) - grace, "limit": limit}
        with self.db.read() as conn:  # idle maintenance takes no write lock
            if conn.execute(ANY_OLD_TRACE, params).fetchone() is None:
                return 0
        with self.db.write() as conn:
            return int(conn.execute(PRUNE_TRACES, params).rowcount)
