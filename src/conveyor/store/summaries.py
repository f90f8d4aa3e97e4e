"""Dialect-neutral summaries built from query rows: stats and queue overviews."""

from __future__ import annotations

from typing import Any

from ..job import JobState, QueueInfo
from .base import Stats


def percentile(values: list[float], p: float) -> float | None:
    """Nearest rank."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def build_stats(counts: list[tuple[Any, ...]], durations: list[float],
                outcomes: tuple[Any, ...], last_minute: int) -> Stats:
    by_state: dict[str, int] = {str(s): 0 for s in JobState}
    by_queue: dict[str, dict[str, int]] = {}
    by_task: dict[str, dict[str, int]] = {}
    for queue, task, state, n in counts:
        by_state[state] = by_state.get(state, 0) + n
        by_queue.setdefault(queue, {})[state] = by_queue.get(queue, {}).get(state, 0) + n
        by_task.setdefault(task, {})[state] = by_task.get(task, {}).get(state, 0) + n
    completed, dead, completed_retried, dead_retried = (v or 0 for v in outcomes)
    finished = completed + dead
    retried = completed_retried + dead_retried
    return Stats(
        by_state=by_state, by_queue=by_queue, by_task=by_task,
        durations={"p50": percentile(durations, 50), "p95": percentile(durations, 95),
                   "p99": percentile(durations, 99)},
        failure_rate=(dead / finished) if finished else None,
        retry_success_rate=(completed_retried / retried) if retried else None,
        completed_last_minute=last_minute)


def build_queue_infos(counts: list[tuple[Any, ...]], throughput: dict[str, int],
                      flags: dict[str, int] | dict[str, bool], now: float) -> list[QueueInfo]:
    names = sorted({r[0] for r in counts} | set(flags))
    by_queue: dict[str, dict[str, int]] = {n: {} for n in names}
    oldest: dict[str, float] = {}
    for queue, state, n, first_run in counts:
        by_queue[queue][state] = n
        if first_run is not None:
            oldest[queue] = first_run
    return [QueueInfo(name=n, paused=bool(flags.get(n, False)), counts=by_queue[n],
                      oldest_queued_age=(now - oldest[n]) if n in oldest else None,
                      completed_last_minute=throughput.get(n, 0)) for n in names]
