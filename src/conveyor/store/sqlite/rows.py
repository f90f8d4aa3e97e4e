"""Row-level helpers of the SQLite store: statements for settle records, claim merging,
and turning rows into values."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson

from ...job import EnqueueResult, ErrorInfo, Job, JobState, NewJob
from ..base import Cancelled, Complete, Fail, Progress, Release, Settle, Snooze
from ..dead_groups import dead_fingerprint
from ..migrate import Migration
from . import queries as q


def apply(conn: sqlite3.Connection, migration: Migration) -> None:
    for statement in migration.statements:
        conn.execute(statement)


def best_candidates(conn: sqlite3.Connection, queues: Sequence[str], now: float,
                     limit: int) -> list[str]:
    """The `limit` best queued jobs over several queues: each queue's best from its index,
    merged in priority, run_at, id order."""
    candidates: list[tuple[str, int, float]] = []
    for queue in queues:
        candidates.extend(conn.execute(q.CLAIM_CANDIDATES,
                                       {"queue": queue, "now": now, "limit": limit}))
    candidates.sort(key=lambda c: (-c[1], c[2], c[0]))
    return [c[0] for c in candidates[:limit]]


def insert_row(job: NewJob, now: float) -> tuple[tuple[Any, ...], EnqueueResult]:
    """INSERT_JOB's parameters for one job, and what enqueue answers if it goes in."""
    run_at = job.run_at if job.run_at is not None else now + job.delay
    state = JobState.SCHEDULED if run_at > now else JobState.QUEUED
    row = (job.id, job.task, job.queue, state, job.priority, job.payload, job.tenant or "",
           job.correlation_id, job.idempotency_key, job.idempotency_key, job.unique_for,
           job.max_attempts, now, run_at, None if job.ttl is None else now + job.ttl,
           job.batch_id, job.parent_id, job.sensitive, job.limit_key)
    return row, EnqueueResult(job.id, False, state, now, run_at)


def settle_statement(item: Settle, now: float) -> tuple[str, dict[str, Any]]:
    fence = {"id": item.lease.job_id, "token": item.lease.token, "now": now}
    match item:
        case Complete(result=result):
            return q.COMPLETE, {**fence, "result": result}
        case Fail(error=error, retry_in=retry_in, dead_reason=reason, attempt=attempt):
            return q.FAIL, {**fence, "error": orjson.dumps(error.to_dict()).decode(),
                            "retry_at": None if retry_in is None else now + retry_in,
                            "reason": reason, "fingerprint": dead_fingerprint(attempt)}
        case Snooze(seconds=seconds):
            return q.SNOOZE, {**fence, "until": now + seconds}
        case Cancelled(reason=reason):
            return q.FINISH_CANCELLED, {**fence, "reason": reason}
        case Release():
            return q.RELEASE, fence
        case Progress(percent=percent, step=step):
            return q.PROGRESS, {**fence, "percent": percent, "step": step}
    raise TypeError(f"cannot settle {item!r}")


def state_or_missing(conn: sqlite3.Connection, job_id: str, tenant: str | None) -> str:
    row = conn.execute(q.STATE_OF, {"id": job_id, "tenant": tenant}).fetchone()
    return "not_found" if row is None else str(row[0])


def job_from_row(r: tuple[Any, ...]) -> Job:
    return Job(
        id=r[0], task=r[1], queue=r[2], payload=r[3], state=JobState(r[4]), priority=r[5],
        attempt=r[6], max_attempts=r[7], tenant=r[8] or None, correlation_id=r[9],
        idempotency_key=r[10], created_at=r[11], run_at=r[12], started_at=r[13],
        finished_at=r[14], expires_at=r[15], progress=r[16], progress_step=r[17],
        result=None if r[18] is None else orjson.loads(r[18]),
        errors=tuple(ErrorInfo.from_dict(e) for e in orjson.loads(r[19] or "[]")),
        worker_id=r[20], worker_host=r[21], dead_reason=r[22], batch_id=r[23],
        parent_id=r[24], cancel_requested=bool(r[25]),
        sensitive=None if r[26] is None else orjson.loads(r[26]))
