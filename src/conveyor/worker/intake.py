"""How much the claim loop asks for, and when it goes round again.

Each round the loop claims the free slots plus a prefetch, while recent jobs are short:
prefetched jobs wait in this process holding their lease, worth it for short jobs (a freed
slot starts its next job at once), unfair for long ones, which other workers could start.
Between rounds it waits for a wake-up (worker.py), or at most a jittered poll, less when a
scheduled job is due (then it promotes first) or a rate has room again (pacing.py).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .. import _rng
from ..clock import Clock
from .pacing import Pacing
from .slots import Slots

if TYPE_CHECKING:
    from .maintenance import Maintenance

log = logging.getLogger("conveyor.worker")

PREFETCH_BELOW = 0.25  # seconds: the average job duration that allows a prefetch


class Intake:
    """The claim loop's measures: how many jobs to want, whether to promote, how long to
    wait."""

    def __init__(self, slots: Slots, pacing: Pacing, clock: Clock, prefetch: int,
                 poll_interval: float, maintenance: Maintenance | None) -> None:
        self.slots = slots
        self.pacing = pacing
        self.clock = clock
        self.prefetch = prefetch
        self.prefetch_below = PREFETCH_BELOW
        self.poll_interval = poll_interval
        self.maintenance = maintenance
        # a producer or a retry may just have scheduled a job: promote at the next round
        self.schedule_dirty = True

    def wanted(self) -> int:
        """Free slots, and the prefetch while recent jobs are short."""
        average = self.slots.average_duration
        short = average is not None and average < self.prefetch_below
        return self.slots.free + (self.prefetch if short else 0)

    def schedule_due(self) -> bool:
        """Promote now? When a scheduled job may be due: one we know of is, or a producer or
        a retry just scheduled one (the periodic promote would find it up to a second late)."""
        if self.maintenance is None:
            return False
        due = self.maintenance.next_due
        return self.schedule_dirty or (due is not None and due <= self.clock.now())

    async def promote(self) -> None:
        self.schedule_dirty = False
        assert self.maintenance is not None
        try:
            await self.maintenance.promote()
        except Exception as exc:
            log.warning("promote failed: %s", exc)
            self.maintenance.next_due = None

    def delay(self) -> float:
        """How long to wait for a wake-up before the next round."""
        return self.pacing.delay(self._poll_delay(), self.clock.now())

    def _poll_delay(self) -> float:
        if self.schedule_dirty:
            return 0.0
        delay = self.poll_interval * _rng.uniform(0.8, 1.2)
        if self.maintenance is not None and self.maintenance.next_due is not None:
            delay = min(delay, max(0.001, self.maintenance.next_due - self.clock.now()))
        return delay
