"""Limits per key: one running job per customer, 10 starts a minute per API account.

    @app.task(key=KeyLimit("payload.customer_id", concurrency=1))
    @app.task(key=KeyLimit("tenant", rate="10/min", strategy="drop"))
    @app.task(key=KeyLimit(lambda payload: payload["account"].lower(), concurrency=2))

The key is computed when a job is enqueued, by the producer that has the task's code, and
stored with the job (`limit_key`): "tenant" (the job's tenant), "payload.a.b" (a field of the
validated payload; a number becomes its text), or a callable taking the payload as stored
(a dict) and returning a string. A producer without the task's code (enqueue by name, the
HTTP API of a process that does not import the task) stores no key: such a job is held only
by its queue's and task's own limits.

Each key of the task gets the caps (concurrency and rate count as model.py says, per key) and
keys take turns: a claim serves the keys in round-robin order (the key served longest ago
first), so a key with 10 waiting jobs never waits behind a key with 100,000. A key at its
limit is parked in its own row (conveyor_limit_keys) until it may have room again, so a claim
never reads the jobs of keys that cannot start one.

A task may also slow one key down: `raise RateLimited(retry_in=30, slow="key")` (the
service answered 429 for this customer) snoozes the job and lets no job of its key start on
any worker for 30 s; other keys go on. The end is kept in the key's row (`slowed_until`);
a claim that reads the key before then parks it again until that time.

A strategy says what becomes of a new job whose key is at its limit:

- "queue" (the default): it waits its turn, like any other job.
- "drop": it is not stored; enqueue answers with `dropped=True` (state cancelled, reason
  "dropped: key at its limit"). A key is at its limit for a new job when its waiting and
  running jobs reach the key's concurrency, or its waiting jobs and starts in the window
  reach the key's rate.
- "debounce": it is stored and every older waiting (queued or scheduled) job of the same key
  is cancelled with the reason "superseded by <new id>"; running ones go on. The key keeps
  only its newest waiting job, whatever the caps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..errors import PayloadInvalid
from ..job import NewJob
from .model import Limit, allowance

KEY_MAX = 255  # characters of a computed key
KEYS_PER_CLAIM = 32  # at least this many ready keys are read per claim
RECHECK = 1.0  # seconds: a key whose queued jobs this claimer cannot take is looked at again
DROPPED = "dropped: key at its limit"


@dataclass(frozen=True, slots=True)
class KeyLimit:
    """A task's limit per key: how the key is computed and what each key may do.

    >>> KeyLimit("payload.customer_id", concurrency=1).limit("sync").describe()
    'per key: concurrency 1'
    """

    key: str | Callable[[Any], Any]
    concurrency: int | None = None
    rate: str | None = None
    strategy: str = "queue"

    def __post_init__(self) -> None:
        if isinstance(self.key, str):
            if self.key != "tenant" and not (self.key.startswith("payload.")
                                             and all(self.key.split(".")[1:])):
                raise ValueError('a key is "tenant", "payload.FIELD[.FIELD...]" or a '
                                 f"function of the payload, not {self.key!r}")
        elif not callable(self.key):
            raise ValueError("a key is a string or a function of the payload")
        self.limit("task")  # the caps and the strategy, checked now

    def limit(self, task: str) -> Limit:
        """The per-key limit row this declares for `task` (it may have no caps)."""
        from .control import rate_caps

        count, period = rate_caps(self.rate)
        return Limit("key", task, self.concurrency, count, period, "code", self.strategy)

    def of(self, task: str, body: Any, tenant: str | None) -> str | None:
        """The key of one job; bad or missing input raises PayloadInvalid naming it."""
        spec = self.key
        if callable(spec):
            value = spec(body)
        elif spec == "tenant":
            value = tenant
        else:
            value = body
            for part in spec.split(".")[1:]:
                value = value.get(part) if isinstance(value, dict) else None
        if value is None and spec == "tenant":
            return None  # a job with no tenant has no key: only its task's own limits hold
        if isinstance(value, bool) or not isinstance(value, str | int) or \
                not 0 < len(str(value)) <= KEY_MAX:
            where = spec if isinstance(spec, str) else "the key function"
            raise PayloadInvalid(task, [{"field": where if isinstance(spec, str) else "(key)",
                                         "message": f"{where} must give a string or whole "
                                                    f"number of 1 to {KEY_MAX} characters, "
                                                    f"not {value!r}",
                                         "type": "limit_key"}])
        return str(value)


class KeyUse(NamedTuple):
    """One job's key and that key's use: running jobs (live leases), starts kept, and the
    end of a slow-down (RateLimited(..., slow="key")), if any."""

    key: str
    running: int
    starts: list[float]
    slowed_until: float | None = None

    def holding(self, limit: Limit, now: float) -> str | None:
        """Which of the key's caps holds its jobs back now, in words; None when none.

        >>> KeyUse("acme", 0, [], slowed_until=130.0).holding(Limit("key", "sync"), 100.0)
        "each key of task 'sync': key 'acme' slowed down for 30 s more (RateLimited)"
        """
        if self.slowed_until is not None and self.slowed_until > now:
            return (f"each key of task {limit.name!r}: key {self.key!r} slowed down for "
                    f"{self.slowed_until - now:.0f} s more (RateLimited)")
        started = len(in_window(self.starts, limit, now))
        if allowance(limit, self.running, started) > 0:
            return None
        return (f"each key of task {limit.name!r}: key {self.key!r} at its limit "
                f"({limit.describe().removeprefix('per key: ')}; {self.running} running, "
                f"{started} started in the window)")


@dataclass(slots=True)
class KeyState:
    """One key's row as a claim reads it (locked), with its use counted from the jobs."""

    task: str
    key: str
    turn: float
    starts: list[float]  # its starts in the window, oldest first
    running: int  # running jobs with live leases
    lease_min: float | None  # the first lease of its running jobs to run out (or that ran
    # out: a dead worker's job, which the rescue puts back in the queue)
    next_run: float | None  # its first scheduled job's run_at
    queued: int  # queued jobs, counted up to room + 1
    next_queue: str | None = None  # the queue of its next queued job
    slowed_until: float | None = None  # RateLimited(..., slow="key"): no starts before
    room: int = 0
    found: int = 0  # candidates read for it
    taken: int = 0


