"""The values attempt history is made of: what the worker records per attempt, and what the
analytics reads return. Frozen dataclasses; no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Outcome(StrEnum):
    COMPLETED = "completed"
    RETRIED = "retried"      # failed, another attempt scheduled
    DEAD = "dead"            # failed for good
    CANCELLED = "cancelled"
    SNOOZED = "snoozed"
    LOST = "lost"            # its worker died; rescued by maintenance

    @property
    def failed(self) -> bool:
        return self in (Outcome.RETRIED, Outcome.DEAD, Outcome.LOST)


@dataclass(slots=True)
class AttemptRecord:
    """What a worker measured of one attempt. It travels with the settle item that ends the
    attempt; the store takes the outcome and error type from that item. Treated as a value
    (never changed after it is made), but not frozen: a frozen dataclass's __init__ costs a
    worker 1.5 µs more per job, every job."""

    task: str
    queue: str
    tenant: str | None
    number: int                       # the job's attempt number
    started_at: float
    ended_at: float
    worker_id: str
    host: str
    pid: int
    cpu: float | None = None          # CPU seconds of the attempt (thread or child process)
    rss: int | None = None            # peak resident set, bytes (process or child)
    fingerprint: str | None = None    # of the error, for failed attempts
    # the error as history keeps it: Sensitive values scrubbed, then sealed when keys are set
    error_message: str | None = None
    error_traceback: str | None = None
    error_sealed: str | None = None

    @property
    def duration(self) -> float:
        return max(0.0, self.ended_at - self.started_at)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """[start, end) in epoch seconds; `tenant` scopes every figure (None: all tenants)."""

    start: float
    end: float
    tenant: str | None = None
    task: str | None = None
    queue: str | None = None


@dataclass(frozen=True, slots=True)
class TaskSummary:
    task: str
    queue: str
    counts: dict[str, int] = field(default_factory=dict)   # by Outcome
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    mean: float | None = None
    series: tuple[int, ...] = ()          # attempts per point over the range
    failures: tuple[int, ...] = ()        # failed attempts per point

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def failed(self) -> int:
        return sum(n for name, n in self.counts.items() if Outcome(name).failed)


@dataclass(frozen=True, slots=True)
class ErrorGroup:
    fingerprint: str
    type: str
    message: str                 # the newest message seen (scrubbed)
    count: int
    first_seen: float
    last_seen: float
    tasks: tuple[str, ...]
    sample_job: str
    dead_jobs: int = 0           # dead jobs still stored whose last error is in the group


@dataclass(frozen=True, slots=True)
class WorkerSummary:
    worker_id: str
    host: str | None
    pid: int | None
    attempts: int
    failures: int
    busy: float                  # seconds spent running attempts in the range
    busy_share: float | None     # busy / (range x concurrency), when the worker is known
    cpu: float                   # CPU seconds
    peak_rss: int | None
    throughput: float            # attempts per minute over the range
    running: int = 0             # now, from its last heartbeat
    concurrency: int | None = None
    alive: bool = False
    current: tuple[str, ...] = ()  # tasks it runs now


@dataclass(frozen=True, slots=True)
class AttemptInfo:
    """One stored attempt, as the analytics read it."""

    job_id: str
    attempt: int
    task: str
    queue: str
    tenant: str | None
    worker_id: str | None
    started_at: float
    duration: float
    outcome: str
    cpu: float | None = None
    rss: int | None = None
    host: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    fingerprint: str | None = None
