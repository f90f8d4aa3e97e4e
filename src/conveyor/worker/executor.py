"""Run one claimed job and turn what happened into one settle record (an outcome value)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError

from ..context import JobContext
from ..disclosure import sensitive_values
from ..errors import PayloadUndecodable, UnknownTask
from ..job import ClaimedJob, DeadReason, ErrorInfo
from ..observability.joblogs import Hasher
from ..outcome import Cancel, Discard, RateLimited, Snooze
from ..retry import Retry, next_delay
from ..sealing import seal_error, seal_result
from ..store.base import Cancelled, Complete, Fail, Settle, drive_inline
from ..store.base import Snooze as SnoozeRecord
from .lifecycle import Lifecycle
from .tracking import Meter, Tracker

if TYPE_CHECKING:
    from ..app import Conveyor
    from ..clock import Clock
    from ..task import Task

_MAX_TRACEBACK = 16_000


class JobTimeout(Exception):
    pass


class JobRunner:
    """Runs jobs for one worker. Stateless apart from its wiring."""

    def __init__(self, app: Conveyor, worker_id: str, host: str, threads: Executor,
                 clock: Clock, logger: logging.Logger,
                 on_progress: Callable[[str, float, str | None], None] | None = None,
                 rng: random.Random | None = None) -> None:
        self.app = app
        self.worker_id = worker_id
        self.host = host
        self.threads = threads
        self.clock = clock
        self.log = logger
        self.on_progress = on_progress
        self.rng = rng or random.Random()
        self.hasher = Hasher(app.settings.log_hash_key)
        self.lifecycle = Lifecycle(app, worker_id)
        # attempt history: one meter per running job, by id (conveyor/history)
        self.tracker = Tracker(app.codec, worker_id, host) if app.settings.history else None
        self._meters: dict[str, Meter] = {}

    def stamp(self) -> None:
        """History's peak RSS of the attempts a settle trip is about to write."""
        if self.tracker is not None:
            self.tracker.stamp()

    def context(self, job: ClaimedJob) -> JobContext:
        return JobContext(self.app, job, self.worker_id, self.log, self.on_progress)

    async def run(self, job: ClaimedJob, ctx: JobContext, now: float | None = None
                  ) -> Settle:
        """Run `job` to its outcome. Never raises, except CancelledError (shutdown, lost
        lease or cancel request), which the caller maps. With history on, the outcome
        carries the attempt's record, started at `now` (the clock's, if the caller has just
        read it: read here when None)."""
        if self.tracker is None:
            return await self._run(job, ctx)
        meter = self._meters[job.id] = Meter()
        started_at = self.clock.now() if now is None else now
        start = time.perf_counter()
        try:
            outcome = await self._run(job, ctx)
        finally:
            self._meters.pop(job.id, None)
        return self.tracker.attach(job, outcome, started_at, time.perf_counter() - start,
                                   meter)

    async def _run(self, job: ClaimedJob, ctx: JobContext) -> Settle:
        task = self.app.registry.find(job.task)
        if task is None:
            return self._failed(job, UnknownTask(job.task, self.app.registry.names()), Retry(),
                                DeadReason.UNKNOWN_TASK)
        try:
            raw = self.app.codec.decode(job.payload, job.id, job.tenant)  # once: not per use
            if task.sensitive:  # ctx.logger and the job's log lines hash these values
                ctx.logger.hide = self.hasher.hider(sensitive_values(raw, task.sensitive))
                if (meter := self._meters.get(job.id)) is not None:  # history scrubs them
                    meter.sensitive(raw, task.sensitive)
            payload = task.load(raw)
        except PayloadUndecodable as exc:
            return self._failed(job, exc, task.retry, DeadReason.UNDECODABLE, final=True)
        except ValidationError as exc:  # the stored payload no longer fits the schema
            fields = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(payload)'}: {e['msg']}"
                               for e in exc.errors(include_input=False, include_url=False))
            error = PayloadUndecodable(f"payload of job {job.id} does not fit the schema of "
                                       f"task {job.task!r}: {fields}")  # no values: they may
            return self._failed(job, error, task.retry, DeadReason.UNDECODABLE, final=True)
        try:
            if self.app.hooks.middleware:
                result = await self.app.hooks.wrap(ctx, lambda: self._call(task, ctx, payload))
            elif task.is_async and task.timeout is None and task.isolation != "process":
                result = await task.fn(ctx, payload)  # _call's own path for it, one coroutine less
            else:
                result = await self._call(task, ctx, payload)
        except asyncio.CancelledError:
            raise
        except Snooze as snooze:
            if isinstance(snooze, RateLimited) and snooze.slow is not None:
                await self._slow_down(job, snooze)
            return SnoozeRecord(job.lease, snooze.seconds)
        except Discard as discard:
            return self._failed(job, discard, task.retry, DeadReason.DISCARDED, final=True)
        except Cancel as cancel:
            return Cancelled(job.lease, cancel.reason)
        except Exception as exc:
            return self._failed(job, exc, task.retry, DeadReason.FAILED)
        try:
            encoded = None if result is None else orjson.dumps(result)
        except TypeError as exc:
            not_json = TypeError(f"the result of task {job.task!r} is not JSON-serialisable: "
                                 f"{exc}")
            return self._failed(job, not_json, task.retry, DeadReason.FAILED, final=True)
        if encoded is None:  # nothing to seal (seal_result's own first test, without a call)
            return Complete(job.lease)
        return Complete(job.lease, seal_result(self.app.codec, encoded, job.id, job.tenant))

    async def _slow_down(self, job: ClaimedJob, limited: RateLimited) -> None:
        """No starts of the job's queue (task, key) anywhere for `retry_in` (limits/model.py,
        limits/keys.py). A failure only loses the slow-down: the job is snoozed all the same."""
        name = {"queue": job.queue, "task": job.task}.get(str(limited.slow), job.id)
        store, now = self.app.store, self.clock.store_now()
        try:
            coro = store.slow_key(job.id, limited.seconds, now) if limited.slow == "key" \
                else store.slow_down(str(limited.slow), name, limited.seconds, now)
            if getattr(store, "inline", False):  # off the loop, as the worker's store calls
                await asyncio.get_running_loop().run_in_executor(None, drive_inline, coro)
            else:
                await coro
        except Exception as exc:
            self.log.warning("could not slow %s %r down: %s", limited.slow, name, exc)

    async def _call(self, task: Task, ctx: JobContext, payload: Any) -> Any:
        if task.isolation == "process":
            from .isolated import run_isolated

            try:
                return await run_isolated(self.app, task, ctx, payload,
                                          self._meters.get(ctx.job_id))
            except TimeoutError:  # the child's own errors arrive as IsolatedTaskError
                ctx._cancel()
                raise JobTimeout(f"task {task.name!r} ran past its timeout of "
                                 f"{task.timeout:g}s; its process was killed") from None
        if task.is_async:
            work = task.fn(ctx, payload)
        else:
            loop = asyncio.get_running_loop()
            meter = self._meters.get(ctx.job_id)
            fn = task.fn if meter is None else meter.timed(task.fn)
            # in the context the middleware set (its context variables), as to_thread does
            work = loop.run_in_executor(self.threads, contextvars.copy_context().run, fn, ctx,
                                        payload)
        if task.timeout is None:
            return await work
        try:
            async with asyncio.timeout(task.timeout) as deadline:
                # a thread cannot be stopped: shield its future, stop waiting, tell it to stop
                return await (work if task.is_async else asyncio.shield(work))
        except TimeoutError:
            if not deadline.expired():
                raise  # the task's own TimeoutError: an ordinary failure
        ctx._cancel()
        how = ("was stopped" if task.is_async else "its thread was told to stop (use "
               "isolation='process' for a hard kill)")
        raise JobTimeout(f"task {task.name!r} ran past its timeout of {task.timeout:g}s and "
                         f"{how}")

    def failed(self, job: ClaimedJob, exc: BaseException) -> Fail:
        """A failure outside the task itself, retried under the task's policy."""
        task = self.app.registry.find(job.task)
        return self._failed(job, exc, task.retry if task else Retry(), DeadReason.FAILED)

    def _failed(self, job: ClaimedJob, exc: BaseException, policy: Retry, reason: str,
                final: bool = False) -> Fail:
        error = self.error_info(job, exc)
        retry_in = None
        if not final and job.attempt < job.max_attempts:
            retry_in = next_delay(policy, job.attempt, self.rng)
        # logged by the attempt's end line (lifecycle.py), with Sensitive values hashed
        return Fail(job.lease, seal_error(self.app.codec, error, job.id, job.tenant), retry_in,
                    str(reason))

    def error_info(self, job: ClaimedJob, exc: BaseException) -> ErrorInfo:
        type_name = getattr(exc, "type_name", None) or type(exc).__name__
        text = getattr(exc, "child_traceback", None) or "".join(traceback.format_exception(exc))
        if len(text) > _MAX_TRACEBACK:
            text = "...\n" + text[-_MAX_TRACEBACK:]
        error = ErrorInfo(attempt=job.attempt, type=type_name, message=str(exc)[:2000],
                          traceback=text, worker=self.worker_id, host=self.host,
                          at=self.clock.now())
        if (meter := self._meters.get(job.id)) is not None:
            meter.failed(error, exc)
        return error
