"""The store interface (DESIGN section 3): semantic, batch-first, fenced.

Every time-dependent method takes `now` (epoch seconds; None = the database's own clock).
Every worker write is fenced by its lease: it applies only while the row is still `running`
with the same lease token, and reports whether it did. A lost lease is a normal outcome.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import orjson

from ..history.records import (
    AttemptInfo,
    AttemptRecord,
    ErrorGroup,
    TaskSummary,
    TimeRange,
    WorkerSummary,
)
from ..job import (
    ClaimedJob,
    EnqueueResult,
    ErrorInfo,
    Job,
    JobEvent,
    JobFilter,
    Lease,
    NewJob,
    QueueInfo,
    WorkerInfo,
)
from ..limits.grants import Grant, GrantAsk
from ..limits.keys import KeyUse
from ..limits.model import Limit, LimitUsage

if TYPE_CHECKING:
    from ..settings import Settings

T = TypeVar("T")

# A wake-up that names no queue: "a scheduled job was added; look at the schedule again".
SCHEDULED_HINT = "*scheduled"
# A wake-up that says "a limit changed": every store that hears it reads its limits again at
# its next claim, and its worker claims at once (so a change applies everywhere within the
# time a notification takes, not at the next poll; limits/claiming.py).
LIMITS_HINT = "*limits"

# --- what a worker writes back: one batch of these per call to `settle` ----------------------
# The four that end an attempt are made once per job: treated as values (never changed once
# the worker's tracker has attached the attempt's record; hashable by their fields), but
# not frozen: a frozen dataclass's __init__ sets each field by object.__setattr__, ~1,300
# instructions a field under callgrind.


@dataclass(slots=True, unsafe_hash=True)
class Complete:
    lease: Lease
    result: bytes | None = None          # JSON
    attempt: AttemptRecord | None = None  # history: written in the same trip


@dataclass(slots=True, unsafe_hash=True)
class Fail:
    lease: Lease
    error: ErrorInfo
    retry_in: float | None = None        # seconds until the next attempt; None: dead
    dead_reason: str = "failed"
    attempt: AttemptRecord | None = None  # history: written in the same trip


@dataclass(slots=True, unsafe_hash=True)
class Snooze:
    lease: Lease
    seconds: float                       # run again this long from now (store clock)
    attempt: AttemptRecord | None = None  # history: written in the same trip


@dataclass(slots=True, unsafe_hash=True)
class Cancelled:
    lease: Lease
    reason: str = "cancelled"
    attempt: AttemptRecord | None = None  # history: written in the same trip


@dataclass(frozen=True, slots=True)
class Release:
    """Give a claimed job back untouched (shutdown): queued again, the attempt not counted."""

    lease: Lease


@dataclass(frozen=True, slots=True)
class Progress:
    lease: Lease
    percent: float
    step: str | None = None


Settle = Complete | Fail | Snooze | Cancelled | Release | Progress


@dataclass(frozen=True, slots=True)
class HeartbeatReply:
    lost: frozenset[str] = frozenset()           # job ids whose lease is gone
    cancel_requested: frozenset[str] = frozenset()
    unknown: tuple[Lease, ...] = ()              # running jobs leased to the worker that it did
                                                 # not list (a hand-off it never heard of)


@dataclass(frozen=True, slots=True)
class Offer:
    """A waiting worker's capacity, offered for hand-off until `lapse` seconds from now (its
    next claim renews the offer); the store counts the jobs it holds against it."""
    slots: int
    lapse: float


@dataclass(frozen=True, slots=True)
class ClaimAsk:
    """A claim carried with a settle (Store.settle_and_claim): up to `limit` jobs of `queues`
    (None: every queue) for `worker_id`, leased for `lease_for` seconds. `holding`: the
    jobs of each queue the worker holds now (running and claimed ahead), as it knows them: a
    holder of a cap's grant claims ahead of it less these (limits/grants.py), and a store
    may take them from here rather than count them (None: it counts)."""
    queues: Sequence[str] | None
    worker_id: str
    limit: int
    lease_for: float
    offer: Offer | None = None
    holding: Mapping[str, int] | None = None


@dataclass(slots=True)
class Exchange:
    """The answer to Store.settle_and_claim. `applied`: settle's answer, item by item (the
    outcomes are written). `jobs`: the claim's. `cut_short`: the claim came back with fewer
    jobs than asked and a concurrency cap it answers to (of one of its queues, or of a task)
    is full: slots free up only when that cap's jobs end, so ask again soon rather than at
    the poll. `claim_failed`: the outcomes were written but the claim failed (no jobs)."""
    applied: list[bool]
    jobs: list[ClaimedJob] = field(default_factory=list)
    cut_short: bool = False
    claim_failed: Exception | None = None


@dataclass(frozen=True, slots=True)
class Capabilities:
    listen_notify: bool
    skip_locked: bool
    max_batch: int
    transactional_enqueue: bool = False


@dataclass(frozen=True, slots=True)
class Sealable:
    """What encryption at rest covers of one job, as stored: key rotation reads these a page
    at a time (scan_sealable) and writes back changed copies (replace_sealable)."""

    id: str
    tenant: str | None
    payload: bytes
    result: bytes | None      # JSON, or a sealed result's envelope
    errors: str               # the JSON array of failed attempts (sealing.py seals each)


@dataclass(frozen=True, slots=True)
class Retention:
    completed: float
    dead: float
    cancelled: float


@dataclass(frozen=True, slots=True)
class JobCount:
    """How many jobs one queue, task and tenant hold in one state (`retrying`: scheduled
    after a failed attempt), as the store keeps it (store/counting.py)."""

    queue: str
    task: str
    tenant: str | None
    state: str
    count: int


@dataclass(frozen=True, slots=True)
class Stats:
    by_state: dict[str, int] = field(default_factory=dict)
    by_queue: dict[str, dict[str, int]] = field(default_factory=dict)
    by_task: dict[str, dict[str, int]] = field(default_factory=dict)
    durations: dict[str, float | None] = field(default_factory=dict)  # p50/p95/p99 seconds
    failure_rate: float | None = None
    retry_success_rate: float | None = None
    completed_last_minute: int = 0
    # running jobs that live workers claimed ahead and have not started: by_state["running"]
    # and by_queue's leave them out (by_task's count them: workers report them by queue)
    claimed: int = 0


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A dashboard sign-in as the store keeps it: never the session id itself, only its
    SHA-256 (`id_hash`), and `token_check`, which binds it to the API token it was opened
    with (web/sessions.py). Live while `checked_at` (the clock the store judged by) is before
    both `idle_expires_at` and `expires_at`."""

    id_hash: str
    token_check: str
    created_at: float
    idle_expires_at: float
    expires_at: float
    checked_at: float


