"""The job counters as both stores keep them (migration 0011): what a kept count's key is,
which job filters the counters can answer, and the rows the summaries are built from.

A count's state is the stored state, except that a scheduled job with an attempt behind it
counts as `retrying` (Job.retrying): the counters can answer the `retrying` filter, and the
summaries fold it back into `scheduled`, the state it is stored as, so stats and queues keep
their shape.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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
