"""Cap grants: how the workers share a queue's or a task's concurrency cap, and still prefetch.

A cap counts claimed jobs when it has to (limits/model.py), and a worker claims its free slots
plus a prefetch, so a cap of 20 used to hold the jobs *in flight* to 20: two workers of 10
slots, each holding 10 running and 10 prefetched, could not both be full (the unlimited drain
holds 40; bench/results/2026-12-07b-limit20-inflight.md). Instead each worker that claims
under a cap holds a GRANT of slots, leased like a job and renewed about every second:

- it starts at most its grant's slots of that cap's jobs at once (worker/grants.py), and may
  claim more ahead: a prefetched job is claimed, not started, and does not count;
- the store books a grant under the limit's own lock (SQLite: the write transaction;
  PostgreSQL: the limit row FOR UPDATE, as the claim), so that at every instant

      live grants' booked slots + jobs claimed by workers without a live grant <= the cap

  ("booked": what the holder may have started until its next renewal, `decide`). A claim by
  a worker without a grant (Store.claim called directly, an older release, a worker before
  its first grant) goes the counted way and counts every live grant's booked slots as used;
  a grant counts those workers' claimed jobs (running or prefetched) as used.
- Fair shares: every live grant row, of 0 slots too (a worker that wants slots of a cap fully
  granted records its demand so), takes part in a max-min fair split of the cap (`fair_shares`,
  by the slots each wants). A holder above its share is told a smaller grant at its next
  renewal and starts nothing more until its running jobs are below it; the slots it gives
  back are booked to the others at their next renewals. Renewals come every GRANT_RENEW
  seconds, GRANT_SOON while a grant is below its share or giving slots back, so a second
  worker that starts has its share within a second or so.
- A grant lasts the job lease (`lease_for`) from its last renewal: a SIGKILLed worker's grant
  frees when its jobs do (about). Until then its claimed jobs whose leases are live count
  as claimed by a worker without a grant: never less than it may run. A worker that cannot
  renew (store unreachable) stops starting that cap's jobs when the grant's end by its own
  clock, less a margin, passes.
- A holder claims at most HOLDER_AHEAD times its share, less what it holds already, so a
  worker with a small grant does not take the queue's jobs away from the others.

- A cap changed at run time: each holder renews at once on the change's wake-up (else within
  GRANT_RENEW) and is told its new grant; under a lowered cap it starts nothing more until it
  runs below it (the jobs started under the old cap run on, as before grants).
- A task's cap is granted to the workers that hold the task's jobs, now or within seconds
  (renew_grants `tasks`: worker/grants.tasks_wanted), not to every worker whose app has the
  task: one whose queues never carry the task would take a share it could never use;
  a worker takes a queue's cap's grant when it claims from the queue.

Rate limits and per-key limits are not granted: they count claims as before.

Example: cap 20, worker A (10 slots) alone: A is granted 10 (it wants no more than its slots).
Worker B (10 slots) starts: B's first renewal books B 10 (20 - 10 free), and each runs 10 and
holds 10 prefetched. Cap 12 instead: A alone is granted 10; B's first renewal finds 2 free and
a fair share of 6: B is booked 2 (its demand recorded); A's next renewal tells A 6 (booked 10
until A confirms it runs no more than 6); A's renewal after that books 6; B's next one books 6.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .model import LimitUsage

GRANT_RENEW = 1.0  # seconds between a worker's renewals of its grants, when settled
GRANT_SOON = 0.2  # ... while a grant is 0, below its fair share or giving slots back
HOLDER_AHEAD = 2  # a holder claims at most this many times its share (its running + prefetch)
GRANTED = ("queue", "task")  # the kinds of limit whose concurrency is granted


@dataclass(frozen=True, slots=True)
class GrantAsk:
    """What a worker says of one of its grants when it renews: `in_force`, the most it may
    start until the answer arrives (0 when its grant ran out by its own clock); `started`,
    how many of the cap's jobs it runs now."""

    kind: str
    name: str
    in_force: int
    started: int


