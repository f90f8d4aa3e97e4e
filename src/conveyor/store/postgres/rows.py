"""From Python values to statement parameters and from rows back to value objects.

Kept apart from the store so store.py reads as the sequence of calls it makes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ...job import ErrorInfo, Job, JobState, NewJob, WorkerInfo
from ..base import Cancelled, Complete, Fail, Progress, Release, Settle, Snooze
from ..dead_groups import dead_fingerprint

# --- enqueue --------------------------------------------------------------------------------


def insert_params(jobs: Sequence[NewJob], now: float | None, channel: str,
                  events: str | None) -> dict[str, Any]:
    """Column arrays for INSERT_JOBS (one unnest over the whole batch)."""
    return {
        "now": now, "channel": channel, "events": events,
        "ids": [j.id for j in jobs], "tasks": [j.task for j in jobs],
        "queues": [j.queue for j in jobs], "priorities": [j.priority for j in jobs],
        "payloads": [j.payload for j in jobs], "tenants": [j.tenant or "" for j in jobs],
        "correlation_ids": [j.correlation_id for j in jobs],
        "keys": [j.idempotency_key for j in jobs],
        "unique_fors": [j.unique_for for j in jobs],
        "max_attempts": [j.max_attempts for j in jobs],
        "delays": [float(j.delay) for j in jobs],
        "run_ats": [j.run_at for j in jobs], "ttls": [j.ttl for j in jobs],
        "batch_ids": [j.batch_id for j in jobs], "parent_ids": [j.parent_id for j in jobs],
        "sensitives": [j.sensitive for j in jobs],
        "limit_keys": [j.limit_key for j in jobs],
    }


def own_options(job: NewJob) -> bool:
    """Has the job options a plain bulk insert does not carry: a key, a correlation id, a
    schedule of its own, a parent, a limit key?"""
    return bool(job.idempotency_key or job.correlation_id is not None or job.run_at is not None
                or job.delay or job.parent_id is not None or job.limit_key is not None)


def plain(job: NewJob) -> bool:
    """A job COPY_PLAIN and INSERT_ONE_PLAIN carry: no options of its own, no tenant, no TTL
    (the times are the columns' defaults, the transaction's clock)."""
    return not (own_options(job) or job.tenant or job.ttl is not None)


def handed_whole(job: NewJob) -> bool:
    """A job a hand-off (handoff.INSERT_ONE_HANDOFF) carries: a plain one, or one whose only
    options of its own are a correlation id and a parent (a child job, ctx.enqueue)."""
    return not (job.idempotency_key or job.run_at is not None or job.delay or job.tenant
                or job.ttl is not None or job.limit_key is not None)


def plain_params(jobs: Sequence[NewJob], now: float | None, channel: str,
                 events: str | None) -> dict[str, Any] | None:
    """Parameters for INSERT_PLAIN, or None when a job in the batch needs INSERT_JOBS."""
    first = jobs[0]
    tenant, batch_id, ttl, unique_for = first.tenant, first.batch_id, first.ttl, first.unique_for
    sensitive = first.sensitive
    for j in jobs:
        if (own_options(j) or j.tenant != tenant or j.batch_id != batch_id or j.ttl != ttl
                or j.unique_for != unique_for or j.sensitive != sensitive):
            return None
    return {
        "now": now, "channel": channel, "events": events, "tenant": tenant or "",
        "batch_id": batch_id, "ttl": ttl, "unique_for": unique_for, "sensitive": sensitive,
        "ids": [j.id for j in jobs], "tasks": [j.task for j in jobs],
        "queues": [j.queue for j in jobs], "priorities": [j.priority for j in jobs],
        "payloads": [j.payload for j in jobs], "max_attempts": [j.max_attempts for j in jobs],
    }


def insert_one_params(job: NewJob, now: float | None, channel: str,
                      events: str | None) -> dict[str, Any]:
    """Scalar parameters for INSERT_ONE."""
    return {
        "now": now, "channel": channel, "events": events, "id": job.id, "task": job.task,
        "queue": job.queue, "priority": job.priority, "payload": job.payload,
        "tenant": job.tenant or "", "correlation_id": job.correlation_id,
        "key": job.idempotency_key, "unique_for": job.unique_for,
        "max_attempts": job.max_attempts, "delay": float(job.delay), "run_at": job.run_at,
        "ttl": job.ttl, "batch_id": job.batch_id, "parent_id": job.parent_id,
        "sensitive": job.sensitive, "limit_key": job.limit_key,
    }


def key_params(jobs: Sequence[NewJob], now: float | None) -> dict[str, Any]:
    keyed = [j for j in jobs if j.idempotency_key]
    return {"now": now, "tenants": [j.tenant or "" for j in keyed],
            "keys": [j.idempotency_key for j in keyed]}


# --- settle ---------------------------------------------------------------------------------

# Progress first: it is fenced on the job still running, so it must land before the outcome.
SETTLE_ORDER = (Progress, Complete, Fail, Snooze, Cancelled, Release)


@dataclass(slots=True)
class SettleGroup:
    """One kind of settle item: which batch positions it covers and its column arrays."""

    kind: type
    positions: list[int] = field(default_factory=list)
    columns: dict[str, list[Any]] = field(default_factory=dict)

    def add(self, position: int, item: Settle, values: dict[str, Any]) -> None:
        self.positions.append(position)
        for name, value in {"ids": item.lease.job_id, "tokens": item.lease.token,
                            **values}.items():
            self.columns.setdefault(name, []).append(value)


def settle_values(item: Settle) -> dict[str, Any]:
    match item:
        case Complete(result=result):
            return {"results": result}
        case Fail(error=error, retry_in=retry_in, dead_reason=reason, attempt=attempt):
            return {"errors": orjson.dumps(error.to_dict()).decode(), "retry_ins": retry_in,
                    "reasons": reason, "fingerprints": dead_fingerprint(attempt)}
        case Snooze(seconds=seconds):
            return {"seconds": float(seconds)}
        case Cancelled(reason=reason):
            return {"reasons": reason}
        case Release():
            return {}
        case Progress(percent=percent, step=step):
            return {"percents": float(percent), "steps": step}
    raise TypeError(f"cannot settle {item!r}")


def group_settles(items: Sequence[Settle]) -> list[SettleGroup]:
    groups = {kind: SettleGroup(kind) for kind in SETTLE_ORDER}
    for position, item in enumerate(items):
        group = groups.get(type(item))
        if group is None:
            raise TypeError(f"cannot settle {item!r}")
        group.add(position, item, settle_values(item))
    return [g for g in groups.values() if g.positions]


def settle_results(items: Sequence[Settle], groups: list[SettleGroup],
                   applied: list[set[tuple[str, int]]]) -> list[bool]:
    """Each item is applied if its (id, token) came back from its kind's UPDATE; a repeated
    lease in one batch counts once (the second write would have found the job settled)."""
    results = [False] * len(items)
    for group, returned in zip(groups, applied, strict=True):
        used: set[tuple[str, int]] = set()
        for position in group.positions:
            lease = items[position].lease
            key = (lease.job_id, lease.token)
            if key in returned and (key not in used or group.kind is Progress):
                results[position] = True
                used.add(key)
    return results


# --- reading --------------------------------------------------------------------------------


def job_from_row(r: tuple[Any, ...]) -> Job:
    return Job(
        id=r[0], task=r[1], queue=r[2], payload=None if r[3] is None else bytes(r[3]),
        state=JobState(r[4]),
        priority=r[5], attempt=r[6], max_attempts=r[7], tenant=r[8] or None,
        correlation_id=r[9], idempotency_key=r[10], created_at=r[11], run_at=r[12],
        started_at=r[13], finished_at=r[14], expires_at=r[15], progress=r[16],
        progress_step=r[17], result=None if r[18] is None else orjson.loads(r[18]),
        errors=tuple(ErrorInfo.from_dict(e) for e in (r[19] or [])),
        worker_id=r[20], worker_host=r[21], dead_reason=r[22], batch_id=r[23],
        parent_id=r[24], cancel_requested=bool(r[25]),
        sensitive=None if r[26] is None else orjson.loads(r[26]))


def worker_from_row(r: tuple[Any, ...]) -> WorkerInfo:
    return WorkerInfo(id=r[0], host=r[1], pid=r[2], queues=tuple(filter(None, r[3].split(","))),
                      concurrency=r[4], started_at=r[5], heartbeat_at=r[6], running=r[7],
                      claimed=r[8], claimed_queues=dict(r[9] or {}))
