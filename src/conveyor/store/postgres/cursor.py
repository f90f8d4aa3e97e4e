"""Claim cursors: claims that stay fast while a long transaction keeps dead rows around.

Every claim leaves a dead entry in the claim index (the job's 'queued' row version), and the
next claim walks from the front of the queue's index range, past all of them, visiting each
one's heap row to learn that it is dead. Vacuum normally removes them within seconds; but a
transaction held open anywhere in the database (a report, a stuck connection "idle in
transaction") stops vacuum from removing anything that died after it began, and claims get
slower with every job processed: the bloat case that hurts every PostgreSQL queue.

So a claimer remembers, for each of its queues, where its last claim there ended. While
full claims are slow (over SLOW seconds), it continues from there instead (CLAIM_QUEUE_AFTER,
CLAIM_QUEUES_AFTER: same priority, after the last claimed run_at and id), which starts each
index scan past the dead entries.
A full claim still runs whenever the continuation finds nothing, at least every FULL_EVERY
seconds, and at once after a wake-up that says jobs were made claimable that may sort before
a cursor (a priority, a run_at in the past; a promoted, rescued, requeued or released job:
BEHIND). When full claims are fast again, every claim is a full one. Continuing depends on
those wake-ups, so a store that nobody listens on (store.listen) always makes full claims:
its claims keep the exact claim order however slow they are.

A claimer on every queue (`*`) learns the queue names from the wake-ups and from what it
claims, and claims from those queues as a claimer on them does (so it gets cursors too).
Finding the queues that have jobs (CLAIM_ANY, a skip scan through the claim index) costs a
descent per queue, and in a churning table a walk past each queue's dead entries. CLAIM_ANY
still runs when the known queues have nothing, at least every FULL_EVERY seconds, after a
listener reconnect ("*"), and when more than MAX_KNOWN queues are known; a queue is
forgotten FORGET_AFTER seconds after it was last seen.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from . import queries as q

Rows = list[tuple[Any, ...]]
Fetch = Callable[[str, dict[str, Any]], Awaitable[Rows]]  # a template, its params: its rows
# how long a full claim that began at time.monotonic() `began` took, in seconds
Timer = Callable[[float], float]

SLOW = 0.005       # seconds: a full claim slower than this turns continuing on
FULL_EVERY = 5.0   # seconds: the longest a job sorting before a cursor waits if its wake-up
                   # was lost
MAX_KNOWN = 32     # queues a claimer on every queue names in its claims, at most
FORGET_AFTER = 60.0  # seconds since a queue was last seen in a wake-up or a claimed job
BEHIND = "\n"      # leads a wake-up for jobs that may sort before cursors (no queue name can
                   # hold a newline): the next claim of that queue is a full one


@dataclass(slots=True)
class ClaimCursor:
    priority: int = 0
    run_at: float = 0.0
    job_id: str = ""
    slow: bool = False        # the last full claim took longer than SLOW
    full_at: float = 0.0      # time.monotonic() of the last full claim
    rewound_at: float = -1.0  # time.monotonic() of the last rewind

    def continues(self) -> bool:
        """Continue after the cursor instead of a full claim? A queue nothing was claimed
        from yet continues from the start of priority 0 (jobs of other priorities announce
        themselves as BEHIND)."""
        return self.slow and time.monotonic() - self.full_at < FULL_EVERY

    def params(self) -> dict[str, Any]:
        return {"after_priority": self.priority, "after_run_at": self.run_at,
                "after_id": self.job_id}

    def moved(self, rows: list[tuple[Any, ...]]) -> None:
        """Claimed rows, in claim order: the cursor moves to the last one."""
        if rows:
            last = rows[-1]
            self.priority, self.run_at, self.job_id = last[9], last[12], last[0]

    def rewind(self) -> None:
        """Make the next claim a full one."""
        self.full_at, self.rewound_at = 0.0, time.monotonic()

    def timed_full(self, began: float, took: float) -> None:
        """A full claim that began at `began` has ended, after `took` seconds. A rewind while
        it was in flight still holds: the jobs it announced may have come after the claim's
        snapshot."""
        now = time.monotonic()
        self.slow = took > SLOW
        self.full_at = 0.0 if self.rewound_at >= began else now


def since(began: float) -> float:
    """A claim's time as its caller saw it: its round trip."""
    return time.monotonic() - began