@dataclass(frozen=True, slots=True)
class KeyChange:
    """What a claim writes back to a key's row; `delete` when the key has no jobs left."""

    task: str
    key: str
    turn: float
    starts: list[float]
    parked_until: float | None
    at_limit: bool
    delete: bool = False
    queue: str | None = None  # its next job is in another queue: claims from that one read it


def in_window(starts: Iterable[float], limit: Limit, now: float) -> list[float]:
    if limit.period is None:
        return []
    return sorted(t for t in starts if t > now - limit.period)


def rooms(states: Sequence[KeyState], limits: dict[str, Limit], now: float,
          wanted: int) -> None:
    """Each key's room now (0: at its limit), capped at what the claim wants."""
    for state in states:
        limit = limits[state.task]
        state.starts = in_window(state.starts, limit, now)
        state.room = 0 if slowed(state, now) else \
            min(wanted, allowance(limit, state.running, len(state.starts)))


def slowed(state: KeyState, now: float) -> bool:
    """Is the key slowed down now (RateLimited(..., slow="key"))?"""
    return state.slowed_until is not None and state.slowed_until > now


def round_robin(candidates: Iterable[tuple[Any, ...]], states: dict[tuple[str, str], KeyState]
                ) -> list[tuple[Any, ...]]:
    """Keyed candidates (id, task, queue, priority, run_at, key), in the order a round robin
    serves them: every key's first job (the key served longest ago first), then every key's
    second, and so on; priority first."""
    seen: dict[tuple[str, str], int] = {}
    ranked = []
    for candidate in candidates:
        name = (candidate[1], candidate[5])
        rank = seen.get(name, 0)
        seen[name] = rank + 1
        state = states[name]
        state.found += 1
        ranked.append(((-candidate[3], rank, state.turn, state.key), candidate))
    ranked.sort(key=lambda pair: pair[0])
    return [candidate for _, candidate in ranked]


