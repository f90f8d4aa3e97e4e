"""Who consumes each queue: live workers and their slots, and the queues that wait with no
one to take them (a backlog and no worker is the first thing an operator must see)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from ..job import WorkerInfo


@dataclass(frozen=True, slots=True)
class Consumers:
    workers: int = 0
    slots: int = 0

    @property
    def label(self) -> str:
        if not self.workers:
            return "none"
        return (f"{self.workers} worker{'s' if self.workers != 1 else ''}, "
                f"{self.slots} slot{'s' if self.slots != 1 else ''}")


def consumers_of(queues: Iterable[str], workers: Iterable[WorkerInfo], lease: float,
                 now: float | None = None) -> dict[str, Consumers]:
    """Per queue: live workers (a heartbeat within two leases) that take it, and their slots
    (a worker of several queues offers all its slots to each)."""
    now = time.time() if now is None else now
    live = [w for w in workers
            if w.heartbeat_at is not None and now - w.heartbeat_at <= 2 * lease]
    found = {}
    for name in queues:
        takers = [w for w in live if not w.queues or "*" in w.queues or name in w.queues]
        found[name] = Consumers(len(takers), sum(w.concurrency for w in takers))
    return found


def starving(queues: Iterable[dict[str, object]], consumers: dict[str, Consumers]
             ) -> list[str]:
    """Queues with jobs ready to run, not paused, and no live worker that takes them."""
    return [str(q["name"]) for q in queues
            if int(q.get("queued", 0) or 0) > 0 and not q.get("paused")  # type: ignore[call-overload]
            and not consumers.get(str(q["name"]), Consumers()).workers]
