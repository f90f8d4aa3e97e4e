"""Time series for the dashboard charts: a sample every few seconds of backlog and running
per queue and of duration percentiles, plus completions and failures counted from the event
feed. Kept in memory per scope (all tenants, and each tenant someone looked at)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..app import Conveyor
from .metrics import Transition, is_failure

log = logging.getLogger("conveyor.web")
MAX_TENANTS = 50
Call = Callable[..., Awaitable[Any]]  # WebContext.call: runs a sync app method


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    backlog: dict[str, int] = field(default_factory=dict)
    running: dict[str, int] = field(default_factory=dict)
    completed: int = 0        # in the interval before `at`
    failed: int = 0
    enqueued: int = 0
    dead: int = 0             # dead jobs stored at `at`
    interval: float = 1.0
    p50: float | None = None
    p95: float | None = None

    @property
    def throughput(self) -> float:
        """Completions per minute over the interval."""
        return self.completed * 60.0 / self.interval

    @property
    def enqueue_rate(self) -> float:
        return self.enqueued * 60.0 / self.interval

    @property
    def failure_rate(self) -> float | None:
        total = self.completed + self.failed
        return None if total == 0 else self.failed / total


class History:
    def __init__(self, conveyor: Conveyor, *, every: float = 5.0, keep: int = 180) -> None:
        self.conveyor = conveyor
        self.every = every
        self.keep = keep
        self.series: dict[str | None, deque[Sample]] = {None: deque(maxlen=keep)}
        self.counts: dict[str | None, list[int]] = defaultdict(lambda: [0, 0, 0])
        self.last_sample = time.time()

    def track(self, tenant: str | None) -> None:
        """Start keeping a series for this tenant (the first time it opens the overview)."""
        if tenant not in self.series and len(self.series) <= MAX_TENANTS:
            self.series[tenant] = deque(maxlen=self.keep)

    def samples(self, tenant: str | None) -> list[Sample]:
        self.track(tenant)
        return list(self.series.get(tenant, ()))

    def observe(self, moves: list[Transition]) -> None:
        for t in moves:
            slot = _slot(t)
            if slot is None:
                continue
            for scope in {None, t.event.tenant}:
                if scope in self.series:
                    self.counts[scope][slot] += 1

    async def run(self, call: Call) -> None:
        """Sample every `every` seconds until cancelled; `call` runs a sync app method."""
        while True:
            try:  # a role that may only read (a tenant's) cannot fold: the workers do then
                await self.fold_counts(call)
            except Exception as exc:
                log.debug("dashboard history: folding the counts failed: %s", exc)
            try:
                await self.sample_all(call)
            except Exception as exc:  # the store may be briefly down; try again next time
                log.warning("dashboard history: sampling failed: %s", exc)
            await asyncio.sleep(self.every)

    async def fold_counts(self, call: Call) -> None:
        """Fold the job counters' deltas as the workers' maintenance does (store/counting.py):
        jobs enqueued while no worker runs would otherwise make every count read sum them.
        Not on an inline store (SQLite): its counts are exact without a fold (the fold only
        drops zero keys and old minutes, the workers' housekeeping), and the fold is a write
        that would wait for the write lock behind the workers on the server's event loop,
        holding up every request meanwhile."""
        if getattr(self.conveyor.store, "inline", False):
            return
        await call(self.conveyor.call, lambda store: store.fold_counts())

    async def sample_all(self, call: Call) -> None:
        now = time.time()
        interval = max(0.001, now - self.last_sample)
        self.last_sample = now
        for scope in list(self.series):
            self.series[scope].append(await self._sample(call, scope, now, interval))

    async def _sample(self, call: Call, scope: str | None, now: float,
                      interval: float) -> Sample:
        queues = await call(self.conveyor.queues, tenant=scope)
        stats = await call(self.conveyor.stats, tenant=scope)
        completed, failed, enqueued = self.counts.pop(scope, [0, 0, 0])
        return Sample(at=now, interval=interval,
                      backlog={q.name: q.counts.get("queued", 0) + q.counts.get("scheduled", 0)
                               for q in queues},
                      running={q.name: q.counts.get("running", 0) for q in queues},
                      completed=completed, failed=failed, enqueued=enqueued,
                      dead=stats.by_state.get("dead", 0),
                      p50=stats.durations.get("p50"), p95=stats.durations.get("p95"))


def _slot(t: Transition) -> int | None:
    """Which interval counter a transition adds to: completed, failed or enqueued."""
    if t.event.state == "completed":
        return 0
    if is_failure(t):
        return 1
    if t.before is None and t.event.state in ("queued", "scheduled"):
        return 2
    return None