NAMES_DAYS = 30        # the task and queue names of the last 30 days' day rollups ...
NAMES_RECENT = 1000    # ... and of the newest 1,000 jobs (store job_names)


@dataclass(frozen=True, slots=True)
class Names:
    """Task and queue names a reader may know of, sorted (store job_names)."""

    tasks: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()


def names_of(pairs: Sequence[Sequence[Any]], queues: Sequence[str] = ()) -> Names:
    """Names from (task, queue) rows and more queue names."""
    return Names(tuple(sorted({p[0] for p in pairs})),
                 tuple(sorted({p[1] for p in pairs} | set(queues))))


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """A cron schedule's run-time state: paused or not, since `changed_at` (store clock)."""

    paused: bool
    changed_at: float


class Store(Protocol):
    url: str
    inline: bool  # True: the methods never suspend (SQLite), so sync code drives them directly

    @property
    def latest_version(self) -> int:
        """The newest migration this code knows."""
        ...

    # lifecycle
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def release_loop(self) -> None:
        """Let go of what the store holds on the running event loop (its connections), as a
        worker's loop ends; a later call on the loop opens them again."""
        ...

    def capabilities(self) -> Capabilities: ...
    async def migrate(self) -> int: ...
    async def schema_version(self) -> int: ...

    # producing
    async def enqueue_many(self, jobs: Sequence[NewJob], now: float | None = None,
                           tx: Any = None) -> list[EnqueueResult]: ...

    # consuming
    async def claim(self, queues: Sequence[str] | None, worker_id: str, limit: int,
                    lease_for: float, now: float | None = None,
                    offer: Offer | None = None) -> list[ClaimedJob]: ...
    async def heartbeat(self, worker: WorkerInfo, leases: Sequence[Lease], lease_for: float,
                        now: float | None = None) -> HeartbeatReply: ...
    async def settle(self, items: Sequence[Settle], now: float | None = None) -> list[bool]: ...
    # settle, then claim for the slots the settle freed, in one trip to the store: a freed
    # slot of a concurrency cap is taken again by the trip that frees it. Raises when the
    # outcomes were not written (then nothing was claimed).
    async def settle_and_claim(self, items: Sequence[Settle], ask: ClaimAsk,
                               now: float | None = None) -> Exchange: ...
    async def deregister_worker(self, worker_id: str) -> None: ...
    # hand-off (a store may lease a new job to a waiting worker in the enqueue itself): a
    # waiting worker passes claim(offer=its capacity), listens with its id and on_job, and
    # withdraws before it stops; a store without hand-off ignores all three
    async def withdraw_offer(self, worker_id: str) -> None: ...

    # control
    async def cancel(self, ids: Sequence[str], tenant: str | None = None,
                     now: float | None = None) -> dict[str, str]: ...
    # requeue: "queued" for each job it requeued, "already_queued" for one that was queued
    # and is left alone, else the job's state or "not_found"
    async def requeue(self, ids: Sequence[str], tenant: str | None = None,
                      now: float | None = None) -> dict[str, str]: ...
    async def discard(self, ids: Sequence[str], tenant: str | None = None) -> int: ...
    async def pause(self, queue: str) -> None: ...
    async def resume(self, queue: str) -> None: ...

    # flow control (limits/model.py): cluster-wide caps per queue and per task, applied by
    # `claim` in its own transaction; an operator's limit (set_limit) is never overridden by
    # a declaration in code (declare_limits: writes only what differs); no caps removes it
    async def set_limit(self, limit: Limit, now: float | None = None) -> None: ...
    async def declare_limits(self, limits: Sequence[Limit],
                             now: float | None = None) -> None: ...
    async def slow_down(self, kind: str, name: str, seconds: float,
                        now: float | None = None) -> bool: ...
    # RateLimited(..., slow="key"): no job of this job's key starts before now + seconds;
    # False when the job has no key (limits/keys.py)
    async def slow_key(self, job_id: str, seconds: float, now: float | None = None) -> bool: ...
    async def limits(self, now: float | None = None) -> list[LimitUsage]: ...
    # cap grants (limits/grants.py): book this worker's grant under each concurrency cap of
    # its `queues` and of its `tasks` (None: every queue, every task), wanting `wanted`
    # slots each, or what `wants` says for a cap ((kind, name): the slots it could use,
    # those not busy with other caps' jobs); renew those in `asks`, drop those whose cap is
    # gone; a worker's grants go with deregister_worker, or when they expire (`lease_for`
    # after their last renewal)
    async def renew_grants(self, worker_id: str, queues: Sequence[str] | None, wanted: int,
                           asks: Sequence[GrantAsk], lease_for: float,
                           now: float | None = None,
                           tasks: Sequence[str] | None = None,
                           wants: Mapping[tuple[str, str], int] | None = None
                           ) -> list[Grant]: ...
    async def room_at(self, queues: Sequence[str] | None,
                      now: float | None = None) -> float | None:
        """The earliest store time at which a rate of these queues (None: every queue) or of
        any task, full now, has room again, or a slow-down ends; None when no rate or
        slow-down holds anything back. A worker whose claim came back short sleeps until
        then rather than polling blindly."""
        ...
    async def key_use(self, job_id: str, now: float | None = None) -> KeyUse | None: ...

    # maintenance: bounded, idempotent, safe on every node
    async def rescue_expired(self, now: float | None = None, limit: int = 1000) -> int: ...
    async def promote_scheduled(self, now: float | None = None,
                                limit: int = 1000) -> tuple[int, float | None]: ...
    async def expire(self, now: float | None = None, limit: int = 1000) -> int: ...
    # ... the same two, telling which jobs changed (maintenance fires "dead" hooks for them)
    async def rescue_expired_jobs(self, now: float | None = None,
                                  limit: int = 1000) -> list[JobEvent]: ...
    async def expire_jobs(self, now: float | None = None, limit: int = 1000) -> list[JobEvent]: ...
    # retention by count: delete up to `limit` jobs in `state` (completed, dead, cancelled) of
    # `queue` and/or `task` beyond the newest `keep` by finish time; returns how many
    async def prune_kept(self, state: str, keep: int, queue: str | None = None,
                         task: str | None = None, limit: int = 1000,
                         now: float | None = None) -> int: ...
    async def prune(self, retention: Retention, now: float | None = None,
                    limit: int = 10000) -> int: ...

    # trace contexts (tracing on): a job's W3C traceparent, saved before the job is enqueued;
    # prune_traces deletes those of jobs gone for `grace` seconds
    async def save_traces(self, traces: Sequence[tuple[str, str]],
                          now: float | None = None) -> None: ...
    async def load_trace(self, job_id: str) -> str | None: ...
    async def prune_traces(self, now: float | None = None, limit: int = 1000,
                           grace: float = 300.0) -> int: ...

    # reading
    async def get(self, job_id: str, tenant: str | None = None) -> Job | None: ...
    # bodies=False: payload, result, errors and progress_step are not read (None, None, ()
    # and None), for pages that do not show them. budget=N (with bodies): the read stops
    # adding jobs once their stored bodies reach N bytes (the job that reaches it is in, the
    # first always is), so a page of large jobs is one read of bounded size, not a read per
    # job or two; fewer than `limit` jobs then need not be the end: go on after the last
    async def list_jobs(self, where: JobFilter, after: str | None = None,
                        limit: int = 50, *, bodies: bool = True,
                        budget: int | None = None) -> list[Job]: ...
    async def count_jobs(self, where: JobFilter, cap: int = 10_000) -> int:
        """How many jobs list_jobs would list, counting no further than `cap` (a bounded
        plan: "10,000+" is an answer, a scan of ten million rows is not)."""
        ...
    async def dead_letters(self, queue: str | None = None, tenant: str | None = None,
                           after: str | None = None, limit: int = 50, *,
                           budget: int | None = None) -> list[Job]:
        """Dead jobs, the latest to die first (finished_at, then id, descending); `after` is
        the last id of the previous page; `budget` as for list_jobs. An index of dead rows
        only: instant at any size."""
        ...
    async def dead_queues(self, tenant: str | None = None) -> list[str]:
        """The queues that hold dead jobs (of `tenant`), from the kept counts (0011)."""
        ...
    async def find_ids(self, fragment: str, tenant: str | None = None,
                       limit: int = 5) -> list[str]:
        """Up to `limit` ids that start with `fragment`, then that end with it (lowercase
        hex and dashes, checked by lookup.normalize); index range scans, never a table scan."""
        ...
    async def job_names(self, tenant: str | None = None, now: float | None = None) -> Names:
        """The task and queue names of `tenant`'s jobs (all, for None): those of the day
        rollups of the last NAMES_DAYS days and of the newest NAMES_RECENT jobs (a store
        without a tenant index may look for a tenant's among a fixed window of the newest
        jobs instead), and for None also every queue with a row of its own (paused once).
        Bounded reads, so a name only seen long ago in a huge table may be missing: this
        feeds autocomplete and name search, not an audit."""
        ...
    # cron: schedules live in code; the store keeps which are paused, for every node, and
    # when each was last paused or resumed (a resumed schedule runs no slot from before)
    async def schedule_states(self) -> dict[str, ScheduleState]: ...
    async def set_schedule_paused(self, name: str, paused: bool,
                                  now: float | None = None) -> None: ...
    async def stats(self, tenant: str | None = None, now: float | None = None) -> Stats: ...
    # counters kept as the jobs change (migration 0011): the counts, the same counted from the
    # jobs (a scan, for checks), and the upkeep that keeps reading them cheap
    async def job_counts(self, tenant: str | None = None) -> list[JobCount]: ...
    async def recount_jobs(self, tenant: str | None = None) -> list[JobCount]: ...
    async def fold_counts(self) -> int: ...
    async def queues(self, tenant: str | None = None,
                     now: float | None = None) -> list[QueueInfo]: ...
    async def workers(self, now: float | None = None) -> list[WorkerInfo]: ...

    # attempt history (settle and rescue_expired write it in their own transaction, as
    # pending rows that fold_history moves on): reads
    # for the analytics, the dead jobs of an error group, pruning on its own retention
    async def job_attempts(self, job_id: str, tenant: str | None = None
                           ) -> list[AttemptInfo]: ...
    async def task_analytics(self, window: TimeRange, points: int = 30
                             ) -> list[TaskSummary]: ...
    async def queue_analytics(self, window: TimeRange, points: int = 30
                              ) -> list[TaskSummary]: ...
    async def error_groups(self, window: TimeRange, limit: int = 50) -> list[ErrorGroup]: ...
    async def group_dead_jobs(self, fingerprint: str, tenant: str | None = None,
                              limit: int = 1_000, after: str | None = None) -> list[str]: ...
    async def worker_analytics(self, window: TimeRange,
                               now: float | None = None) -> list[WorkerSummary]: ...
    async def slow_attempts(self, window: TimeRange, limit: int = 20) -> list[AttemptInfo]: ...
    async def prune_history(self, attempts_before: float, rollups_before: float,
                            limit: int = 10_000) -> int: ...
    # a settle writes its attempts as pending rows only (no index, no rollup on that path);
    # this moves up to `limit` of them into the attempts and the rollups, each exactly once
    # however many nodes fold at once, and returns how many moved. Every read above folds
    # first, so reads are exact; a store whose role may not write folds nothing (0).
    async def fold_history(self, limit: int = 10_000) -> int: ...

    # dashboard sessions: opened at sign-in, found on each request, revoked at sign-out;
    # idle and absolute expiry; expired ones pruned by maintenance
    async def create_session(self, id_hash: str, token_check: str, idle: float,
                             lifetime: float, now: float | None = None) -> SessionRecord: ...
    async def find_session(self, id_hash: str,
                           now: float | None = None) -> SessionRecord | None: ...
    async def extend_session(self, id_hash: str, idle: float,
                             now: float | None = None) -> bool: ...
    async def revoke_session(self, id_hash: str) -> bool: ...
    async def prune_sessions(self, now: float | None = None, limit: int = 1000) -> int: ...

    # key rotation: page through what encryption covers (payload, result, errors) in id
    # order; write back (old, new) pairs, each field compare-and-set on its old value, so a
    # field changed meanwhile (an error appended by a fail) keeps the newer write. Returns
    # how many jobs now hold every new value.
    async def scan_sealable(self, after: str | None, limit: int) -> list[Sealable]: ...
    async def replace_sealable(self, swaps: Sequence[tuple[Sealable, Sealable]]) -> int: ...

    # wake-ups: hints only, polling stays the source of truth
    def notify(self, queues: Sequence[str]) -> None: ...
    async def listen(self, callback: Callable[[str], None], worker_id: str | None = None,
                     on_job: Callable[[ClaimedJob], None] | None = None
                     ) -> Callable[[], Awaitable[None]]: ...
    # the event feed: batches of job state changes and progress, from every process
    async def subscribe(self, callback: Callable[[list[JobEvent]], None]
                        ) -> Callable[[], Awaitable[None]]: ...


