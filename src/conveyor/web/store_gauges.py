"""The gauges of /metrics read from the store at a scrape (queues, stats, workers), written
as Prometheus text (exposition.py's format, by hand: a few hundred lines).

Label values are capped as the event-fed series' are (metrics.LabelLimits): queues and tasks
outside the budget are summed under `(other)`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ..job import QueueInfo, WorkerInfo
from ..store.base import Stats
from .exposition import escape, header, number


@dataclass(frozen=True, slots=True)
class StoreRead:
    """What one scrape read of the store."""

    queues: list[QueueInfo]
    stats: Stats
    workers: list[WorkerInfo]


Labels = Sequence[tuple[str, str]]


def gauge(name: str, text: str, samples: Iterable[tuple[Labels, float]]) -> str:
    lines = [header(name, "gauge", text)]
    for labels, value in samples:
        shown = ",".join(f'{key}="{escape(v)}"' for key, v in sorted(labels))
        lines.append(f"{name}{{{shown}}} {number(value)}\n" if shown
                     else f"{name} {number(value)}\n")
    return "".join(lines)


def store_gauges(read: StoreRead | None, queue_label: Callable[[str], str],
                 task_label: Callable[[str], str], age: float | None = None) -> str:
    """Every store gauge; only `conveyor_store_up 0.0` when the store did not answer. `age`:
    seconds since the read began (the copy is shared for up to CONVEYOR_DASHBOARD_SNAPSHOT)."""
    up = gauge("conveyor_store_up", "1 when the store answered this scrape",
               [((), 0 if read is None else 1)])
    if read is None:
        return up
    return (up + gauge("conveyor_metrics_snapshot_age_seconds",
                       "Age of the store read these gauges come from (shared by scrapes for "
                       "up to CONVEYOR_DASHBOARD_SNAPSHOT seconds)", [((), age or 0.0)])
            + queue_gauges(read.queues, queue_label)
            + stats_gauges(read.stats, queue_label, task_label) + worker_gauges(read.workers))


def queue_gauges(queues: list[QueueInfo], label: Callable[[str], str]) -> str:
    folded: dict[str, list[float]] = {}  # backlog, running, oldest age, paused
    for q in queues:
        row = folded.setdefault(label(q.name), [0, 0, 0.0, 0])
        row[0] += q.counts.get("queued", 0) + q.counts.get("scheduled", 0)
        row[1] += q.counts.get("running", 0)
        row[2] = max(row[2], q.oldest_queued_age or 0.0)
        row[3] += 1 if q.paused else 0
    rows = [((("queue", name),), values) for name, values in folded.items()]
    return "".join(gauge(name, text, [(labels, values[n]) for labels, values in rows])
                   for n, (name, text) in enumerate((
                       ("conveyor_queue_backlog", "Jobs waiting (queued and scheduled)"),
                       ("conveyor_queue_running",
                        "Jobs running (started; not those claimed ahead)"),
                       ("conveyor_queue_oldest_job_age_seconds",
                        "Age of the oldest queued job"),
                       ("conveyor_queue_paused", "1 when paused (under (other): how many are)"))))


def stats_gauges(stats: Stats, queue_label: Callable[[str], str],
                 task_label: Callable[[str], str]) -> str:
    out = [gauge("conveyor_jobs", "Jobs stored, by queue and state",
                 [((("queue", queue), ("state", state)), n) for (queue, state), n
                  in _folded(stats.by_queue, queue_label).items()]),
           gauge("conveyor_task_jobs", "Jobs stored, by task and state",
                 [((("task", task), ("state", state)), n) for (task, state), n
                  in _folded(stats.by_task, task_label).items()]),
           gauge("conveyor_job_duration_quantile_seconds",
                 "Run time percentiles over the last hour",
                 [((("quantile", name.lstrip("p")),), value)
                  for name, value in stats.durations.items() if value is not None])]
    for name, value, text in (
            ("conveyor_retry_success_rate", stats.retry_success_rate,
             "Share of retried jobs that completed (last hour)"),
            ("conveyor_failure_rate", stats.failure_rate,
             "Share of finished jobs that failed (last hour)")):
        out.append(gauge(name, text, [] if value is None else [((), value)]))
    return "".join(out)


def worker_gauges(workers: list[WorkerInfo]) -> str:
    return (gauge("conveyor_workers", "Live workers", [((), len(workers))])
            + gauge("conveyor_worker_jobs_running", "Jobs running on workers",
                    [((), sum(w.running for w in workers))])
            + gauge("conveyor_worker_jobs_claimed",
                    "Jobs workers have claimed ahead (prefetched), not started",
                    [((), sum(w.claimed for w in workers))]))


def _folded(counts: dict[str, dict[str, int]],
            label: Callable[[str], str]) -> dict[tuple[str, str], int]:
    """Counts by (name, state), with names outside the budget summed under OVERFLOW."""
    out: dict[tuple[str, str], int] = {}
    for name, by_state in counts.items():
        folded = label(name)
        for state, n in by_state.items():
            out[folded, state] = out.get((folded, state), 0) + n
    return out
