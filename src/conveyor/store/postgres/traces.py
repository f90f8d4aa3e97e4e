"""The PostgreSQL store's trace contexts (migrations/0007_traces.sql). A part of
PostgresStore (store.py), kept apart for size; its methods run on the store's sessions.
`{now}` is the caller's time, else the database's clock (queries.render)."""

from __future__ import annotations

from collections.abc import Sequence

from .reads import Sessions as Connections

SAVE_TRACES = """
INSERT INTO {schema}.conveyor_traces (job_id, traceparent, created_at)
SELECT job_id, traceparent, {now}
FROM unnest(%(ids)s::text[], %(parents)s::text[]) AS given (job_id, traceparent)
ON CONFLICT (job_id) DO NOTHING"""

LOAD_TRACE = "SELECT traceparent FROM {schema}.conveyor_traces WHERE job_id = %(id)s"

# A row is written just before its job: only rows older than the grace can be orphans.
PRUNE_TRACES = """
WITH picked AS MATERIALIZED (
    SELECT trace.job_id FROM {schema}.conveyor_traces AS trace
    WHERE trace.created_at < {now} - %(grace)s
      AND NOT EXISTS (SELECT 1 FROM {schema}.conveyor_jobs AS job WHERE job.id = trace.job_id)
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
DELETE FROM {schema}.conveyor_traces AS trace USING picked WHERE trace.job_id = picked.job_id"""


class Traces:
    async def save_traces(self: Connections, traces: Sequence[tuple[str, str]],
                          now: float | None = None) -> None:
        await self._count(SAVE_TRACES, {"ids": [t[0] for t in traces],
                                        "parents": [t[1] for t in traces], "now": now})

    async def load_trace(self: Connections, job_id: str) -> str | None:
        rows = await self._one(LOAD_TRACE, {"id": job_id})
        return str(rows[0][0]) if rows else None

    async def prune_traces(self: Connections, now: float | None = None, limit: int = 1000,
                           grace: float = 300.0) -> int:
        return await self._count(PRUNE_TRACES, {"now": now, "limit": limit, "grace": grace})
