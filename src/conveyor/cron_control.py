"""Pausing and resuming cron schedules at run time: the part of Conveyor's API behind
`conveyor cron pause|resume`, POST /api/v1/cron/{name}/pause|resume and the cron page. A
mixin of Conveyor (app.py). Schedules are declared in code; the store keeps which are paused
(conveyor_cron), and every scheduler reads that at every pass (scheduler.py).

    app.pause_schedule("nightly report")   # no node enqueues its slots until resumed
    app.resume_schedule("nightly report")  # the next slot after now runs; none missed
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import ScheduleNotFound
from .store.base import ScheduleState

if TYPE_CHECKING:
    from .clock import Clock
    from .scheduler import Schedule
    from .store.base import Store

T = TypeVar("T")


class CronControl:
    if TYPE_CHECKING:  # what Conveyor (app.py) provides
        schedules: dict[str, Schedule]
        clock: Clock

        def call(self, coro_fn: Callable[[Store], Coroutine[Any, Any, T]]) -> T: ...

    def pause_schedule(self, name: str) -> None:
        """Stop `name` from enqueueing on every node, until resume_schedule. Pausing a paused
        schedule is fine. ScheduleNotFound for a name the app does not declare."""
        self._set_paused(name, True)

    def resume_schedule(self, name: str) -> None:
        """Let `name` run again from its next slot (slots that passed while it was paused do
        not run)."""
        self._set_paused(name, False)

    def schedule_states(self) -> dict[str, ScheduleState]:
        """Each schedule's stored state (only those ever paused have one)."""
        return self.call(lambda store: store.schedule_states())

    def _set_paused(self, name: str, paused: bool) -> None:
        if name not in self.schedules:
            raise ScheduleNotFound(name, sorted(self.schedules))
        self.call(lambda store: store.set_schedule_paused(name, paused,
                                                          self.clock.store_now()))