class Cursors:
    """One store's claim cursors, by (worker id, queue), and the claims that use them."""

    def __init__(self) -> None:
        self._cursors: dict[tuple[str, str], ClaimCursor] = {}
        self.listeners = 0  # wake-up listeners on this store: cursors continue only with one
        self.known: dict[str, float] = {}  # queue: time.monotonic() it was last seen
        self._any_at = 0.0                 # time.monotonic() of the last CLAIM_ANY

    async def claim_queue(self, fetch: Fetch, params: dict[str, Any], worker_id: str,
                          queue: str, timer: Timer = since) -> Rows:
        """A full claim from one queue, or while full claims are slow a continuation."""
        cursor = self._cursor(worker_id, queue)
        if self.listeners and cursor.continues():
            rows = in_claim_order(await fetch(q.CLAIM_QUEUE_AFTER,
                                              {**params, **cursor.params()}))
            if rows:
                cursor.moved(rows)
                return rows
        began = time.monotonic()
        rows = in_claim_order(await fetch(q.CLAIM_QUEUE, params))
        cursor.timed_full(began, timer(began))
        cursor.moved(rows)
        return rows

    async def claim_queues(self, fetch: Fetch, params: dict[str, Any], worker_id: str,
                           queues: list[str], timer: Timer = since) -> Rows:
        """The same for several queues: continuing when every queue's cursor does; each
        cursor moves to its queue's last claimed job."""
        cursors = [self._cursor(worker_id, queue) for queue in queues]
        if self.listeners and all(cursor.continues() for cursor in cursors):
            rows = in_claim_order(await fetch(q.CLAIM_QUEUES_AFTER, {
                **params, "after_priorities": [c.priority for c in cursors],
                "after_run_ats": [c.run_at for c in cursors],
                "after_ids": [c.job_id for c in cursors]}))
            if rows:
                self._move(worker_id, rows)
                return rows
        began = time.monotonic()
        rows = in_claim_order(await fetch(q.CLAIM_QUEUES, params))
        took = timer(began)
        for cursor in cursors:
            cursor.timed_full(began, took)
        self._move(worker_id, rows)
        return rows

    async def claim_any(self, fetch: Fetch, params: dict[str, Any], worker_id: str,
                        timer: Timer = since) -> Rows:
        """A claim from every queue: from the queues known to have had jobs lately while
        this store listens, else (and when those have none) a CLAIM_ANY that finds them."""
        now = time.monotonic()
        known = self._known(now)
        if (self.listeners and known and len(known) <= MAX_KNOWN
                and now - self._any_at < FULL_EVERY):
            rows = await (self.claim_queue(fetch, {**params, "queue": known[0]}, worker_id,
                                           known[0], timer) if len(known) == 1 else
                          self.claim_queues(fetch, {**params, "queues": known}, worker_id,
                                            known, timer))
            if rows:
                self._seen(rows)  # a long backlog stays known without new wake-ups
                return rows
        rows = in_claim_order(await fetch(q.CLAIM_ANY, params))
        self._any_at = time.monotonic()
        self._seen(rows)
        self._move(worker_id, rows)
        return rows

    def _seen(self, rows: Rows) -> None:
        now = time.monotonic()
        for row in rows:
            self.known[row[2]] = now

    def _known(self, now: float) -> list[str]:
        """The queues seen lately; the others are forgotten, with their cursors."""
        gone = {name for name, seen in self.known.items() if now - seen > FORGET_AFTER}
        if gone:
            for queue in gone:
                del self.known[queue]
            for key in [key for key in self._cursors if key[1] in gone]:
                del self._cursors[key]
        return sorted(self.known)

    def _heard(self, queue: str) -> None:
        """A wake-up named `queue`. A store whose listeners hear many queues (a queue per
        tenant, say) remembers at most a few times MAX_KNOWN: past MAX_KNOWN, claims from
        every queue use CLAIM_ANY anyway."""
        now = time.monotonic()
        if queue not in self.known and len(self.known) >= 4 * MAX_KNOWN:
            self._known(now)
            if len(self.known) >= 4 * MAX_KNOWN:
                return
        self.known[queue] = now

    def woken(self, payload: str) -> str:
        """A wake-up's payload: its queue is known to have jobs; a BEHIND one (or "*", a
        reconnect that may have missed one) makes the next claims of its queue full ones.
        Returns the plain queue name."""
        if payload == "*":
            self._any_at = 0.0
        queue = payload.removeprefix(BEHIND)
        if not queue.startswith("*"):  # "*", SCHEDULED_HINT: not queue names
            self._heard(queue)
        if payload.startswith(BEHIND) or payload == "*":
            for (_, cursor_queue), cursor in self._cursors.items():
                if queue in ("*", cursor_queue):
                    cursor.rewind()
        return queue

    def get(self, worker_id: str, queue: str) -> ClaimCursor | None:
        return self._cursors.get((worker_id, queue))

    def _cursor(self, worker_id: str, queue: str) -> ClaimCursor:
        cursor = self._cursors.get((worker_id, queue))
        if cursor is None:
            cursor = self._cursors[(worker_id, queue)] = ClaimCursor()
        return cursor

    def _move(self, worker_id: str, rows: Rows) -> None:
        by_queue: dict[str, Rows] = {}
        for row in rows:
            by_queue.setdefault(row[2], []).append(row)
        for queue, mine in by_queue.items():
            self._cursor(worker_id, queue).moved(mine)


def in_claim_order(rows: Rows) -> Rows:
    """UPDATE ... RETURNING comes back in no particular order: restore the claim order."""
    return sorted(rows, key=lambda r: (-r[9], r[12], r[0]))
