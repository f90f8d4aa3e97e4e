"""Lifecycle hooks and task middleware: in-process callbacks an app registers.

    @app.on("dead")
    async def page_someone(event: HookEvent) -> None: ...

    @app.middleware
    async def tenant_guard(ctx, call_next):
        if ctx.tenant not in allowed:
            raise Discard("tenant not allowed")      # dead at once, no retries
        return await call_next()

A hook fires once per transition, in the process that makes (and observes) it: "enqueued" in
the producer; "started", "completed", "failed", "retrying", "dead" and "cancelled" in the
worker, after the store accepted the outcome (so a lease lost to another worker fires
nothing); "dead" also in the worker whose maintenance expires a job past its TTL or gives up
on one whose workers kept dying. A hook runs after the fact: one that raises is logged and
changes nothing about the job.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import ConfigError
from .job import ErrorInfo, Job, JobEvent

if TYPE_CHECKING:
    from .context import JobContext

log = logging.getLogger("conveyor.hooks")

EVENTS = ("enqueued", "started", "completed", "retrying", "failed", "dead", "cancelled")
SETTLED = frozenset(EVENTS[2:])  # fired once the worker's outcome is written

Hook = Callable[["HookEvent"], Any]  # returns None, or an awaitable for an async hook
CallNext = Callable[[], Awaitable[Any]]
Middleware = Callable[["JobContext", CallNext], Awaitable[Any]]
H = TypeVar("H", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class HookEvent:
    """What a hook is told. `error` is set for failed, retrying and dead (when the attempt
    raised); `reason` is the dead reason (failed, discarded, expired, worker_lost ...) or the
    cancel reason."""

    event: str
    job_id: str
    task: str
    queue: str
    tenant: str | None = None
    attempt: int | None = None
    correlation_id: str | None = None
    worker_id: str | None = None
    error: ErrorInfo | None = None
    reason: str | None = None
    retry_in: float | None = None


class Hooks:
    """The app's hooks and middleware (an explicit object: no module-level registry)."""

    def __init__(self) -> None:
        self._hooks: dict[str, list[Hook]] = {name: [] for name in EVENTS}
        self.middleware: list[Middleware] = []
        self._pending: set[asyncio.Task[None]] = set()
        self.after_settle = False  # any hook on an outcome a worker writes (lifecycle.py)

    def on(self, event: str) -> Callable[[H], H]:
        """Register a callback for `event` (one of EVENTS); sync or async."""
        if event not in self._hooks:
            raise ConfigError(f"unknown hook event {event!r}: use one of {', '.join(EVENTS)}")

        def register(fn: H) -> H:
            if not callable(fn):
                raise ConfigError(f"a hook for {event!r} must be callable, not {fn!r}")
            self._hooks[event].append(fn)
            self.after_settle = self.after_settle or event in SETTLED
            return fn

        return register

    def use(self, fn: H) -> H:
        """Add a middleware: `async def mw(ctx, call_next) -> result`. The first added is
        the outermost; `call_next()` runs the rest and then the task."""
        if not inspect.iscoroutinefunction(fn):
            raise ConfigError(f"a middleware must be an async function (ctx, call_next), "
                              f"not {fn!r}")
        self.middleware.append(fn)
        return fn

    def wanted(self, event: str) -> bool:
        return bool(self._hooks[event])

    def registered(self, event: str) -> list[Hook]:
        """The hooks of `event`: the live list (`on` adds to it), to test without a call."""
        return self._hooks[event]

    # --- firing -------------------------------------------------------------------------------

    def fire(self, event: HookEvent) -> None:
        """Call every hook for `event.event`. Sync hooks run now; async ones on the running
        loop as tasks (awaited by drain()), or to their end here when no loop runs (a sync
        producer). Nothing a hook raises gets out of here."""
        for hook in self._hooks[event.event]:
            try:
                outcome = hook(event)
                if inspect.isawaitable(outcome):
                    self._await(outcome, hook, event)
            except Exception:
                _logged(hook, event)

    def fire_all(self, events: Sequence[HookEvent]) -> None:
        for event in events:
            self.fire(event)

    def enqueued(self, jobs: Sequence[Job]) -> None:
        """Fire "enqueued" for each job stored now (not for a duplicate's existing job)."""
        if self._hooks["enqueued"]:
            self.fire_all([HookEvent("enqueued", j.id, j.task, j.queue, j.tenant, j.attempt,
                                     j.correlation_id) for j in jobs
                           if not (j.duplicate or j.dropped)])

    def _await(self, outcome: Awaitable[Any], hook: Hook, event: HookEvent) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(_guarded(outcome, hook, event))
            return
        task = loop.create_task(_guarded(outcome, hook, event))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def cancelled(self, job: Job) -> None:
        """Fire "cancelled" for a waiting job cancelled here (app.cancel)."""
        if self._hooks["cancelled"]:
            self.fire(HookEvent("cancelled", job.id, job.task, job.queue, job.tenant,
                                job.attempt, job.correlation_id, reason="cancelled"))

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait (up to `timeout`) for the async hooks started on this loop to finish."""
        mine = [t for t in self._pending if t.get_loop() is asyncio.get_running_loop()]
        if mine:
            await asyncio.wait(mine, timeout=timeout)

    # --- middleware ---------------------------------------------------------------------------

    async def wrap(self, ctx: JobContext, run: CallNext) -> Any:
        """Run `run` (the task) inside every middleware, outermost first."""
        chain = run
        for middleware in reversed(self.middleware):
            chain = _link(middleware, ctx, chain)
        return await chain()


def dead_events(changed: Sequence[JobEvent], reason: str) -> list[HookEvent]:
    """The "dead" events of jobs maintenance killed (TTL expired, worker lost)."""
    return [HookEvent("dead", e.id, e.task, e.queue, e.tenant, reason=reason)
            for e in changed if e.state == "dead"]


def _link(middleware: Middleware, ctx: JobContext, call_next: CallNext) -> CallNext:
    async def step() -> Any:
        return await middleware(ctx, call_next)

    return step


async def _guarded(outcome: Awaitable[Any], hook: Hook, event: HookEvent) -> None:
    try:
        await outcome
    except Exception:
        _logged(hook, event)


def _logged(hook: Hook, event: HookEvent) -> None:
    log.exception("hook %s for %r failed on job %s; the job is not affected",
                  getattr(hook, "__qualname__", hook), event.event, event.job_id)
