"""Prometheus metrics, written as text by this package (exposition.py, store_gauges.py): no
global registry, no Sample object per line.

Counters and the duration histogram follow the event feed: each event is compared with the
last state this process saw for that job. Gauges (backlog, oldest job, workers, rates) are read
from app.queues(), app.stats() and app.workers() at scrape time (store_gauges.py).

Label values are capped (LabelLimits): CONVEYOR_METRICS_MAX_LABELS distinct queues, as many
tasks and as many task/queue pairs get series of their own; the app's own tasks and queues
always do, the others first come, first kept; the rest are counted under `(other)`. So a
tenant that enqueues into a thousand new queues cannot add thousands of series.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any, NamedTuple

from ..app import Conveyor
from ..job import JobEvent
from .exposition import CounterFamily, HistogramFamily
from .snapshot import Snapshot
from .store_gauges import StoreRead, store_gauges

Call = Callable[..., Awaitable[Any]]  # WebContext.call: runs a sync app method

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
    """The event-fed counters and histogram (exposition.py: formatted by hand, cheaply) and
    the gauges read from the store at a scrape (store_gauges.py)."""

    def __init__(self, conveyor: Conveyor) -> None:
        self.conveyor = conveyor
        self.limits = LabelLimits(conveyor.settings.metrics_max_labels, conveyor)
        self.enqueued = CounterFamily("conveyor_jobs_enqueued", "Jobs enqueued")
        self.completed = CounterFamily("conveyor_jobs_completed", "Jobs completed")
        self.failed = CounterFamily("conveyor_jobs_failed", "Failed attempts")
        self.retried = CounterFamily("conveyor_jobs_retried", "Jobs run again after a failure")
        self.dead = CounterFamily("conveyor_jobs_dead", "Jobs moved to dead")
        self.cancelled = CounterFamily("conveyor_jobs_cancelled", "Jobs cancelled")
        self.duration = HistogramFamily("conveyor_job_duration_seconds",
                                        "Run time of completed jobs, seen from the event feed",
                                        BUCKETS)
        self.families: list[CounterFamily | HistogramFamily] = [
            self.enqueued, self.completed, self.failed, self.retried, self.dead,
            self.cancelled, self.duration]

    def _pair(self, event: JobEvent) -> tuple[str, str]:
        return self.limits.pair(event.task, event.queue)

    def observe(self, moves: list[Transition]) -> None:
        for t in moves:
            self._count(t)

    def _count(self, t: Transition) -> None:
        state = t.event.state
        if t.before is None and state in ("queued", "scheduled"):
            self.enqueued.inc(self._pair(t.event))
        if is_failure(t):
            self.failed.inc(self._pair(t.event))
        if is_retry(t):
            self.retried.inc(self._pair(t.event))
        if state == "completed":
            self.completed.inc(self._pair(t.event))
            if t.ran_for is not None:
                self.duration.observe(self._pair(t.event), t.ran_for)
        elif state == "dead":
            self.dead.inc(self._pair(t.event))
        elif state == "cancelled":
            self.cancelled.inc(self._pair(t.event))

    async def scrape(self, call: Call, gauges: Snapshot[StoreRead]) -> bytes:
        """The whole exposition: the event-fed series, then the store's gauges from a copy
        at most CONVEYOR_DASHBOARD_SNAPSHOT seconds old (`gauges`, shared by concurrent
        scrapes; its age is conveyor_metrics_snapshot_age_seconds). `call`: WebContext.call;
        on PostgreSQL the three reads of a copy run side by side."""
        conveyor = self.conveyor

        async def read() -> StoreRead:
            queues, stats, workers = await asyncio.gather(
                call(conveyor.queues), call(conveyor.stats), call(conveyor.workers))
            return StoreRead(queues, stats, workers)

        try:
            found: StoreRead | None
            found, age = await gauges.get(None, read)
        except Exception as exc:
            log.warning("metrics: the store did not answer: %s", exc)
            found, age = None, None
        return self.render(found, age)

    def render(self, read: StoreRead | None, age: float | None = None) -> bytes:
        events = "".join(family.render() for family in self.families)
        return (events + store_gauges(read, self.limits.queue, self.limits.task, age)
                ).encode()
