"""The job counters as both stores keep them (migration 0011): what a kept count's key is,
which job filters the counters can answer, and the rows the summaries are built from.

A count's state is the stored state, except that a scheduled job with an attempt behind it
counts as `retrying` (Job.retrying): the counters can answer the `retrying` filter, and the
summaries fold it back into `scheduled`, the state it is stored as, so stats and queues keep
their shape.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from ..job import RETRYING, JobFilter, JobState
from .base import JobCount

COUNTED_STATES = (*(str(s) for s in JobState), RETRYING)


def filter_countable(where: JobFilter) -> bool:
    """Whether the filter names only what the counters are kept by (states, queue, task,
    tenant): then a count needs no look at the jobs."""
    return not (where.correlation_id or where.idempotency_key or where.batch_id
                or where.tasks or where.queues or where.with_errors)


def counted_states(where: JobFilter) -> list[str]:
    """The counted states a filter selects: `scheduled` is both scheduled kinds."""
    if not where.states and not where.retrying:
        return list(COUNTED_STATES)
    chosen = {str(s) for s in where.states}
    if str(JobState.SCHEDULED) in chosen or where.retrying:
        chosen.add(RETRYING)
    return sorted(chosen)


def stored_state(state: str) -> str:
    return str(JobState.SCHEDULED) if state == RETRYING else state


def stats_rows(kept: Iterable[tuple[Any, ...]]) -> list[tuple[str, str, str, int]]:
    """(queue, task, state, count) rows for build_stats, from kept (queue, task, tenant,
    state, count) rows."""
    return [(r[0], r[1], stored_state(r[3]), int(r[4])) for r in kept]


def queue_rows(kept: Iterable[tuple[Any, ...]], oldest: dict[str, float]
               ) -> list[tuple[str, str, int, float | None]]:
    """(queue, state, count, oldest queued run_at) rows for build_queue_infos."""
    totals: dict[tuple[str, str], int] = {}
    for queue, _task, _tenant, state, n in kept:
        key = (queue, stored_state(state))
        totals[key] = totals.get(key, 0) + int(n)
    return [(queue, state, n, oldest.get(queue) if state == str(JobState.QUEUED) else None)
            for (queue, state), n in sorted(totals.items()) if n]


def dead_queues(kept: Iterable[tuple[Any, ...]]) -> list[str]:
    """The queues that hold dead jobs (the dead page's queue filter), at most 1,000."""
    return sorted({r[0] for r in kept if r[3] == str(JobState.DEAD) and r[4] > 0})[:1000]


def queued_queues(kept: Iterable[tuple[Any, ...]]) -> list[str]:
    """The queues with queued jobs, whose oldest queued job is looked up."""
    return sorted({r[0] for r in kept if r[3] == str(JobState.QUEUED) and r[4] > 0})


def job_counts(rows: Iterable[tuple[Any, ...]]) -> list[JobCount]:
    """JobCounts from (queue, task, tenant, state, count) rows, in key order ('' = None)."""
    counts = [JobCount(queue=r[0], task=r[1], tenant=r[2] or None, state=r[3], count=int(r[4]))
              for r in rows if r[4]]
    return sorted(counts, key=lambda c: (c.queue, c.task, c.tenant or "", c.state))


# --- jobs finished per minute (the last minute's throughput, the last hour's rates) ----------

KEEP_MINUTES = 120  # buckets older than this are dropped by fold_counts


def first_minute(now: float, seconds: float) -> int:
    """The first minute bucket of a window of `seconds` up to `now` (the bucket that holds
    its start, so the window is read to the minute)."""
    return math.floor((now - seconds) / 60)


def completed_last_minute(finished: Iterable[tuple[Any, ...]], now: float) -> dict[str, int]:
    """Completed jobs per queue in the 60 s up to `now`, from (queue, minute, state, retried,
    count) rows: this minute's, plus the previous minute's share that the window still
    covers (as if its jobs finished evenly over it)."""
    current = math.floor(now / 60)
    covered = 1.0 - (now - current * 60) / 60
    totals: dict[str, float] = {}
    for queue, minute, state, _retried, n in finished:
        if state != str(JobState.COMPLETED) or minute < current - 1:
            continue
        share = 1.0 if minute >= current else covered
        totals[queue] = totals.get(queue, 0.0) + n * share
    return {queue: round(n) for queue, n in totals.items()}


def outcomes(finished: Iterable[tuple[Any, ...]]) -> tuple[int, int, int, int]:
    """(completed, dead, completed after a retry, dead after a retry) of the rows."""
    counted = {(s, bool(r)): 0 for s in (str(JobState.COMPLETED), str(JobState.DEAD))
               for r in (False, True)}
    for _queue, _minute, state, retried, n in finished:
        counted[state, bool(retried)] += int(n)
    completed, dead = str(JobState.COMPLETED), str(JobState.DEAD)
    return (counted[completed, False] + counted[completed, True],
            counted[dead, False] + counted[dead, True], counted[completed, True],
            counted[dead, True])


# A worker's claimed-ahead counts are believed while the leases of the jobs they count may
# live: until its heartbeat's time plus the lease that heartbeat extends them by (0034:
# conveyor_workers.claimed_until). A worker that died with jobs prefetched no longer holds
# them once their leases run out and they are rescued. A row an older release wrote (no
# claimed_until) is believed for CLAIMED_FRESH seconds after its heartbeat, as before.
CLAIMED_FRESH = 60.0


def claimed_ahead(rows: Sequence[tuple[Any, ...]]) -> dict[str, int]:
    """Live workers' claimed-ahead jobs by queue, from rows of their claimed_queues (a dict,
    or its JSON text)."""
    total: dict[str, int] = {}
    for (by_queue,) in rows:
        for queue, n in (orjson.loads(by_queue) if isinstance(by_queue, str)
                         else by_queue or {}).items():
            total[queue] = total.get(queue, 0) + int(n)
    return total
