"""This worker's cap grants (limits/grants.py): renewed from the claim loop, and the gate the
slots ask before they start a job.

    grants = WorkerGrants(renew, lease_for=30.0, wanted=10)
    await grants.renew(slots)       # when grants.due(); the claim loop does it
    grants.allows(job)              # may this claimed job start now?

The renewal runs on the claim loop, between claims, never beside one: a claim that the store
answers as a holder's (it claims ahead of its grant) must find this worker already applying
the grant, and a first renewal books what the worker holds claimed until then (everything
it might start before the answer arrives: limits/grants.py).

A job starts only while, for its queue's and its task's grant, fewer than the grant's slots
of that cap's jobs run here, and the grant has not run out by this host's clock (its lease
from the renewal's sending, less a margin): a worker cut off from the store stops starting
capped jobs before the store gives its slots to others. Jobs held claimed of a cap whose
grant is 0 are given back, so that they never wait on a worker that may not run them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..job import ClaimedJob
from ..limits.grants import GRANT_RENEW, GRANT_SOON, HOLDER_AHEAD, Grant, GrantAsk

if TYPE_CHECKING:
    from .slots import Slots

log = logging.getLogger("conveyor.worker")

TASK_MEMORY = 10.0  # seconds a task seen here keeps its cap's grant asked for (tasks_wanted)
Key = tuple[str, str]  # (kind, name): ("queue", "ai"), ("task", "send_email")
Renew = Callable[[list[GrantAsk]], Awaitable[list[Grant]]]


@dataclass(frozen=True, slots=True)
class Held:
    slots: int
    until: float  # time.monotonic(): the grant's end by this host's clock, less a margin


class WorkerGrants:
    """The grants this worker holds, and how many of each cap's jobs it runs."""

    def __init__(self, renew: Renew, lease_for: float, slots: Slots | None = None) -> None:
        self._renew = renew
        self.slots = slots
        if slots is not None:
            slots.gate = self  # a job starts only if the grants allow
        self.lease_for = lease_for
        self.margin = min(1.0, lease_for / 4)
        self.held: dict[Key, Held] = {}
        self.running: dict[Key, int] = {}  # kept while any grant is held
        self.next_at = 0.0  # time.monotonic() of the next renewal
        self.unsure = False  # the last renewal failed: the store may hold what we never heard
        self.seen: dict[str, float] = {}  # task -> time.monotonic() it was last held here
        self.wanted: dict[Key, int] = {}  # the slots each cap was last asked for (wants)

    @property
    def active(self) -> bool:  # Slots reads `held` itself (three checks a job, no call)
        return bool(self.held)

    def due(self) -> bool:
        return time.monotonic() >= self.next_at

    def until_due(self) -> float:
        return max(0.0, self.next_at - time.monotonic())

    def slots_of(self, key: Key, now: float | None = None) -> int | None:
        """The slots in force for a cap (0 once the grant ran out); None: no grant."""
        held = self.held.get(key)
        if held is None:
            return None
        return held.slots if (time.monotonic() if now is None else now) < held.until else 0

    # --- the gate (Slots) -------------------------------------------------------------------

    def allows(self, job: ClaimedJob) -> bool:
        now = time.monotonic()
        for key in (("queue", job.queue), ("task", job.task)):
            slots = self.slots_of(key, now)
            if slots is not None and self.running.get(key, 0) >= slots:
                return False
        return True

    def started(self, job: ClaimedJob) -> None:
        for key in (("queue", job.queue), ("task", job.task)):
            self.running[key] = self.running.get(key, 0) + 1

    def ended(self, job: ClaimedJob) -> None:
        for key in (("queue", job.queue), ("task", job.task)):
            count = self.running.get(key, 0)
            if count > 0:
                self.running[key] = count - 1

    def claim_room(self, want: int, queues: tuple[str, ...] | None) -> int:
        """At most what the store lets a holder claim (HOLDER_AHEAD times each queue's
        grant, less what it holds), when every queue of this worker has a grant."""
        if self.unsure:  # the store may have booked a grant whose answer was lost: until a
            return 0     # renewal answers, this worker claims nothing (it would not gate it)
        if not self.held or self.slots is None or not queues or \
                not all(("queue", q) in self.held for q in queues):
            return want
        holding = [job.queue for job in self.slots.held_jobs()]
        room = sum(max(0, HOLDER_AHEAD * self.held[("queue", q)].slots - holding.count(q))
                   for q in queues)
        return min(want, room)

    def holding(self) -> dict[str, int] | None:
        """The jobs this worker holds (running and claimed ahead) of each queue it holds a
        grant of, for its claim to carry (ClaimAsk.holding): the store takes them off its
        room to claim ahead rather than count them (a walk of the running index)."""
        if not self.held or self.slots is None or self.unsure:
            return None
        holding = dict.fromkeys((name for kind, name in self.held if kind == "queue"), 0)
        for job in self.slots.held_jobs():
            if job.queue in holding:
                holding[job.queue] += 1
        return holding

    def tasks_wanted(self, registered: Iterable[str] | None) -> list[str]:
        """The tasks whose caps this worker asks a grant of: those whose jobs it holds now or
        held within TASK_MEMORY seconds (of the tasks its app registers). A worker whose
        queues never carry a task's jobs takes no share of its cap (a share it could never
        use would shut out the workers that can: a cap of 2 split 1, 1, 0 between three
        workers of three queues); until its first grant it claims that task's jobs the
        counted way (limits/grants.py), and it keeps the grant while it holds any of them."""
        now = time.monotonic()
        if self.slots is not None:
            for job in self.slots.held_jobs():
                self.seen[job.task] = now
        for task in [t for t, at in self.seen.items() if now - at > TASK_MEMORY]:
            del self.seen[task]
        known = None if registered is None else set(registered)
        return sorted(t for t in self.seen if known is None or t in known)

    def wants(self, concurrency: int, queues: Iterable[str] | None,
              tasks: Iterable[str] | None) -> dict[Key, int]:
        """The slots this worker could use of each cap it may claim under (its grants', its
        queues', its `tasks`'): its concurrency less the slots busy with other queues' jobs
        (a queue's cap) or other tasks' (a task's). Asking each cap for all its slots, a
        worker whose slots another queue keeps busy took a share it could not use, and the
        workers that could were shut out of it. At least 1 while it has a slot at all: what
        runs depends on the grant, so asking 0 while another queue's backlog kept every slot
        busy was granted 0, and the cap's queue was claimed by this worker no more until that
        backlog ran dry (its slots, freed one by one, went on to the next buffered job of the
        busy queue). A cap not named here (queues None: every queue) is asked for `wanted`
        (renew_grants)."""
        running = [] if self.slots is None else [r.job for r in self.slots.running.values()]
        keys = set(self.held) | {("queue", q) for q in queues or ()} | \
            {("task", t) for t in tasks or ()}
        floor = min(1, concurrency)
        self.wanted = {
            (kind, name): max(floor, concurrency - sum(
                1 for job in running if (job.queue if kind == "queue" else job.task) != name))
            for kind, name in keys}
        return self.wanted

    def ask_for(self, concurrency: int, queues: Iterable[str] | None,
                registered: Iterable[str] | None) -> tuple[list[str], dict[Key, int]]:
        """A renewal's `tasks` and `wants` (renew_grants)."""
        tasks = self.tasks_wanted(registered)
        return tasks, self.wants(concurrency, queues, tasks)

    # --- renewing ---------------------------------------------------------------------------

    async def renew_round(self) -> bool:
        """Renew (on the claim loop), give back held jobs of a cap whose grant is 0 here, and
        start what a larger grant allows. True: jobs were given back (releases to write)."""
        assert self.slots is not None
        zero = await self.renew()
        given = bool(zero) and self.slots.give_back(zero) > 0
        self.slots.fill()
        return given

    async def renew(self, running: Iterable[ClaimedJob] | None = None) -> list[Key]:
        """Renew every grant (and take the first of a cap new to this worker); the caps
        whose grant is now 0 (their held jobs are to be given back). `running`: the jobs
        running now, counted again when a first grant arrives (default: the slots' running
        jobs as the answer arrives: a job that ends while the renewal is out is not counted,
        as no `ended` takes it off while no grant is held)."""
        sent = time.monotonic()
        asks = [GrantAsk(kind, name, self.slots_of((kind, name), sent) or 0,
                         self.running.get((kind, name), 0)) for kind, name in self.held]
        try:
            grants = await self._renew(asks)
        except Exception as exc:  # the store is down: the grants run out by our clock
            log.warning("could not renew cap grants: %s", exc)
            self.unsure = True
            self.next_at = sent + GRANT_SOON
            return []
        return self._apply(grants, sent, running)

    def _apply(self, grants: list[Grant], sent: float,
               running: Iterable[ClaimedJob] | None) -> list[Key]:
        first = not self.held
        self.unsure = False
        until = sent + self.lease_for - self.margin
        self.held = {(g.kind, g.name): Held(g.slots, until) for g in grants}
        if not self.held:
            self.running.clear()
        elif first:  # count what runs already: it started before any grant
            self.running.clear()
            if running is None:
                running = [] if self.slots is None else \
                    [r.job for r in self.slots.running.values()]
            for job in running:
                self.started(job)
        unsettled = any(not g.settled and not self._unwanted(g) for g in grants)
        self.next_at = sent + (GRANT_SOON if unsettled else GRANT_RENEW)
        return [(g.kind, g.name) for g in grants if g.slots == 0]

    def _unwanted(self, grant: Grant) -> bool:
        """A grant of 0 this worker asked 0 of (it has no slot: wants asks at least 1
        otherwise): settled, not waiting for slots to free."""
        return grant.booked == 0 and self.wanted.get((grant.kind, grant.name)) == 0