def changes(states: Iterable[KeyState], limits: dict[str, Limit], now: float,
            lease_for: float, served: dict[tuple[str, str], int],
            queues: Sequence[str]) -> list[KeyChange]:
    """After a claim: each key served moves to the back of the round; a key at its limit is
    parked until it may have room (a rate's oldest start leaves the window; a running job's
    lease runs out, unless a settle unparks it first); a key with nothing left to claim
    waits for its next scheduled job or running job, or is deleted. `served`: each key
    taken from, by the position of its first job in the claim; `queues`: the claim's."""
    out = []
    for state in states:
        limit = limits[state.task]
        running = state.running + state.taken
        starts = in_window(state.starts + [now] * state.taken, limit, now) \
            if limit.rate is not None else []
        leases = [x for x in (state.lease_min, now + lease_for if state.taken else None)
                  if x is not None]
        lease_min = min(leases) if leases else None
        turn = now + served.get((state.task, state.key), 0) * 1e-6 if state.taken \
            else state.turn  # to the back of the round, in the order served
        if slowed(state, now) and state.slowed_until is not None:  # parked until its end
            out.append(KeyChange(state.task, state.key, turn, starts, state.slowed_until, True))
        elif allowance(limit, running, len(starts)) <= 0:
            frees = [lease_min if lease_min and lease_min > now else now + RECHECK] \
                if limit.concurrency is not None and running >= limit.concurrency else []
            if limit.rate is not None and len(starts) >= limit.rate and limit.period:
                frees.append(starts[len(starts) - limit.rate] + limit.period)
            out.append(KeyChange(state.task, state.key, turn, starts,
                                 max(frees or [now + RECHECK]), True))
        elif state.found < state.room and state.queued <= state.found == state.taken:
            wake = [t for t in (state.next_run, lease_min) if t is not None]
            until = min(wake) if wake else None  # past: its promotion or rescue is due
            out.append(KeyChange(state.task, state.key, turn, starts,
                                 None if until is None else until if until > now
                                 else now + RECHECK, False, delete=not wake))
        elif state.found < state.room and state.found == state.taken:
            # queued jobs this claimer cannot take: in a queue it does not claim from (the
            # key moves there, ready), or in a paused queue, or past their TTL (a second)
            moved = state.next_queue if state.next_queue not in queues else None
            out.append(KeyChange(state.task, state.key, turn, starts,
                                 None if moved else now + RECHECK, False, queue=moved))
        else:
            out.append(KeyChange(state.task, state.key, turn, starts, None, False))
    return out


def under_drop(jobs: Iterable[NewJob], limits: dict[str, Limit]
               ) -> tuple[set[str], dict[tuple[str, str], list[str]]]:
    """The ids stored whatever their key's use, and the others ("drop"), by key."""
    wanted: dict[tuple[str, str], list[str]] = {}
    kept = set()
    for job in jobs:
        limit = limits.get(job.task)
        if job.limit_key is None or limit is None or limit.strategy != "drop":
            kept.add(job.id)
        else:
            wanted.setdefault((job.task, job.limit_key), []).append(job.id)
    return kept, wanted


def key_queues(jobs: Iterable[NewJob]) -> dict[tuple[str, str], str]:
    """Each key of a batch and the queue of its last job (where its key row points)."""
    return {(job.task, job.limit_key): job.queue for job in jobs if job.limit_key is not None}


def newest_debounced(stored: Iterable[NewJob], limits: dict[str, Limit]
                     ) -> dict[tuple[str, str], str]:
    """Under "debounce": the job each key keeps (a batch's last), by key."""
    return {(job.task, job.limit_key): job.id for job in stored
            if job.limit_key is not None and job.task in limits
            and limits[job.task].strategy == "debounce"}


def count_taken(states: dict[tuple[str, str], KeyState],
                taken: Iterable[tuple[Any, ...]]) -> dict[tuple[str, str], int]:
    """Add each taken (id, task, queue, key) to its key's count; returns the keys served,
    by the position of their first job in the claim (changes' `served`)."""
    served: dict[tuple[str, str], int] = {}
    for _, task, _, key in taken:
        if key is not None:
            states[(task, key)].taken += 1
            served.setdefault((task, key), len(served))
    return served


def admit(limit: Limit, waiting: int, running: int, started: int, count: int) -> int:
    """Under "drop": how many of `count` new jobs of one key are stored (the rest dropped)."""
    taken = 0
    for _ in range(count):
        if limit.concurrency is not None and waiting + running >= limit.concurrency:
            break
        if limit.rate is not None and waiting + started >= limit.rate:
            break
        waiting += 1
        taken += 1
    return taken
