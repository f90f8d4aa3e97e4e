"""What every handler shares: the app, the authenticator, the event hub, metrics, history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from ..app import Conveyor
from ..job import JobEvent
from .auth import Authenticator
from .bodies import BodySlots
from .enqueue_rate import EnqueueRate
from .events import EventHub
from .history import History
from .metrics import Metrics, Transitions
from .snapshot import Snapshot

T = TypeVar("T")


class WebContext:
    def __init__(self, conveyor: Conveyor, auth: Authenticator, *,
                 sample_every: float = 5.0) -> None:
        self.conveyor = conveyor
        self.auth = auth
        self.hub = EventHub(conveyor)
        self.metrics = Metrics(conveyor)
        self.history = History(conveyor, every=sample_every)
        self.transitions = Transitions()
        self.enqueue_rate = EnqueueRate(conveyor.settings.api_enqueue_rate)  # 429s
        self.hub.add_listener(self._observe)
        self.body_slots = BodySlots(conveyor.settings.max_large_bodies)
        # shared reads, at most CONVEYOR_DASHBOARD_SNAPSHOT seconds old (snapshot.py): the
        # overview's store reads per scope, and the gauges of /metrics
        self.overview: Snapshot[Any] = Snapshot(conveyor.settings.dashboard_snapshot)
        self.gauges: Snapshot[Any] = Snapshot(conveyor.settings.dashboard_snapshot)
        # the queues page's and the dead page's store reads, dropped by every change made
        # through this server (fresh.py)
        self.queues_page: Snapshot[Any] = Snapshot(conveyor.settings.dashboard_snapshot)
        self.dead_page: Snapshot[Any] = Snapshot(conveyor.settings.dashboard_snapshot)

    def changed(self) -> None:
        """Something may have changed through this server: the pages' copies go."""
        self.queues_page.drop()
        self.dead_page.drop()

    def _observe(self, events: list[JobEvent]) -> None:
        """Metrics and chart history both count transitions, worked out once per batch."""
        moves = self.transitions.feed(events)
        if moves:
            self.metrics.observe(moves)
            self.history.observe(moves)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a sync app method. The SQLite store answers in microseconds and never blocks
        on I/O, so it runs inline; other stores would block the loop, so they go to a thread."""
        if getattr(self.conveyor.store, "inline", False):
            return fn(*args, **kwargs)
        return await run_in_threadpool(fn, *args, **kwargs)

    @property
    def max_body(self) -> int:
        """The largest body of one job: CONVEYOR_MAX_BODY_BYTES, by default room for the
        largest payload (escaped JSON is up to twice its size) and the options."""
        s = self.conveyor.settings
        return s.max_body_bytes or s.max_payload_bytes * 2 + 65536

    @property
    def max_batch_body(self) -> int:
        return self.conveyor.settings.max_batch_body_bytes
