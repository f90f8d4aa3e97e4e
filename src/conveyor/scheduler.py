"""Cron: a job per slot of a schedule, enqueued once however many nodes run the scheduler.

Every worker runs the scheduler (in its maintenance). For each slot of a schedule (each time
its cron expression names) that falls due, every node enqueues the same job: its id is made
from the schedule's name and the slot's time (a UUIDv7 whose clock part is the slot's time),
so the store keeps the first and reports the others as duplicates. No leader, no lock: a
node that is down, slow or late changes nothing. The one table (conveyor_cron) holds what
operators change at run time: a paused schedule enqueues nothing on any node (each reads the
pauses at every pass) until it is resumed, and no slot from before its resume. Slots a node
finds due together (its loop was held up, or it has just started) are coalesced into the
latest one, and a slot more than `misfire` seconds old is skipped: after an outage of every
worker, a schedule runs once, not once per missed slot.

Each slot's job also carries the idempotency key `cron:<its id>`, so the stores take the
second and later copies by their ON CONFLICT path (no error on the server), and `run_at` set to
the slot, so a node whose clock runs ahead never starts a job before its time. The scheduler
calls the store itself: a store that is down is retried at the next pass (within `misfire`),
never spooled. A slot's job stays in the table until its retention prunes it; keep finished
jobs longer than `misfire` (the default retention keeps them for a day or more), or a node
starting late could enqueue a pruned slot again.

Daylight saving time: a schedule with fixed hours runs once when the clock falls back (the
repeated hour's second pass is skipped) and at the shifted time when it springs forward (02:30
on a day without 02:30 runs at 03:00); a schedule with `*` or `*/n` hours keeps running through
the repeated hour, by real time.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from .errors import ConfigError, ConveyorError
from .job import EnqueueResult
from .preparing import ENQUEUE_OPTIONS
from .store.base import ScheduleState

if TYPE_CHECKING:
    from .app import Conveyor
    from .clock import Clock

log = logging.getLogger("conveyor.scheduler")

# Options a schedule may give its jobs: not a time of its own (the slot is its time), nor a key
# or a caller's transaction.
SCHEDULE_OPTIONS = ENQUEUE_OPTIONS - {"delay", "run_at", "idempotency_key", "connection"}
MISFIRE = 60.0  # seconds: a slot older than this when a node first sees it is skipped


@dataclass(frozen=True)
class Schedule:
    """`task` with `payload` (and `options`) at every time the cron `expression` names, in
    `timezone`. Five fields (minute hour day month weekday), or six with seconds last."""

    name: str
    expression: str
    task: str
    payload: Any = None
    timezone: str = "UTC"
    options: Mapping[str, Any] = field(default_factory=dict)

    def slots(self, after: float, until: float) -> Iterator[float]:
        """The slot times t with after < t <= until, in order."""
        for slot in self._times(after):
            if slot > until:
                return
            if slot > after:
                yield slot

    def next_slot(self, after: float) -> float:
        return next(self._times(after))

    def _times(self, after: float) -> Iterator[float]:
        """Every slot after `after`, for ever; with fixed hours, none in the second pass of a
        repeated hour (the clock fell back: that wall time has had its run)."""
        zone = ZoneInfo(self.timezone)
        times = croniter(self.expression, datetime.fromtimestamp(after, zone))
        fields = self.expression.split()
        hours = fields[1] if len(fields) > 1 else "*" if fields[0] == "@hourly" else "0"
        fixed_hours = not hours.startswith("*")
        while True:
            slot = float(times.get_next(float))
            if not (fixed_hours and datetime.fromtimestamp(slot, zone).fold):
                yield slot


def add(schedules: dict[str, Schedule], name: str | None, expression: str, task: str,
        payload: Any, timezone: str, options: Mapping[str, Any]) -> Schedule:
    """Check a schedule and add it to an app's `schedules` under its unique name."""
    entry = schedule(name, expression, task, payload, timezone, options)
    if entry.name in schedules:
        raise ConfigError(f"a schedule named {entry.name!r} exists already")
    schedules[entry.name] = entry
    return entry


