"""Prometheus metrics with the app's own CollectorRegistry (no global registry).

Counters and the duration histogram follow the event feed: each event is compared with the
last state this process saw for that job. Gauges (backlog, oldest job, workers, rates) are read
from app.queues(), app.stats() and app.workers() at scrape time.

Label values are capped (LabelLimits): CONVEYOR_METRICS_MAX_LABELS distinct queues, as many
tasks and as many task/queue pairs get series of their own; the app's own tasks and queues
always do, the others first come, first kept; the rest are counted under `(other)`. So a
tenant that enqueues into a thousand new queues cannot add thousands of series.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any, NamedTuple

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..app import Conveyor
from ..job import JobEvent

log = logging.getLogger("conveyor.web")
TRACKED = 100_000
OVERFLOW = "(other)"  # not a valid queue name, so it never stands for a real queue
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


class Transition(NamedTuple):
    event: JobEvent
    before: str | None        # the state this process last saw (None: first sighting)
    ran_for: float | None     # seconds since it was seen starting, on running -> finished


class Transitions:
    """Turns events into transitions by remembering the last state of recent jobs."""

    def __init__(self, size: int = TRACKED) -> None:
        self.size = size
        self.seen: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def feed(self, events: list[JobEvent]) -> list[Transition]:
        now = time.monotonic()
        out = []
        for event in events:
            before = self.seen.get(event.id)
            if before is not None and before[0] == event.state:
                continue  # progress, or a repeat
            ran_for = now - before[1] if before and before[0] == "running" else None
            self.seen[event.id] = (event.state, now)
            self.seen.move_to_end(event.id)
            out.append(Transition(event, before[0] if before else None, ran_for))
        while len(self.seen) > self.size:
            self.seen.popitem(last=False)
        return out


def is_failure(t: Transition) -> bool:
    """A failed attempt: running, then back to scheduled (retry) or dead."""
    return t.before == "running" and t.event.state in ("scheduled", "dead")


def is_retry(t: Transition) -> bool:
    """Runs again after a failure: automatic backoff or a manual retry of a finished job."""
    return ((t.before == "running" and t.event.state == "scheduled")
            or (t.before in ("dead", "cancelled") and t.event.state == "queued"))


class LabelBudget:
    """At most `limit` distinct values, plus the reserved ones, are admitted; first come,
    first kept, for the life of the process."""

    def __init__(self, limit: int, reserved: Iterable[Hashable] = ()) -> None:
        self.limit = limit
        self.kept: set[Hashable] = set(reserved)
        self.lock = threading.Lock()  # admitted from the event loop and from scrape threads

    def admit(self, value: Hashable) -> bool:
        if value in self.kept:
            return True
        with self.lock:
            if len(self.kept) < self.limit:
                self.kept.add(value)
            return value in self.kept


class LabelLimits:
    """The label values metrics may use: a queue or a task outside its budget is counted
    as OVERFLOW."""

    def __init__(self, limit: int, conveyor: Conveyor) -> None:
        tasks = list(conveyor.registry)
        self.queues = LabelBudget(limit, (task.queue for task in tasks))
        self.tasks = LabelBudget(limit, (task.name for task in tasks))
        self.pairs = LabelBudget(limit, ((task.name, task.queue) for task in tasks))

    def queue(self, name: str) -> str:
        return name if self.queues.admit(name) else OVERFLOW

    def task(self, name: str) -> str:
        return name if self.tasks.admit(name) else OVERFLOW

    def pair(self, task: str, queue: str) -> tuple[str, str]:
        """(task, queue) labels; past the pair budget, the task's jobs on queues beyond it
        are counted under (task, OVERFLOW), so at most 2 * limit + 1 pairs exist."""
        folded = (self.task(task), self.queue(queue))
        return folded if self.pairs.admit(folded) else (folded[0], OVERFLOW)


class Metrics:
    def __init__(self, conveyor: Conveyor) -> None:
        self.limits = LabelLimits(conveyor.settings.metrics_max_labels, conveyor)
        self.registry = CollectorRegistry(auto_describe=False)
        labels = ["task", "queue"]
        r = self.registry
        self.enqueued = Counter("conveyor_jobs_enqueued", "Jobs enqueued", labels, registry=r)
        self.completed = Counter("conveyor_jobs_completed", "Jobs completed", labels, registry=r)
        self.failed = Counter("conveyor_jobs_failed", "Failed attempts", labels, registry=r)
        self.retried = Counter("conveyor_jobs_retried", "Jobs run again after a failure",
                               labels, registry=r)
        self.dead = Counter("conveyor_jobs_dead", "Jobs moved to dead", labels, registry=r)
        self.cancelled = Counter("conveyor_jobs_cancelled", "Jobs cancelled", labels,
                                 registry=r)
        self.duration = Histogram("conveyor_job_duration_seconds",
                                  "Run time of completed jobs, seen from the event feed",
                                  labels, buckets=BUCKETS, registry=r)
        self._children: dict[tuple[int, str, str], Any] = {}
        r.register(StoreCollector(conveyor, self.limits))

    def _child(self, metric: Any, event: JobEvent) -> Any:
        task, queue = self.limits.pair(event.task, event.queue)
        key = (id(metric), task, queue)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(task, queue)
        return child

    def observe(self, moves: list[Transition]) -> None:
        for t in moves:
            self._count(t)

    def _count(self, t: Transition) -> None:
        state = t.event.state
        if t.before is None and state in ("queued", "scheduled"):
            self._child(self.enqueued, t.event).inc()
        if is_failure(t):
            self._child(self.failed, t.event).inc()
        if is_retry(t):
            self._child(self.retried, t.event).inc()
        if state == "completed":
            self._child(self.completed, t.event).inc()
            if t.ran_for is not None:
                self._child(self.duration, t.event).observe(t.ran_for)
        elif state == "dead":
            self._child(self.dead, t.event).inc()
        elif state == "cancelled":
            self._child(self.cancelled, t.event).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class StoreCollector(Collector):
    """Gauges read from the store at scrape time."""

    def __init__(self, conveyor: Conveyor, limits: LabelLimits) -> None:
        self.conveyor = conveyor
        self.limits = limits

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("conveyor_store_up", "1 when the store answered this scrape")
        try:
            families = list(self._families())
        except Exception as exc:
            log.warning("metrics: the store did not answer: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> Iterator[Metric]:
        yield from self._queue_families()
        yield from self._stats_families()
        workers = self.conveyor.workers()
        count = GaugeMetricFamily("conveyor_workers", "Live workers")
        count.add_metric([], len(workers))
        slots = GaugeMetricFamily("conveyor_worker_jobs_running", "Jobs running on workers")
        slots.add_metric([], sum(w.running for w in workers))
        ahead = GaugeMetricFamily("conveyor_worker_jobs_claimed",
                                  "Jobs workers have claimed ahead (prefetched), not started")
        ahead.add_metric([], sum(w.claimed for w in workers))
        yield count
        yield slots
        yield ahead

    def _queue_families(self) -> Iterator[Metric]:
        backlog = GaugeMetricFamily("conveyor_queue_backlog", "Jobs waiting (queued and "
                                    "scheduled)", labels=["queue"])
        running = GaugeMetricFamily("conveyor_queue_running", "Jobs running (started; not "
                                    "those claimed ahead)", labels=["queue"])
        oldest = GaugeMetricFamily("conveyor_queue_oldest_job_age_seconds",
                                   "Age of the oldest queued job", labels=["queue"])
        paused = GaugeMetricFamily("conveyor_queue_paused", "1 when paused (under (other): "
                                   "how many are)", labels=["queue"])
        folded: dict[str, list[float]] = {}  # backlog, running, oldest age, paused
        for q in self.conveyor.queues():
            row = folded.setdefault(self.limits.queue(q.name), [0, 0, 0.0, 0])
            row[0] += q.counts.get("queued", 0) + q.counts.get("scheduled", 0)
            row[1] += q.counts.get("running", 0)
            row[2] = max(row[2], q.oldest_queued_age or 0.0)
            row[3] += 1 if q.paused else 0
        for name, (waiting, busy, age, held) in folded.items():
            backlog.add_metric([name], waiting)
            running.add_metric([name], busy)
            oldest.add_metric([name], age)
            paused.add_metric([name], held)
        yield from (backlog, running, oldest, paused)

    def _stats_families(self) -> Iterator[Metric]:
        stats = self.conveyor.stats()
        jobs = GaugeMetricFamily("conveyor_jobs", "Jobs stored, by queue and state",
                                 labels=["queue", "state"])
        for (queue, state), n in _folded(stats.by_queue, self.limits.queue).items():
            jobs.add_metric([queue, state], n)
        yield jobs
        tasks = GaugeMetricFamily("conveyor_task_jobs", "Jobs stored, by task and state",
                                  labels=["task", "state"])
        for (task, state), n in _folded(stats.by_task, self.limits.task).items():
            tasks.add_metric([task, state], n)
        yield tasks
        quantiles = GaugeMetricFamily("conveyor_job_duration_quantile_seconds",
                                      "Run time percentiles over the last hour",
                                      labels=["quantile"])
        for name, value in stats.durations.items():
            if value is not None:
                quantiles.add_metric([name.lstrip("p")], value)
        yield quantiles
        for name, value, text in (
                ("conveyor_retry_success_rate", stats.retry_success_rate,
                 "Share of retried jobs that completed (last hour)"),
                ("conveyor_failure_rate", stats.failure_rate,
                 "Share of finished jobs that failed (last hour)")):
            family = GaugeMetricFamily(name, text)
            if value is not None:
                family.add_metric([], value)
            yield family


def _folded(counts: dict[str, dict[str, int]],
            label: Callable[[str], str]) -> dict[tuple[str, str], int]:
    """Counts by (name, state), with names outside the budget summed under OVERFLOW."""
    out: dict[tuple[str, str], int] = {}
    for name, by_state in counts.items():
        folded = label(name)
        for state, n in by_state.items():
            out[folded, state] = out.get((folded, state), 0) + n
    return out
