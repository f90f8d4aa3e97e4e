"""The part of a limited claim every store shares: which names are limited (a cache each
store keeps), and, inside the claim's transaction, how many of which candidates may start.

A store claims as before while none of the queues it claims from, and no task, has a limit
(the names are re-read at most every REFRESH seconds). A change of limits also sends a
wake-up (store/base.LIMITS_HINT): a store that hears it reads the names again at its next
claim, and its worker claims at once, so a change reaches every worker within the time a
notification takes, not at its next poll.

Otherwise it claims inside one write transaction that holds every limit it reads (SQLite:
the single writer; PostgreSQL: the limit rows FOR UPDATE), counts running jobs and starts in
each window there, and takes candidates while `Budget` has room.

A claim may book its starts a little ahead (`claim_time`): when a queue's or task's rate it
answers to is full now and has room again within BOOK_AHEAD seconds, the claim happens at
that time instead of now. Its jobs' started_at is the booked time, the window counts them
there, and the worker starts them no sooner (ClaimedJob.starts_at). A worker that wakes a
little before a window has room (worker/pacing.py) so starts its jobs at the exact room
time, and each window's starts follow the last window's by exactly the period, not by the
period plus the claims' latency. Still exact: a claim at time t counts every logged start
after t - period, later ones too, so every window holding t holds at most the rate
(whatever order starts are booked in). A claim forgets the starts that left the window by its
own clock, so each store reads that clock once it holds the limits (PostgreSQL after their
row locks, SQLite under the write lock): the claims' clocks then follow their commit order,
and no claim counts a window whose starts a claim with a later clock already forgot. And a
start is forgotten a margin after it leaves its window (FORGET_AFTER: the period again, at
least FORGET_MARGIN), so a claim whose clock reads earlier than the last one's (a host's
clock stepped back, a caller's `now`) still counts every start of its own window.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .model import Limit, LimitUsage

REFRESH = 1.0  # seconds: how stale a store's set of limited names may be
# ... when a worker's grant renewal holding no grant asks whether a cap concerns it: its
# renewal (every GRANT_RENEW seconds) reads the names then, and the claims use what it read
CAPS_FRESH = REFRESH / 2

# How long after it started a rate's start is forgotten (SQL over a limit's `period`, both
# stores): twice the period, and at least the period plus FORGET_MARGIN seconds. Counting
# reads only the window (started_at > now - period), so kept starts cost rows, not answers.
FORGET_MARGIN = 60.0
FORGET_AFTER = ("(CASE WHEN {period} > " + str(FORGET_MARGIN) + " THEN 2 * {period} "
                "ELSE {period} + " + str(FORGET_MARGIN) + " END)")
UNCAPPED = 1 << 30
BOOK_AHEAD = 0.08  # seconds: how far ahead a claim may book its starts (claim_time)
WALK = 256  # claim-index entries a claim reads past its room while keyed jobs may fill them

Candidate = tuple[str, str, str]  # id, task, queue: in claim order


@dataclass(slots=True)
class KeyedClaims:
    """The jobs this store claimed under a key limit, until it settles them. Only their
    settles unpark a key (the settle of any other job frees no key's slot), so a settle
    runs the unpark statement, and on PostgreSQL a transaction, only when one of them ends.

    Bounded: a job never settled here (its worker died; it was rescued) is forgotten, oldest
    first. A key whose unpark is missed that way is looked at again when its parked time
    (the end of a lease, or of a rate's window) is up: later, never wrongly."""

    most: int = 100_000
    ids: dict[str, None] = field(default_factory=dict)  # insertion order: oldest first

    def claimed(self, ids: Iterable[str]) -> None:
        self.ids.update(dict.fromkeys(ids))
        while len(self.ids) > self.most:
            del self.ids[next(iter(self.ids))]

    def ended(self, ids: Iterable[str]) -> list[str]:
        """The ids among these that this store claimed under a key limit (now forgotten).
        With none held (no key limit in use, the common case) `ids` is not even walked."""
        if not self.ids:
            return []
        return [job_id for job_id in ids if self.ids.pop(job_id, 0) is None]


@dataclass(slots=True)
class LimitedNames:
    """The queues and tasks that have a limit, as a store last read them."""

    queues: frozenset[str] = frozenset()
    tasks: frozenset[str] = frozenset()
    keys: frozenset[str] = frozenset()  # tasks with a limit per key (limits/keys.py)
    paced: frozenset[tuple[str, str]] = frozenset()  # (kind, name) with a rate or slow-down
    capped: frozenset[tuple[str, str]] = frozenset()  # (kind, name) with a concurrency cap
    read_at: float = float("-inf")  # time.monotonic()
    # forget()s so far: a read that began before the last one (its rows may predate the
    # change that hinted it) keeps its names but leaves them stale, so the next claim reads
    # again rather than claiming under the old names for another REFRESH
    forgotten: int = 0
    deep_at: float = float("-inf")  # the last unbounded walk (walk, deep_walk)
    keyed_claims: KeyedClaims = field(default_factory=KeyedClaims)

    def stale(self, fresh: float = REFRESH) -> bool:
        return time.monotonic() - self.read_at >= fresh

    def update(self, rows: Iterable[tuple[Any, ...]], began: int | None = None) -> None:
        """From rows of (kind, name), (kind, name, has a rate or slow-down) or (kind, name,
        has a rate or slow-down, has a concurrency cap); a row without the last is capped.
        `began`: `forgotten` when the read of these rows began (None: nothing came between)."""
        rows = list(rows)
        self.paced = frozenset((row[0], row[1]) for row in rows if len(row) > 2 and row[2])
        self.capped = frozenset((row[0], row[1]) for row in rows if len(row) < 4 or row[3])
        self.queues = frozenset(name for kind, name, *_ in rows if kind == "queue")
        self.tasks = frozenset(name for kind, name, *_ in rows if kind == "task")
        self.keys = frozenset(name for kind, name, *_ in rows if kind == "key")
        # fresh first, then stale again if a forget() came since the read began: forget()
        # counts first, then marks stale, so one on another thread (SQLite's listener) is
        # never lost between the check and the mark whichever way the two interleave
        self.read_at = time.monotonic()
        if began is not None and began != self.forgotten:
            self.read_at = float("-inf")

    @staticmethod
    def walk(room: int, keyed: bool) -> int:
        """How far a limited claim reads a queue's claim index for jobs without a key
        limit: all of it (-1) unless some task has one, whose waiting jobs may fill it."""
        return room + WALK if keyed else -1

    def deep_walk(self, walk: int) -> bool:
        """After a bounded walk found too few: read the whole queue now? At most once per
        REFRESH, so jobs behind a wall of keyed jobs wait a second at most."""
        now = time.monotonic()
        if walk < 0 or now - self.deep_at < REFRESH:
            return False
        self.deep_at = now
        return True

    def forget(self) -> None:
        """A limit changed (here, or another process's hint): read them again at the next
        claim, even if a read in flight now ends first."""
        self.forgotten += 1
        self.read_at = float("-inf")

    def paces(self, queues: Sequence[str] | None) -> bool:
        """May a rate or a slow-down hold back a claim from `queues` (None: every queue)?"""
        return any(kind == "task" or queues is None or name in queues
                   for kind, name in self.paced if kind in ("queue", "task"))

    def caps(self, queues: Sequence[str] | None, tasks: Sequence[str] | None) -> bool:
        """Is there a concurrency cap on one of `queues` or of `tasks` (None: every one)?
        Without one a worker holding no grant has none to renew (worker/grants.py)."""
        return any(queues is None or name in queues if kind == "queue" else
                   kind == "task" and (tasks is None or name in tasks)
                   for kind, name in self.capped)

    def touches(self, queues: Sequence[str] | None) -> bool:
        """Must a claim from `queues` (None: every queue) go the limited way?"""
        if self.tasks or self.keys:
            return True  # a limited task's jobs may be in any queue
        if queues is None:
            return bool(self.queues)
        return any(queue in self.queues for queue in queues)


@dataclass(slots=True)
class Budget:
    """Room left under each limit during one claim."""

    queues: dict[str, int] = field(default_factory=dict)
    tasks: dict[str, int] = field(default_factory=dict)
    rated: set[tuple[str, str]] = field(default_factory=set)  # limits that log their starts
    keys: dict[str, Limit] = field(default_factory=dict)  # task -> its per-key caps

    @classmethod
    def of(cls, usages: Iterable[LimitUsage], now: float) -> Budget:
        budget = cls()
        for usage in usages:
            limit = usage.limit
            if limit.kind == "key":
                budget.keys[limit.name] = limit
                continue
            rooms = budget.queues if limit.kind == "queue" else budget.tasks
            rooms[limit.name] = usage.allowance(now)
            if limit.rate is not None:
                budget.rated.add((limit.kind, limit.name))
        return budget

    def queue_room(self, queue: str, wanted: int) -> int:
        return min(wanted, self.queues.get(queue, UNCAPPED))

    def blocked_tasks(self) -> list[str]:
        return sorted(task for task, room in self.tasks.items() if room <= 0)

    def take(self, candidates: Iterable[Candidate], limit: int) -> list[Candidate]:
        """Candidates in claim order, skipping those whose queue or task has no room left."""
        taken: list[Candidate] = []
        for candidate in candidates:
            if len(taken) >= limit:
                break
            _, task, queue = candidate
            if self.queues.get(queue, UNCAPPED) <= 0 or self.tasks.get(task, UNCAPPED) <= 0:
                continue
            for rooms, name in ((self.queues, queue), (self.tasks, task)):
                if name in rooms:
                    rooms[name] -= 1
            taken.append(candidate)
        return taken

    def starts(self, taken: Iterable[Candidate]) -> list[tuple[str, str]]:
        """The (kind, name) start records the taken jobs add to rated limits' windows."""
        out: list[tuple[str, str]] = []
        for _, task, queue in taken:
            out.extend(key for key in (("queue", queue), ("task", task)) if key in self.rated)
        return out


def earliest_room(found: Iterable[tuple[float | None, float | None]]) -> float | None:
    """When a limit held back by its rate (or a slow-down) has room again, the earliest over
    limits. Each of `found` is one limit's (slowed down until, if later than now; when its
    rate's window will have room, if it is full now): the later of the two. None: no rate
    and no slow-down holds anything back now.

    >>> earliest_room([(None, 12.0), (15.0, 11.0), (None, None)])
    12.0
    """
    times = [max(t for t in pair if t is not None) for pair in found
             if any(t is not None for t in pair)]
    return min(times, default=None)


def claim_time(now: float, room_times: Iterable[float | None], keyed: bool) -> float:
    """When a limited claim happens: `now`, or the earliest time within BOOK_AHEAD a full
    rate of the claim has room again (`room_times`: each rate's, as for earliest_room). Never
    ahead when a key limit with a rate answers to the claim (`keyed`): a key forgets the
    starts that left its window at its claim's time, which a claim booked ahead must not
    move (a key's concurrency is no matter: it counts live leases, at either time).

    >>> claim_time(10.0, [10.06, 10.2, None, 9.0], keyed=False)
    10.06
    >>> claim_time(10.0, [10.2], keyed=False), claim_time(10.0, [10.06], keyed=True)
    (10.0, 10.0)
    """
    if keyed:
        return now
    ahead = [t for t in room_times if t is not None and now < t <= now + BOOK_AHEAD]
    return min(ahead, default=now)
