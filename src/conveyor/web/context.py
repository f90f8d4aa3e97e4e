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

# how long a page's request waits for a new read of its figures when it has an older copy to
# show: a small store's reads take a few ms and are waited for; one slowed by draining workers
# (60-150 ms at 10,000,000 jobs on PostgreSQL) must not hold the page (issue 16: p95 <= 50
# ms). Past the wait, the page still renders while the read's threads hold the GIL: a request
# served the older copy took 33-52 ms with 25 ms here, 14-29 ms with 10
# (bench/results/2026-12-12-pgfresh.md)
PAGE_WAIT = 0.010


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
        # overview's store reads per scope, and the gauges of /metrics (a scrape always waits
        # for its read: its samples are stamped with the scrape's time)
        settings = conveyor.settings
        self.gauges: Snapshot[Any] = Snapshot(settings.dashboard_snapshot)
        # the pages' copies: past that age a page's request starts a new read, and gets the
        # older copy (up to CONVEYOR_DASHBOARD_STALE more seconds old, its age shown) when the
        # read takes longer than PAGE_WAIT; the queues page's and the dead page's are dropped
        # by every change made through this server (fresh.py)
        self.overview: Snapshot[Any] = self._page_copies()
        self.queues_page: Snapshot[Any] = self._page_copies()
        self.dead_page: Snapshot[Any] = self._page_copies()

    def _page_copies(self) -> Snapshot[Any]:
        settings = self.conveyor.settings
        return Snapshot(settings.dashboard_snapshot, stale=settings.dashboard_stale,
                        wait=PAGE_WAIT)

    async def settle_reads(self, timeout: float = 5.0) -> None:
        """Let the shared reads under way end before the server stops (server.py)."""
        await Snapshot.settle(self.overview, self.queues_page, self.dead_page, self.gauges,
                              timeout=timeout)

    def changed(self) -> None:
        """Something may have changed through this server: the queues and dead pages'
        copies go; the overview's stay for what CONVEYOR_DASHBOARD_SNAPSHOT allows (as
        before the older copies), never past it."""
        self.queues_page.drop()
        self.dead_page.drop()
        self.overview.changed()

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