FINISHED_STATES = ("completed", "dead", "cancelled")


def events_of(rows: Sequence[Any]) -> list[JobEvent]:
    """Rows of (id, state, queue, task, tenant, progress) as feed events."""
    return [JobEvent(r[0], r[1], r[2], r[3], r[4] or None, r[5]) for r in rows if r is not None]


def held_counts(worker: WorkerInfo, leases: Sequence[Lease]) -> dict[str, Any]:
    """A heartbeat's counts: of the leases listed, `claimed` are held ahead, not started."""
    claimed = min(max(worker.claimed, 0), len(leases))
    by_queue = {str(q): int(n) for q, n in worker.claimed_queues.items() if int(n) > 0}
    return {"running": len(leases) - claimed, "claimed": claimed,
            "claimed_queues": orjson.dumps(by_queue).decode()}


def check_kept(state: str, keep: int, limit: int) -> None:
    """prune_kept's arguments, checked alike by every store."""
    if state not in FINISHED_STATES:
        raise ValueError(f"prune_kept: state must be one of {FINISHED_STATES}, not {state!r}")
    if keep < 0 or limit < 1:
        raise ValueError("prune_kept: keep must be >= 0 and limit >= 1")


def drive_inline(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (an inline store's) to its end, right here."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("an inline store suspended; it must never await I/O")


def open_store(url: str, *, synchronous: str | None = None, durability: str = "auto",
               busy_timeout: float = 10.0, enqueue_wait: float | None = None) -> Store:
    """A store for `url`: sqlite:///path, sqlite:///:memory:, postgresql://...
    The keyword arguments are SQLite's (sqlite/store.py); PostgreSQL takes its own from
    the URL."""
    from ..errors import ConfigError

    if url.startswith("sqlite:"):
        from .sqlite.store import SQLiteStore

        return SQLiteStore(url, synchronous=synchronous, durability=durability,
                           busy_timeout=busy_timeout, enqueue_wait=enqueue_wait)
    if url.startswith(("postgresql:", "postgres:")):
        try:
            from .postgres.store import PostgresStore
        except ImportError as exc:
            raise ConfigError("the PostgreSQL store needs psycopg: pip install "
                              "'conveyor-jobs[postgres]'") from exc
        return PostgresStore(url)
    raise ConfigError(f"unsupported store URL {url!r}: use sqlite:///path or postgresql://...")


def open_store_for(settings: Settings) -> Store:
    """The store `settings` describe (CONVEYOR_URL and the SQLite settings)."""
    return open_store(settings.url, synchronous=settings.sqlite_synchronous,
                      durability=settings.sqlite_durability,
                      busy_timeout=settings.sqlite_busy_timeout,
                      enqueue_wait=settings.spool_wait if settings.spool else None)


def release_thread(store: Store | None) -> None:
    """Close what the calling thread holds of `store` (its SQLite connection), as that
    thread ends; a store without per-thread connections has nothing to release."""
    release = getattr(store, "release_thread", None)
    if release is not None:
        release()
