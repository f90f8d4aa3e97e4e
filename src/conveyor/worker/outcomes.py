"""What a worker has to write back: the outcomes of finished jobs and the newest progress of
running ones. They wait here until the claim loop's next trip to the store takes them all
(Store.settle_and_claim: the settle and the claim for the slots it frees, one trip), and go
back in front when that trip did not write them.

    outcomes = Outcomes()
    outcomes.add(Complete(lease, result))
    items = outcomes.take()                 # progress first, then outcomes
    outcomes.report(items, applied)         # or outcomes.put_back(items) if not written
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..job import Lease
from ..store.base import Progress, Settle

log = logging.getLogger("conveyor.worker")


class Outcomes:
    def __init__(self, on_written: Callable[[list[Settle], list[bool]], None] | None = None,
                 on_take: Callable[[], None] | None = None) -> None:
        self.on_written = on_written  # told what each settle trip wrote (lifecycle hooks)
        self.on_take = on_take  # told before a trip takes them (history's RSS: Tracker.stamp)
        self._items: list[Settle] = []
        self._progress: dict[str, Progress] = {}  # job id: its newest progress
        self._progress_lock = threading.Lock()  # sync tasks report progress from their threads
        self.lost = 0  # outcomes dropped because the job's lease had moved on

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: Settle) -> None:
        self._items.append(item)

    def progressed(self, lease: Lease, percent: float, step: str | None) -> None:
        """The newest progress of a running job; safe from any thread."""
        with self._progress_lock:
            self._progress[lease.job_id] = Progress(lease, percent, step)

    def job_ids(self) -> set[str]:
        """Jobs with an outcome still to write."""
        return {item.lease.job_id for item in self._items}

    def take(self) -> list[Settle]:
        """Everything to write, progress first (it is fenced on the job still running)."""
        if self.on_take is not None:
            self.on_take()
        items, self._items = self._items, []
        with self._progress_lock:
            progress, self._progress = list(self._progress.values()), {}
        return [*progress, *items] if progress else items

    def put_back(self, items: list[Settle]) -> None:
        """Items taken but not written (the store was down): first in line next time."""
        self._items = items + self._items

    def report(self, items: list[Settle], applied: list[bool]) -> None:
        """Count and log the outcomes the store refused: their lease had moved on."""
        for item, ok in zip(items, applied, strict=True):
            if not ok and not isinstance(item, Progress):
                self.lost += 1
                log.warning("lease lost for job %s: its outcome (%s) was dropped; another "
                            "worker owns it now", item.lease.job_id, type(item).__name__)
        if self.on_written is not None:
            self.on_written(items, applied)
