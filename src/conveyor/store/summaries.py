"""Dialect-neutral summaries built from query rows: stats and queue overviews."""

from __future__ import annotations

from typing import Any

from ..job import JobState, QueueInfo
from .base import Stats

# the percentiles of Stats.durations; PostgreSQL's DURATION_PERCENTILES computes the same
PERCENTILES = (50, 95, 99)


def percentile(values: list[float], p: float) -> float | None:
    """Nearest rank, the rank rounded half to even (Python's round; PostgreSQL's round of
    a double precision, which DURATION_PERCENTILES relies on to give the same numbers)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def duration_percentiles(values: list[float]) -> dict[str, float | None]:
    """Stats.durations from the durations themselves: {"p50": ..., "p95": ..., "p99": ...}."""
    return {f"p{p}": percentile(values, p) for p in PERCENTILES}


def build_stats(counts: list[tuple[Any, ...]], durations: dict[str, float | None],
                outcomes: tuple[Any, ...], last_minute: int,
                claimed: dict[str, int] | None = None) -> Stats:
    """`durations`: p50/p95/p99 as duration_percentiles gives them (or PostgreSQL computes
    them). `claimed`: live workers' claimed-ahead jobs by queue (counting.claimed_ahead), left
    out of the running counts by state and by queue."""
    by_state: dict[str, int] = {str(s): 0 for s in JobState}
    by_queue: dict[str, dict[str, int]] = {}
    by_task: dict[str, dict[str, int]] = {}
    for queue, task, state, n in counts:
        by_state[state] = by_state.get(state, 0) + n
        by_queue.setdefault(queue, {})[state] = by_queue.get(queue, {}).get(state, 0) + n
        by_task.setdefault(task, {})[state] = by_task.get(task, {}).get(state, 0) + n
    ahead = 0
    for queue, n in (claimed or {}).items():
        counted = by_queue.get(queue, {})
        taken = min(n, counted.get("running", 0))
        if taken > 0:
            counted["running"] -= taken
            by_state["running"] -= taken
            ahead += taken
    completed, dead, completed_retried, dead_retried = (v or 0 for v in outcomes)
    finished = completed + dead
    retried = completed_retried + dead_retried
    return Stats(
        by_state=by_state, by_queue=by_queue, by_task=by_task,
        durations=durations,
        failure_rate=(dead / finished) if finished else None,
        retry_success_rate=(completed_retried / retried) if retried else None,
        completed_last_minute=last_minute, claimed=ahead)


def build_queue_infos(counts: list[tuple[Any, ...]], throughput: dict[str, int],
                      flags: dict[str, int] | dict[str, bool], now: float,
                      claimed: dict[str, int] | None = None) -> list[QueueInfo]:
    """`claimed`: live workers' claimed-ahead jobs by queue: out of counts["running"], into
    QueueInfo.claimed (never more than the queue's running jobs)."""
    names = sorted({r[0] for r in counts} | set(flags))
    by_queue: dict[str, dict[str, int]] = {n: {} for n in names}
    oldest: dict[str, float] = {}
    for queue, state, n, first_run in counts:
        by_queue[queue][state] = n
        if first_run is not None:
            oldest[queue] = first_run
    ahead = {n: max(0, min((claimed or {}).get(n, 0), by_queue[n].get("running", 0)))
             for n in names}
    for n in names:
        if ahead[n]:
            by_queue[n]["running"] -= ahead[n]
    return [QueueInfo(name=n, paused=bool(flags.get(n, False)), counts=by_queue[n],
                      oldest_queued_age=(now - oldest[n]) if n in oldest else None,
                      completed_last_minute=throughput.get(n, 0), claimed=ahead[n])
            for n in names]
