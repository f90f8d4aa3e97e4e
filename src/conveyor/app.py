"""Conveyor: the composition root. It owns the task registry, the store, the settings, the
clock and the codec, and is the one place that wires them together.

    app = Conveyor()                                   # CONVEYOR_URL, else sqlite:///./conveyor.db

    @app.task(queue="emails", retry=Retry(attempts=5))
    async def send_welcome(ctx, payload): ...

    job = send_welcome.enqueue({"user_id": "u1"}, idempotency_key="welcome:u1")
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar, overload

from . import alerts, scheduler
from .analytics import Analytics
from .clock import Clock, SystemClock
from .codec import Codec, Keyring
from .door import SyncDoor
from .errors import (
    SchemaOutdated,
    StoreUnavailable,
)
from .finding import Finding
from .hooks import Hooks, dead_events
from .job import EnqueueResult, Job, JobState, NewJob, new_id
from .limits.control import LimitControl
from .limits.keys import KeyLimit
from .observability import tracing
from .preparing import UNSTORED, Preparer, envelope
from .retry import Retry
from .scheduler import Schedule
from .settings import Settings
from .spool import Forwarder, Spool
from .steering import Steering
from .store.base import Retention, Store, open_store_for, release_thread
from .task import Isolation, Task, TaskRegistry

if TYPE_CHECKING:
    from .tenant import TenantScope

T = TypeVar("T")
log = logging.getLogger("conveyor")
F = TypeVar("F", bound=Callable[..., Any])


class Conveyor(Steering, Finding):
    """The app: tasks, store and settings in one object (no module-level registry)."""

    def __init__(self, url: str | None = None, *, settings: Settings | None = None,
                 clock: Clock | None = None, store: Store | None = None,
                 auto_migrate: bool | None = None) -> None:
        base = settings or Settings.load()
        self.settings = base if url is None else base.with_(url=url)
        self.clock: Clock = clock or SystemClock()
        self.registry = TaskRegistry()
        self.codec = Codec(Keyring.parse(self.settings.encryption_keys),
                           self.settings.max_payload_bytes)
        self._store = store
        self._opened = False
        self._open_lock = threading.Lock()
        self._door = SyncDoor()
        self.preparer = Preparer(self)
        self.schedules: dict[str, Schedule] = {}  # cron (scheduler.py), by name
        self.limits = LimitControl(self)  # flow control (limits/control.py)
        self.hooks = Hooks()  # lifecycle hooks and task middleware (hooks.py)
        sqlite = self.settings.url.startswith("sqlite:")
        self.auto_migrate = sqlite if auto_migrate is None else auto_migrate
        self.spool = Spool(self.settings.spool) if self.settings.spool else None
        self._spool_forwarder: Forwarder | None = None
        if self.spool is not None and self.spool.files():
            self._forwarder().start()  # jobs left from an earlier outage
        alerts.install(self)  # CONVEYOR_ALERT_URL: the delivery task and its "dead" hook
        self.tracing = tracing.install(self)  # CONVEYOR_TRACING: OpenTelemetry spans

    def __repr__(self) -> str:
        return f"Conveyor({self.settings.url!r}, tasks={self.registry.names()})"

    # --- tasks ----------------------------------------------------------------------------

    @overload
    def task(self, fn: F) -> Task: ...
    @overload
    def task(self, fn: None = None, *, name: str | None = None, queue: str = "default",
             retry: Retry | None = None, timeout: float | None = None,
             ttl: float | None = None, priority: int = 0, schema: Any = None,
             unique_for: float | None = None, isolation: Isolation = "none",
             concurrency: int | None = None, rate: str | None = None,
             key: KeyLimit | None = None) -> Callable[[F], Task]: ...

    def task(self, fn: Any = None, *, name: str | None = None, queue: str = "default",
             retry: Retry | None = None, timeout: float | None = None, ttl: float | None = None,
             priority: int = 0, schema: Any = None, unique_for: float | None = None,
             isolation: Isolation = "none", concurrency: int | None = None,
             rate: str | None = None, key: KeyLimit | None = None) -> Any:
        """Register a task function `(ctx, payload) -> result`. `concurrency` and `rate`
        ("10/min") limit its jobs across every worker, `key=KeyLimit(...)` each key's
        (conveyor.limits).

        >>> @app.task(queue="emails", retry=Retry(attempts=5), timeout=60)   # doctest: +SKIP
        ... async def send_welcome(ctx, payload): ...
        """

        def register(func: Callable[..., Any]) -> Task:
            task = Task(name=name or func.__name__, fn=func, app=self, queue=queue,
                        retry=retry or Retry(), timeout=timeout, ttl=ttl, priority=priority,
                        schema=schema, unique_for=unique_for, isolation=isolation,
                        concurrency=concurrency, rate=rate, key=key)
            self.registry.add(task)
            return task

        return register(fn) if fn is not None else register

    def queue(self, name: str, *, concurrency: int | None = None,
              rate: str | None = None) -> None:
        """Limit a queue across every worker: at most `concurrency` running, at most `rate`
        starts per sliding window. `app.queue("ai", concurrency=5, rate="10/min")`"""
        self.limits.declare_queue(name, concurrency, rate)

    def on(self, event: str) -> Callable[[F], F]:
        """A lifecycle hook: `@app.on("dead")` over `(event: HookEvent) -> None` (hooks.py)."""
        return self.hooks.on(event)

    def middleware(self, fn: F) -> F:
        """Wrap every task run: `async def mw(ctx, call_next)` (hooks.py). Also `app.use`."""
        return self.hooks.use(fn)

    use = middleware

    # --- the store ------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store_for(self.settings)
        if not self._opened:
            with self._open_lock:
                if not self._opened:
                    self._door.run(self._store, self._open_store(self._store))
                    self._opened = True
        return self._store

    async def _open_store(self, store: Store) -> None:
        await store.open()
        if self.auto_migrate:
            await store.migrate()

    def call(self, coro_fn: Callable[[Store], Coroutine[Any, Any, T]]) -> T:
        """Run one store coroutine from sync code: `app.call(lambda s: s.stats())`."""
        store = self.store
        return self._door.run(store, coro_fn(store))

    async def check_schema(self) -> None:
        """Raise SchemaOutdated unless the store's schema is the one this version needs."""
        store = self.store
        latest = getattr(store, "latest_version", 0)
        current = await store.schema_version()
        if current < latest:
            raise SchemaOutdated(current, latest)

    def migrate(self) -> int:
        return self.call(lambda s: s.migrate())

    def close(self) -> None:
        if self._spool_forwarder is not None:  # first: its thread closes its own connection
            self._spool_forwarder.stop()
        if self._store is not None and self._opened:
            self._door.run(self._store, self._store.close())
            self._opened = False
        self._door.close()

    def cron(self, expression: str, task: str | Task, payload: Any = None, *,
             name: str | None = None, timezone: str = "UTC", **options: Any) -> Schedule:
        """Enqueue `task` at every time the cron `expression` names, once per time however
        many workers run (scheduler.py). Options as enqueue's, but no delay, run_at or key.

        >>> app.cron("0 7 * * mon-fri", "reports.daily", {"kind": "sales"})  # doctest: +SKIP
        """
        return scheduler.add(self.schedules, name, expression,
                             task.name if isinstance(task, Task) else task, payload, timezone,
                             options)

    # --- producing ------------------------------------------------------------------------

    def enqueue(self, task: str | Task, payload: Any = None, **options: Any) -> Job:
        """Put one job on its queue; returns the stored envelope (`duplicate` set when an
        active job with the same idempotency key already existed)."""
        new, body = self.preparer.one(task, payload, options)
        [result] = self._insert([new], options.get("connection"))
        return self._announced([self._enqueued(new, body, result)])[0]

    async def enqueue_async(self, task: str | Task, payload: Any = None, **options: Any) -> Job:
        new, body = self.preparer.one(task, payload, options)
        [result] = await self._insert_async([new], options.get("connection"))
        return self._announced([self._enqueued(new, body, result)])[0]

    def enqueue_many(self, jobs: Iterable[Any], *, connection: Any = None) -> list[Job]:
        """Enqueue many jobs atomically: all are stored, or none (BatchTooLarge, a bad payload).

        Each item is `{"task": name, "payload": {...}, **options}` or `(task, payload)`.
        """
        items = list(jobs)
        stream = getattr(self.store, "enqueue_stream", None)  # a network store's COPY path
        if stream is not None and connection is None and len(items) > 1 and not self.tracing:
            return self._announced(self._enqueue_streamed(stream, items))
        prepared = self.preparer.many(items)
        results = self._insert([n for n, _ in prepared], connection)
        return self._announced([self._enqueued(n, b, r)
                                for (n, b), r in zip(prepared, results, strict=True)])

    def _enqueue_streamed(self, stream: Callable[..., list[EnqueueResult]],
                          items: list[Any]) -> list[Job]:
        """Hand the store the jobs as they are prepared, so it can send each while the next
        is encoded. A bad item raises from inside the stream: nothing is stored."""
        self.preparer.check_batch_size(items)
        prepared: list[tuple[NewJob, Any]] = []
        built: list[Job] = []  # each job's envelope, built while the store works on the last

        def produce() -> Iterator[NewJob]:
            for pair in self.preparer.each(items, new_id()):
                prepared.append(pair)
                built.append(self._enqueued(pair[0], pair[1], UNSTORED))
                yield pair[0]

        source = produce()
        try:
            results = stream(source, self.clock.store_now())
        except StoreUnavailable:
            if self.spool is None:
                raise
            for _ in source:  # validate and keep the rest, then spool them all
                pass
            results = self._spool_jobs([n for n, _ in prepared])
        return [self._settled(job, n, b, r)
                for job, (n, b), r in zip(built, prepared, results, strict=True)]

    def _settled(self, job: Job, new: NewJob, body: Any, result: EnqueueResult) -> Job:
        """An envelope built before the store answered, given the store's times."""
        if result.duplicate or result.state is not job.state:
            return self._enqueued(new, body, result)
        job.created_at, job.run_at = result.created_at, result.run_at
        if new.ttl is not None:
            job.expires_at = result.created_at + new.ttl
        return job

    async def enqueue_many_async(self, jobs: Iterable[Any], *,
                                 connection: Any = None) -> list[Job]:
        prepared = self.preparer.many(jobs)
        results = await self._insert_async([n for n, _ in prepared], connection)
        return self._announced([self._enqueued(n, b, r)
                                for (n, b), r in zip(prepared, results, strict=True)])

    def _insert(self, jobs: list[NewJob], tx: Any) -> list[EnqueueResult]:
        if self.tracing is not None:  # in an enqueue span, its traceparent kept with the jobs
            return self.tracing.traced(jobs, lambda: self._insert_untraced(jobs, tx))
        return self._insert_untraced(jobs, tx)

    def _insert_untraced(self, jobs: list[NewJob], tx: Any) -> list[EnqueueResult]:
        store = self.store
        blocking = getattr(store, "enqueue_many_blocking", None)  # a network store's own
        try:
            if blocking is not None:  # sync path: no hop to the door's loop
                return blocking(jobs, self.clock.store_now(), tx)
            return self._door.run(store, store.enqueue_many(jobs, self.clock.store_now(), tx))
        except StoreUnavailable:
            if self.spool is None or tx is not None:
                raise
            return self._spool_jobs(jobs)

    async def _insert_async(self, jobs: list[NewJob], tx: Any) -> list[EnqueueResult]:
        if self.tracing is not None:
            return await self.tracing.traced_async(
                jobs, lambda: self._insert_async_untraced(jobs, tx))
        return await self._insert_async_untraced(jobs, tx)

    async def _insert_async_untraced(self, jobs: list[NewJob], tx: Any) -> list[EnqueueResult]:
        try:
            return await self.store.enqueue_many(jobs, self.clock.store_now(), tx)
        except StoreUnavailable:
            if self.spool is None or tx is not None:
                raise
            return self._spool_jobs(jobs)

    def _spool_jobs(self, jobs: list[NewJob]) -> list[EnqueueResult]:
        """The store is down: keep the jobs on local disk and forward them when it is back."""
        assert self.spool is not None
        path = self.spool.write(jobs)
        log.warning("store unavailable: %d job(s) spooled to %s, forwarded when it is back",
                    len(jobs), path)
        self._forwarder().start()
        now = self.clock.now()
        results = []
        for job in jobs:
            run_at = job.run_at if job.run_at is not None else now + job.delay
            state = JobState.SCHEDULED if run_at > now else JobState.QUEUED
            results.append(EnqueueResult(job.id, False, state, now, run_at))
        return results

    def _forwarder(self) -> Forwarder:
        assert self.spool is not None
        if self._spool_forwarder is None:
            self._spool_forwarder = Forwarder(
                self.spool, lambda jobs: self.call(lambda s: s.enqueue_many(jobs)),
                on_exit=lambda: release_thread(self._store))
        return self._spool_forwarder

    def forward_spool(self) -> int:
        """Forward spooled jobs now (raises StoreUnavailable if the store is still down)."""
        return 0 if self.spool is None else self._forwarder().run_once()

    def _announced(self, jobs: list[Job]) -> list[Job]:
        self.hooks.enqueued(jobs)  # "enqueued" hooks, in this (the producer's) process
        return jobs

    def _enqueued(self, new: NewJob, body: Any, result: EnqueueResult) -> Job:
        if result.duplicate:
            existing = self.get(result.id)
            return replace(existing, duplicate=True)
        return envelope(new, body, result)

    @property
    def analytics(self) -> Analytics:
        """Reads over the attempt history (analytics.py): tasks, errors, workers, slow."""
        return Analytics(self)

    # --- maintenance ----------------------------------------------------------------------

    @property
    def retention(self) -> Retention:
        s = self.settings
        return Retention(completed=s.retention_completed, dead=s.retention_dead,
                         cancelled=s.retention_cancelled)

    def clean_expired(self) -> int:
        """Move every job whose TTL ran out to dead (reason `expired`); returns how many."""
        total = 0
        while changed := self.call(lambda s: s.expire_jobs(self.clock.store_now(), 1000)):
            total += len(changed)
            self.hooks.fire_all(dead_events(changed, "expired"))
        return total

    def prune(self) -> int:
        """Delete finished jobs past their retention; returns how many."""
        total = 0
        while (n := self.call(lambda s: s.prune(self.retention, self.clock.store_now()))):
            total += n
        return total

    def for_tenant(self, tenant: str) -> TenantScope:
        """A handle that sees and acts on one tenant's jobs only (see conveyor.tenant)."""
        from .tenant import TenantScope

        return TenantScope(self, tenant)

    def worker(self, **options: Any) -> Any:
        """A Worker for this app (see conveyor.worker.Worker for the options)."""
        from .worker.worker import Worker

        return Worker(self, **options)


# --- helpers ----------------------------------------------------------------------------------


def sequence_of(value: Sequence[str] | str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(q for q in value.split(",") if q) or None
    return tuple(value) or None