def schedule(name: str | None, expression: str, task: str, payload: Any, timezone: str,
             options: Mapping[str, Any]) -> Schedule:
    """A checked Schedule: a bad expression, zone or option is a ConfigError now, at import,
    rather than a log line in every worker later."""
    if not isinstance(expression, str) or not croniter.is_valid(expression):
        raise ConfigError(f"not a cron expression: {expression!r} (five fields, minute hour "
                          "day month weekday, or six with seconds last)")
    if re.search(r"(^|[\s,])R($|[\s(,])", expression):
        raise ConfigError(f"{expression!r}: a random field (R) names other times on every "
                          "node and at every look; write the times out")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown time zone {timezone!r}") from exc
    unknown = sorted(set(options) - SCHEDULE_OPTIONS)
    if unknown:
        raise ConfigError(f"option(s) a schedule cannot take: {', '.join(unknown)} "
                          f"(it takes {', '.join(sorted(SCHEDULE_OPTIONS))})")
    entry = Schedule(name or f"{task} {expression}", expression, task, payload, timezone,
                     dict(options))
    try:
        entry.next_slot(time.time())
    except CroniterError as exc:
        raise ConfigError(f"{expression!r} names no time that ever comes") from exc
    return entry


def slot_id(name: str, slot: float) -> str:
    """The id of a schedule's job for one slot: a UUIDv7 of the slot's millisecond, its other
    74 bits from a hash of the schedule's name and the slot, the same on every node."""
    ms = round(slot * 1000)
    digest = int.from_bytes(hashlib.sha256(f"{name}\n{ms}".encode()).digest()[:10])
    rand_a, rand_b = digest >> 68 & 0xFFF, digest & (1 << 62) - 1
    value = ms << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


class Scheduler:
    """Enqueues the due slots of an app's schedules. One per worker; run_once at every slot
    (Maintenance does), or after advancing a FakeClock in tests."""

    def __init__(self, app: Conveyor, clock: Clock, misfire: float = MISFIRE) -> None:
        self.app = app
        self.clock = clock
        self.misfire = misfire
        self._done: dict[str, float] = {}  # per schedule: the last slot enqueued (or found)

    def check(self) -> None:
        """Prepare each schedule's job once (nothing is stored): an unknown task or a payload
        its schema refuses is an error when the worker starts, not a warning every slot."""
        for entry in self.app.schedules.values():
            try:
                self.app.preparer.one(entry.task, entry.payload, entry.options,
                                      job_id=slot_id(entry.name, 0.0))
            except ConveyorError as exc:
                raise ConfigError(f"cron schedule {entry.name!r}: {exc}") from exc

    def due(self, now: float, states: Mapping[str, ScheduleState] | None = None
            ) -> list[tuple[Schedule, float]]:
        """The latest due slot of each schedule. A paused one (in `states`, the store's) has
        none; a resumed one none from before it was resumed."""
        out: list[tuple[Schedule, float]] = []
        for entry in self.app.schedules.values():
            state = (states or {}).get(entry.name)
            if state is not None and state.paused:
                continue
            after = max(self._done.get(entry.name, now - self.misfire), now - self.misfire,
                        state.changed_at if state is not None else now - self.misfire)
            latest = deque(entry.slots(after, now), maxlen=1)  # coalesced: the latest only
            out.extend((entry, slot) for slot in latest)
        return out

    def next_slot(self, now: float) -> float | None:
        """When the earliest schedule next falls due (None without schedules)."""
        return min((entry.next_slot(now) for entry in self.app.schedules.values()),
                   default=None)

    async def run_once(self) -> int:
        """Enqueue every due slot; returns how many jobs this node stored (the others were
        duplicates: another node was first). A slot whose enqueue fails is logged and tried
        again at the next pass, while it is within `misfire`; the other schedules go on."""
        if not self.app.schedules:
            return 0
        try:  # every node reads the pauses at every pass: a pause holds cluster-wide
            states = await self.app.store.schedule_states()
        except Exception as exc:  # unknown pauses: enqueue nothing rather than ignore one
            log.warning("cron: the schedules' pauses cannot be read; no slot this pass: %s",
                        exc)
            return 0
        stored = 0
        for entry, slot in self.due(self.clock.now(), states):
            try:
                result = await self.enqueue(entry, slot)
            except Exception as exc:
                log.warning("cron %s: the slot of %s is not enqueued yet: %s", entry.name,
                            self._when(entry, slot), exc)
                continue
            self._done[entry.name] = slot
            if not result.duplicate:
                stored += 1
                log.info("cron %s: enqueued %s for %s", entry.name, result.id,
                         self._when(entry, slot))
        return stored

    async def enqueue(self, entry: Schedule, slot: float) -> EnqueueResult:
        """The slot's job, straight to the store (a spool would forward a stale slot late)."""
        job_id = slot_id(entry.name, slot)
        new, _ = self.app.preparer.one(entry.task, entry.payload, {
            **entry.options, "run_at": slot, "idempotency_key": f"cron:{job_id}"}, job_id=job_id)
        [result] = await self.app.store.enqueue_many([new], self.clock.store_now())
        return result

    @staticmethod
    def _when(entry: Schedule, slot: float) -> str:
        return datetime.fromtimestamp(slot, ZoneInfo(entry.timezone)).isoformat()
