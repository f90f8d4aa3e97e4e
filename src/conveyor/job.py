"""The job envelope: what is inserted (NewJob), what is stored (Job), and the states.

States (SPEC section 2):

    scheduled -> queued -> running -> completed
                   ^          |
                   +-- scheduled (failed attempt, backoff) / dead (no attempts left)
    cancelled by request; dead also holds expired, discarded and undecodable jobs.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from . import _rng


class JobState(StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    DEAD = "dead"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({JobState.COMPLETED, JobState.DEAD, JobState.CANCELLED})
ALL_STATES = tuple(JobState)


class DeadReason(StrEnum):
    FAILED = "failed"            # attempts exhausted
    EXPIRED = "expired"          # TTL ran out before it could start
    DISCARDED = "discarded"      # the task raised Discard
    UNDECODABLE = "undecodable"  # payload cannot be decrypted or decoded
    WORKER_LOST = "worker_lost"  # its workers kept dying; attempts exhausted by rescues
    UNKNOWN_TASK = "unknown_task"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """One failed attempt."""

    attempt: int
    type: str
    message: str
    traceback: str | None = None
    worker: str | None = None
    host: str | None = None
    at: float | None = None
    sealed: str | None = None  # message and traceback encrypted at rest (sealing.py)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"attempt": self.attempt, "type": self.type, "message": self.message,
                                "traceback": self.traceback, "worker": self.worker,
                                "host": self.host, "at": self.at}
        if self.sealed is not None:  # only as stored: a reader's copy is opened first
            data["sealed"] = self.sealed
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ErrorInfo:
        sealed = data.get("sealed")
        return cls(attempt=int(data.get("attempt", 0)), type=str(data.get("type", "")),
                   message=str(data.get("message", "")), traceback=data.get("traceback"),
                   worker=data.get("worker"), host=data.get("host"), at=data.get("at"),
                   sealed=None if sealed is None else str(sealed))


class NewJob(NamedTuple):
    """A job about to be inserted. `payload` is already encoded (codec.py). A NamedTuple,
    not a dataclass: bulk enqueue builds one per job, and this is the cheapest frozen value."""

    id: str
    task: str
    queue: str
    payload: bytes
    priority: int = 0
    max_attempts: int = 3
    delay: float = 0.0
    run_at: float | None = None       # absolute; wins over delay
    ttl: float | None = None          # seconds from enqueue until it must have started
    tenant: str | None = None
    correlation_id: str | None = None
    idempotency_key: str | None = None
    unique_for: float | None = None   # keep the key reserved this long after it finishes
    batch_id: str | None = None
    parent_id: str | None = None
    sensitive: str | None = None      # the task's sensitive paths (JSON), kept with the job
    limit_key: str | None = None      # its key under a per-key limit (limits/keys.py)


class EnqueueResult(NamedTuple):
    id: str
    duplicate: bool
    state: JobState
    created_at: float
    run_at: float
    dropped: bool = False  # not stored: its key was at its limit under "drop" (limits/keys.py)


@dataclass(slots=True)
class Job:
    """A stored job: a snapshot of the envelope as read back from the store (SPEC section 2).

    Not frozen on purpose: bulk enqueue returns one per job and a frozen dataclass costs five
    times as much to build. Changing a snapshot changes nothing in the store."""

    id: str
    task: str
    queue: str
    payload: Any
    state: JobState
    priority: int = 0
    attempt: int = 0
    max_attempts: int = 3
    tenant: str | None = None
    correlation_id: str | None = None
    idempotency_key: str | None = None
    created_at: float | None = None
    run_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    expires_at: float | None = None
    progress: float | None = None
    progress_step: str | None = None
    result: Any = None
    errors: tuple[ErrorInfo, ...] = ()
    worker_id: str | None = None
    worker_host: str | None = None
    dead_reason: str | None = None
    batch_id: str | None = None
    parent_id: str | None = None
    cancel_requested: bool = False
    duplicate: bool = False
    # The sensitive paths stored with the job ({"card": {"number": True}}), or None (none
    # recorded: no sensitive fields, or stored before they were). Not part of to_dict.
    sensitive: dict[str, Any] | None = None
    dropped: bool = False  # enqueue only: not stored, its key at its limit ("drop")

    @property
    def worker(self) -> dict[str, str | None]:
        return {"id": self.worker_id, "host": self.worker_host}

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def retrying(self) -> bool:
        """Waiting to retry: scheduled again after a failed attempt (next try at run_at)."""
        return self.state == JobState.SCHEDULED and self.attempt > 0

    def to_dict(self) -> dict[str, Any]:
        """The envelope as JSON-ready data (payload as stored in this object)."""
        return {
            "id": self.id, "task": self.task, "queue": self.queue, "payload": self.payload,
            "state": str(self.state), "priority": self.priority, "attempt": self.attempt,
            "max_attempts": self.max_attempts, "tenant": self.tenant,
            "correlation_id": self.correlation_id, "idempotency_key": self.idempotency_key,
            "created_at": self.created_at, "run_at": self.run_at,
            "started_at": self.started_at, "finished_at": self.finished_at,
            "expires_at": self.expires_at, "progress": self.progress,
            "progress_step": self.progress_step, "result": self.result,
            "errors": [e.to_dict() for e in self.errors], "worker": self.worker,
            "dead_reason": self.dead_reason, "batch_id": self.batch_id,
            "parent_id": self.parent_id, "duplicate": self.duplicate,
            "dropped": self.dropped, "retrying": self.retrying,
        }


class JobEvent(NamedTuple):
    """A state change or progress of one job, as the event stream carries it."""

    id: str
    state: str
    queue: str
    task: str
    tenant: str | None
    progress: float | None = None


class Lease(NamedTuple):
    """The fence of one claim: writes apply only while the job still holds this token."""

    job_id: str
    token: int


_tuple_new = tuple.__new__


@dataclass(slots=True, unsafe_hash=True)
class ClaimedJob:
    """What a worker needs to run one claimed job. Treated as a value (never changed after
    it is made; hashable by its fields), but not frozen: a frozen dataclass's __init__ sets
    each of its 14 fields by a call (object.__setattr__), ~6x the plain one's cost, once
    per claimed job (as AttemptRecord, history/records.py)."""

    id: str
    task: str
    queue: str
    payload: bytes
    attempt: int
    max_attempts: int
    token: int
    tenant: str | None = None
    correlation_id: str | None = None
    priority: int = 0
    created_at: float | None = None
    expires_at: float | None = None
    run_at: float | None = None
    # The store's start time of this run (its started_at). A rate-limited claim may book it
    # a little ahead (limits/claiming.claim_time): the worker starts the job no sooner.
    starts_at: float | None = None

    @property
    def lease(self) -> Lease:
        # tuple.__new__, not Lease(...): a NamedTuple's __new__ is a Python function, one
        # call more per job for the same value
        return _tuple_new(Lease, (self.id, self.token))


@dataclass(frozen=True, slots=True)
class JobFilter:
    """What list_jobs selects. Every field is optional; `tenant` also scopes tenant tokens."""

    states: tuple[JobState, ...] = ()
    queue: str | None = None
    task: str | None = None
    tenant: str | None = None
    correlation_id: str | None = None
    idempotency_key: str | None = None
    batch_id: str | None = None
    # jobs waiting to retry (scheduled again after a failed attempt), besides `states`:
    # `states=(queued,), retrying=True` lists queued jobs and jobs waiting to retry
    retrying: bool = False
    # any of these tasks / queues (search.py resolves a name fragment to the names it
    # matches); an exact `task` or `queue` besides them must also be among them
    tasks: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    # only jobs that have failed at least once (an index of them: the error search's
    # candidates)
    with_errors: bool = False


RETRYING = "retrying"  # a view of `scheduled`: scheduled again after a failed attempt


def parse_states(text: str | None) -> tuple[tuple[JobState, ...], bool]:
    """`"queued,retrying"` -> ((QUEUED,), True). Raises ValueError naming what is allowed."""
    states: list[JobState] = []
    retrying = False
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        if item == RETRYING:
            retrying = True
            continue
        try:
            states.append(JobState(item))
        except ValueError:
            raise ValueError(f"state must be among {', '.join([*JobState, RETRYING])}"
                             ) from None
    return tuple(states), retrying


@dataclass(frozen=True, slots=True)
class QueueInfo:
    name: str
    paused: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    oldest_queued_age: float | None = None
    completed_last_minute: int = 0
    # of the queue's running jobs, those its live workers claimed ahead (prefetched) and have
    # not started: counts["running"] leaves them out ("running N (+M claimed)")
    claimed: int = 0


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    id: str
    host: str
    pid: int
    queues: tuple[str, ...]
    concurrency: int
    started_at: float | None = None
    heartbeat_at: float | None = None
    running: int = 0
    # of the leases a heartbeat lists, how many are claimed ahead (prefetched) and not
    # started: the store keeps running = leases - claimed, and claimed
    claimed: int = 0
    # ... and those by queue ({"emails": 3}): the queues' "running N (+M claimed)"
    claimed_queues: dict[str, int] = field(default_factory=dict)


# --- ids ------------------------------------------------------------------------------------


class _IdGenerator:
    """UUIDv7 strings: 48 bits of milliseconds, a per-process counter seeded at random, then
    random bits. Sortable by creation time; unique across processes and hosts. (The one piece
    of module state in the package: like uuid, an id source needs no wiring.)"""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._seq = 0
        self._prefix = ""  # the id text of _last_ms: "xxxxxxxx-xxxx-7"

    def __call__(self) -> str:
        with self._lock:
            return self._next(time.time_ns() // 1_000_000)

    def many(self, count: int) -> list[str]:
        """`count` ids at once (a bulk enqueue's): one clock read, one lock, and the ids that
        share a millisecond made in one loop (what _next does, without its call and checks
        per id)."""
        ms = time.time_ns() // 1_000_000
        ids: list[str] = []
        with self._lock:
            while len(ids) < count:
                ids.append(self._next(ms))  # starts a millisecond, or borrows the next
                run = min(count - len(ids), 0xFFF - self._seq)  # counter values left in it
                if run <= 0:
                    continue
                prefix, seq = self._prefix, self._seq
                for step in range(1, run + 1):
                    tail = ((seq + step) << 64 | 0x8000000000000000
                            | _random_bits(62)).to_bytes(10).hex()
                    ids.append(f"{prefix}{tail[1:4]}-{tail[4:8]}-{tail[8:]}")
                self._seq = seq + run
        return ids

    def _next(self, ms: int) -> str:
        """The id after the last one, at `ms` or later. Caller holds the lock."""
        if ms <= self._last_ms:
            ms = self._last_ms
            self._seq += 1
            if self._seq > 0xFFF:  # counter exhausted in this millisecond: borrow the next
                ms += 1
                self._seq = _random_bits(8)
        else:
            self._seq = _random_bits(8)
        if ms != self._last_ms or not self._prefix:
            self._prefix = f"{ms >> 16:08x}-{ms & 0xFFFF:04x}-7"
        self._last_ms = ms
        # _rng's generator is seeded from os.urandom and reseeded in a forked child.
        # 12 bits of counter, the variant bits (10) and 62 random bits, as 19 hex digits.
        tail = (self._seq << 64 | 0x8000000000000000 | _random_bits(62)).to_bytes(10).hex()
        return f"{self._prefix}{tail[1:4]}-{tail[4:8]}-{tail[8:]}"


_random_bits = _rng.getrandbits
new_id = _IdGenerator()