@dataclass(frozen=True, slots=True)
class Grant:
    """A worker's grant under one cap, as the store answered a renewal. `slots`: how many of
    the cap's jobs it may run at once from now on; `booked`: what the store counts for it
    (more than `slots` while it gives slots back); `fair`: its fair share."""

    kind: str
    name: str
    cap: int
    slots: int
    booked: int
    fair: int
    expires_at: float

    @property
    def settled(self) -> bool:
        """Nothing to do at the next renewal but extend it: not giving slots back, not below
        its fair share, not shut out (a grant of 0 waits for slots to free)."""
        return self.booked == self.slots and self.slots >= self.fair and self.slots > 0


@dataclass(frozen=True, slots=True)
class GrantRow:
    """Another worker's live grant under a cap, as the store keeps it."""

    worker_id: str
    booked: int
    wanted: int


def fair_shares(available: int, wanted: Mapping[str, int]) -> dict[str, int]:
    """A max-min fair split of `available` slots among workers wanting `wanted` each; the
    slots left over from an even split go one each in worker id order.

    >>> fair_shares(20, {"a": 10, "b": 10, "c": 3})
    {'a': 9, 'b': 8, 'c': 3}
    >>> fair_shares(1, {"b": 10, "a": 10})
    {'a': 1, 'b': 0}
    """
    shares = dict.fromkeys(sorted(wanted), 0)
    left = max(available, 0)
    hungry = [w for w in shares if wanted[w] > 0]
    while left > 0 and hungry:
        each, extra = divmod(left, len(hungry))
        for index, worker in enumerate(hungry):
            give = min(wanted[worker] - shares[worker], each + (1 if index < extra else 0))
            shares[worker] += give
            left -= give
        hungry = [w for w in hungry if shares[w] < wanted[w]]
        if each == 0 and extra == 0:
            break
    return shares


def decide(cap: int, claimed_outside: int, others: Sequence[GrantRow], worker_id: str,
           wanted: int, ask: GrantAsk) -> tuple[int, int, int]:
    """One renewal under the limit's lock: (slots to run from now, slots booked, fair share).

    `claimed_outside`: the cap's jobs claimed by workers with no live grant, this one left
    out (what it holds is in `ask`). The grant may grow into what no one has booked, up to
    its fair share; the booked slots cover what the worker may run until its next renewal:
    the new grant, what it may start before this answer reaches it (`ask.in_force`), and
    what it runs now (`ask.started`): never more than before, unless the grant grows.

    >>> decide(20, 0, [GrantRow("a", 20, 10)], "b", 10, GrantAsk("queue", "q", 0, 0))
    (0, 0, 10)
    >>> decide(20, 0, [GrantRow("b", 0, 10)], "a", 10, GrantAsk("queue", "q", 20, 20))
    (10, 20, 10)
    """
    available = max(cap - claimed_outside, 0)
    shares = fair_shares(available, {**{r.worker_id: r.wanted for r in others},
                                     worker_id: wanted})
    free = available - sum(r.booked for r in others)
    slots = max(0, min(shares[worker_id], free))
    return slots, max(slots, ask.in_force, ask.started), shares[worker_id]


def with_grants(usages: Iterable[LimitUsage], grants: Iterable[Sequence[Any]],
                ahead: Mapping[str, int]) -> list[LimitUsage]:
    """The operator's view of caps (Store.limits): each queue's or task's `running` without
    the jobs held prefetched (`ahead`: live workers' by queue; a task's are not reported, so
    its `running` stays every claimed job), `claimed` with them, and its live grants
    (`grants`: rows of kind, name, worker id, booked slots)."""
    found: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for kind, name, worker, slots in grants:
        found.setdefault((kind, name), []).append((str(worker), int(slots)))
    out = []
    for usage in usages:
        limit = usage.limit
        if limit.kind not in GRANTED:
            out.append(usage)
            continue
        held = found.get((limit.kind, limit.name), [])
        prefetched = ahead.get(limit.name, 0) if limit.kind == "queue" else 0
        out.append(replace(usage, running=max(0, usage.running - prefetched),
                           claimed=usage.running, grants=tuple(held),
                           granted=sum(s for _, s in held) if held else None))
    return out
