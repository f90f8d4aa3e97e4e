"""Dialect-neutral attempt history rows: what a settle batch adds to the attempts table and
the rollups, and the analytics summaries built back from query rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..history.records import AttemptInfo, AttemptRecord, Outcome, TaskSummary
from ..history.rollup import BOUNDS, OUTCOMES, RollupRow, bucket, fold, quantile
from .base import Cancelled, Complete, Fail, Settle, Snooze

# The attempts table's columns, in the order attempt_row gives them
ATTEMPT_COLUMNS = ("job_id", "attempt", "task", "queue", "tenant", "worker_id", "host", "pid",
                   "started_at", "ended_at", "duration", "outcome", "error_type",
                   "error_message", "error_traceback", "error_sealed", "fingerprint", "cpu",
                   "rss")


def outcome_of(item: Settle) -> str | None:
    match item:
        case Complete():
            return Outcome.COMPLETED
        case Fail(retry_in=retry_in):
            return Outcome.DEAD if retry_in is None else Outcome.RETRIED
        case Snooze():
            return Outcome.SNOOZED
        case Cancelled():
            return Outcome.CANCELLED
    return None


def attempt_row(item: Settle, record: AttemptRecord, outcome: str) -> tuple[Any, ...]:
    error = item.error if isinstance(item, Fail) else None
    message = record.error_message if record.error_message is not None else (
        error.message if error else None)
    traceback = record.error_traceback if record.error_message is not None else (
        error.traceback if error else None)
    sealed = record.error_sealed if record.error_message is not None else (
        error.sealed if error else None)
    return (item.lease.job_id, record.number, record.task, record.queue, record.tenant,
            record.worker_id, record.host, record.pid, record.started_at, record.ended_at,
            record.duration, outcome, error.type if error else None, message, traceback,
            sealed, record.fingerprint, record.cpu, record.rss)


def attempt_rows(items: Sequence[Settle], applied: Sequence[bool] | None = None
                 ) -> list[tuple[Any, ...]]:
    """The attempt rows of the items that carry a record, of the applied ones only when
    `applied` is given (a refused item's lease had moved on: its attempt is another
    worker's to record)."""
    attempts: list[tuple[Any, ...]] = []
    for i, item in enumerate(items):
        record = getattr(item, "attempt", None)
        if record is None or (applied is not None and not applied[i]):
            continue
        outcome = outcome_of(item)
        if outcome is not None:
            attempts.append(attempt_row(item, record, outcome))
    return attempts


# The outcome of a settle item by its exact type, when that alone decides it (Fail does not)
_OUTCOME_OF_TYPE: dict[type, str] = {Complete: Outcome.COMPLETED, Snooze: Outcome.SNOOZED,
                                     Cancelled: Outcome.CANCELLED}


def pending_rows(items: Sequence[Settle], applied: Sequence[bool] | None = None
                 ) -> list[tuple[Any, ...]]:
    """attempt_rows(items, applied), each row with its duration's bucket appended (the
    pending table's columns, PENDING_COLUMNS), built in one pass: a settle's only history
    write, once per job. Items with no error (the common case: completed, snoozed,
    cancelled) skip attempt_row's error lookups."""
    rows: list[tuple[Any, ...]] = []
    for i, item in enumerate(items):
        record = getattr(item, "attempt", None)
        if record is None or (applied is not None and not applied[i]):
            continue
        outcome = _OUTCOME_OF_TYPE.get(type(item))
        if outcome is None or record.error_message is not None:
            outcome = outcome or outcome_of(item)
            if outcome is None:
                continue
            row = attempt_row(item, record, outcome)
            rows.append((*row, bucket(row[10])))
            continue
        started, ended = record.started_at, record.ended_at
        duration = ended - started if ended > started else 0.0
        rows.append((item.lease.job_id, record.number, record.task, record.queue,
                     record.tenant, record.worker_id, record.host, record.pid, started, ended,
                     duration, outcome, None, None, None, None, record.fingerprint,
                     record.cpu, record.rss, bucket(duration)))
    return rows


# The pending columns of an attempt that carries no error (no error columns, no fingerprint)
PLAIN_COLUMNS = ("job_id", "attempt", "task", "queue", "tenant", "worker_id", "host", "pid",
                 "started_at", "ended_at", "duration", "outcome", "cpu", "rss", "bucket")


_SHORTEST = BOUNDS[0]  # an attempt no longer than this is in bucket 0 (rollup.bucket)


def plain_params(items: Sequence[Settle], applied: Sequence[bool] | None = None
                 ) -> tuple[list[Any], int, list[tuple[Any, ...]]]:
    """pending_rows(items, applied) in two sets, as the SQLite settle's two inserts bind
    them: the rows of attempts with no error and no fingerprint (most of a drain's) in
    PLAIN_COLUMNS, the five error columns left out (an insert binds 15 values, not 20: they
    stay NULL), as one flat list of values, row after row, and their number; every other
    row in full (PENDING_COLUMNS). Each set keeps the items' order. One pass, no tuple per
    plain row, and no call for the bucket of an attempt of at most 1 ms (a no-op drain's)."""
    flat: list[Any] = []
    count = 0
    full: list[tuple[Any, ...]] = []
    for i, item in enumerate(items):
        record = getattr(item, "attempt", None)
        if record is None or (applied is not None and not applied[i]):
            continue
        outcome = _OUTCOME_OF_TYPE.get(type(item))
        if outcome is None or record.error_message is not None or (
                record.fingerprint is not None):
            outcome = outcome or outcome_of(item)
            if outcome is None:
                continue
            row = attempt_row(item, record, outcome)
            full.append((*row, bucket(row[10])))
            continue
        started, ended = record.started_at, record.ended_at
        duration = ended - started if ended > started else 0.0
        flat += (item.lease.job_id, record.number, record.task, record.queue, record.tenant,
                 record.worker_id, record.host, record.pid, started, ended, duration, outcome,
                 record.cpu, record.rss, 0 if duration <= _SHORTEST else bucket(duration))
        count += 1
    return flat, count, full


def history_rows(items: Sequence[Settle], applied: Sequence[bool]
                 ) -> tuple[list[tuple[Any, ...]], list[RollupRow]]:
    """The attempt rows and rollup increments of the applied items that carry a record."""
    attempts = attempt_rows(items, applied)
    return attempts, rollups_of(attempts)


def rollups_of(attempts: Sequence[tuple[Any, ...]]) -> list[RollupRow]:
    """One rollup increment per distinct (minute, task, queue, tenant) of attempt rows, in
    key order (concurrent settles lock rollup rows in one order: no deadlock)."""
    rollups = fold((row[9], row[2], row[3], row[4], row[11], row[10]) for row in attempts)
    rollups.sort(key=lambda r: (r.width, r.minute, r.task, r.queue, r.tenant))
    return rollups


def worker_rollups(attempts: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Per (hour, worker, tenant) of attempt rows: (hour, worker_id, tenant, host, pid,
    attempts, failures, busy, cpu, peak_rss), in key order."""
    rows: dict[tuple[int, str, str], list[Any]] = {}
    for row in attempts:
        if row[5] is None:
            continue
        key = (int(row[9] // 3600), row[5], row[4] or "")
        acc = rows.get(key)
        if acc is None:
            acc = rows[key] = [row[6], row[7], 0, 0, 0.0, 0.0, None]
        acc[2] += 1
        acc[3] += Outcome(row[11]).failed
        acc[4] += row[10]
        acc[5] += row[17] or 0.0
        if row[18] is not None and (acc[6] is None or row[18] > acc[6]):
            acc[6] = row[18]
    return [(*key, *acc) for key, acc in sorted(rows.items())]


def error_rollups(attempts: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Per (width, minute, fingerprint, task, queue, tenant) of the failed attempt rows, by
    hour and by day: (key..., failures, first_seen, last_seen), in key order."""
    rows: dict[tuple[Any, ...], list[Any]] = {}
    for row in attempts:
        if row[16] is None:
            continue
        ended = row[9]
        for width in (3600, 86400):
            key = (width, int(ended // width) * width // 60, row[16], row[2], row[3],
                   row[4] or "")
            acc = rows.get(key)
            if acc is None:
                rows[key] = [1, ended, ended]
            else:
                acc[0] += 1
                acc[1], acc[2] = min(acc[1], ended), max(acc[2], ended)
    return [(*key, *acc) for key, acc in sorted(rows.items())]


def lost_rows(rescued: Sequence[tuple[Any, ...]], now: float) -> list[tuple[Any, ...]]:
    """Attempt rows for jobs rescued from a dead worker: (id, attempt, task, queue, tenant,
    worker_id, worker_host, started_at)."""
    rows = []
    for job_id, number, task, queue, tenant, worker_id, host, started_at in rescued:
        start = started_at if started_at is not None else now
        rows.append((job_id, number, task, queue, tenant, worker_id, host, None, start, now,
                     max(0.0, now - start), str(Outcome.LOST), "WorkerLost",
                     "the worker running this attempt stopped heartbeating", None, None,
                     None, None, None))
    return rows


def task_summaries(rows: Sequence[tuple[Any, ...]], points: int) -> list[TaskSummary]:
    """history_sql.task_rollups' rows, one per (task, queue): (task, queue, outcome
    counts..., duration sum, the histogram as comma-separated counts, the points as
    comma-separated `point:attempts:failures`, a point in several entries when several
    rollup rows make it: added up), with `points` buckets of attempts and failures."""
    n_out = len(OUTCOMES)
    out = []
    for row in sorted(rows, key=lambda r: (r[0], r[1])):
        buckets = [int(n) for n in str(row[3 + n_out]).split(",")]
        series, failures = [0] * points, [0] * points
        for item in str(row[4 + n_out] or "").split(","):
            if item:
                at, attempts, failed = item.split(":")
                slot = min(points - 1, max(0, int(at)))
                series[slot] += int(attempts)
                failures[slot] += int(failed)
        timed = sum(buckets)
        out.append(TaskSummary(
            task=row[0], queue=row[1], counts=dict(zip(OUTCOMES, row[2:2 + n_out], strict=True)),
            p50=quantile(buckets, 0.5), p95=quantile(buckets, 0.95),
            p99=quantile(buckets, 0.99),
            mean=((row[2 + n_out] or 0.0) / timed) if timed else None,
            series=tuple(series), failures=tuple(failures)))
    return out


def queue_summaries(rows: Sequence[tuple[Any, ...]], points: int) -> list[TaskSummary]:
    """Rows (point, queue, outcome counts...) summed per queue (task ''), with `points`
    buckets of attempts and failures."""
    totals: dict[str, tuple[list[int], list[int], list[int]]] = {}
    failed = [Outcome(o).failed for o in OUTCOMES]
    for row in rows:
        counts, series, failures = totals.setdefault(
            row[1], ([0] * len(OUTCOMES), [0] * points, [0] * points))
        slot = min(points - 1, max(0, int(row[0])))
        for i, n in enumerate(row[2:2 + len(OUTCOMES)]):
            counts[i] += n
            series[slot] += n
            if failed[i]:
                failures[slot] += n
    return [TaskSummary(task="", queue=queue, counts=dict(zip(OUTCOMES, counts, strict=True)),
                        series=tuple(series), failures=tuple(failures))
            for queue, (counts, series, failures) in sorted(totals.items())]

def attempt_info(r: tuple[Any, ...]) -> AttemptInfo:
    """(job_id, attempt, task, queue, tenant, worker_id, started_at, duration, outcome, cpu,
    rss, host, error_type, error_message, fingerprint)"""
    return AttemptInfo(job_id=r[0], attempt=r[1], task=r[2], queue=r[3], tenant=r[4] or None,
                       worker_id=r[5], started_at=r[6], duration=r[7], outcome=r[8], cpu=r[9],
                       rss=r[10], host=r[11], error_type=r[12], error_message=r[13],
                       fingerprint=r[14])
