"""The lease watchdog: a worker that cannot renew its leases stops the jobs they cover.

A lease runs out `lease` seconds after its last renewal (or its claim). When the heartbeat
cannot reach the store (a network partition, a store that is down or locked), the store lets
the lease run out and rescues the job to another worker. Running on past that point would
only do the work twice and have the outcome refused (fenced) later, so the watchdog stops
those jobs at their lease's end, by this process's monotonic clock (a wall clock that is off
does not matter) and writes nothing for them; the store gives them to another worker.

It runs on the worker's loop, not in the heartbeat thread, because a heartbeat can hang in a
socket read for as long as the connection takes to fail.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable

from ..job import Lease

log = logging.getLogger("conveyor.worker")


class LeaseWatch:
    def __init__(self, lease: float, interval: float,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.lease = lease
        self.interval = interval  # the heartbeat interval: how late a new lease may be seen
        self.monotonic = monotonic
        self.renewed_at = monotonic()
        self.first_seen: dict[str, float] = {}
        self.stopped = 0  # jobs stopped because their lease ran out unrenewed
        self._stopping: set[str] = set()  # stopped, not ended yet: reported once
        self._lock = threading.Lock()

    def renewed(self, began: float) -> None:
        """A heartbeat that started at `began` (monotonic) renewed every lease it listed."""
        with self._lock:
            self.renewed_at = max(self.renewed_at, began)

    def expired(self, leases: Iterable[Lease]) -> list[str]:
        """The job ids among `leases` whose lease has run out without a renewal. A lease seen
        for the first time counts from one heartbeat interval earlier (it was claimed between
        two looks), so a job is stopped early rather than late."""
        now = self.monotonic()
        ids = {lease.job_id for lease in leases}
        for gone in set(self.first_seen) - ids:
            del self.first_seen[gone]
        self._stopping &= ids
        with self._lock:
            renewed = self.renewed_at
        out = []
        for job_id in ids - self._stopping:
            seen = self.first_seen.setdefault(job_id, now)
            if now >= max(renewed, seen - self.interval) + self.lease:
                out.append(job_id)
        return out

    async def run(self, leases: Callable[[], list[Lease]],
                  lose: Callable[[str], None]) -> None:
        """Look twice per heartbeat interval until cancelled; `lose` stops one job."""
        while True:
            await asyncio.sleep(min(self.interval / 2, 1.0))
            expired = self.expired(leases())
            if not expired:
                continue
            with self._lock:
                silent = self.monotonic() - self.renewed_at
            log.warning("the leases of %d jobs were not renewed for %.1fs (the store cannot "
                        "be reached) and have run out: stopping them, another worker takes "
                        "them over: %s", len(expired), silent, ", ".join(sorted(expired)))
            for job_id in expired:
                self.stopped += 1
                self._stopping.add(job_id)
                lose(job_id)
