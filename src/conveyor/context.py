"""JobContext: what a running task can see and do about its own job."""

from __future__ import annotations

import hashlib
import logging
import sys
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import Conveyor
    from .job import ClaimedJob, Job


class JobContext:
    """Passed as the first argument to every task function.

    >>> @app.task()                                  # doctest: +SKIP
    ... def resize(ctx: JobContext, payload: dict) -> dict:
    ...     ctx.progress(50, step="thumbnails")
    ...     return {"ok": True}
    """

    __slots__ = ("_app", "_base_logger", "_cancelled", "_job", "_last_progress", "_logger",
                 "_on_progress", "attempt", "correlation_id", "job_id", "max_attempts", "queue",
                 "started_at", "task", "tenant", "worker_id")

    def __init__(self, app: Conveyor, job: ClaimedJob, worker_id: str,
                 logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
                 on_progress: Callable[[str, float, str | None], None] | None = None) -> None:
        self._app = app
        self.job_id = job.id
        self.task = job.task
        self.queue = job.queue
        self.attempt = job.attempt
        self.max_attempts = job.max_attempts
        self.tenant = job.tenant
        self.correlation_id = job.correlation_id
        self.worker_id = worker_id
        # the store's start time of this run (the time a rate counted; a limited claim may
        # book it a moment ahead): always on SQLite, on PostgreSQL for a claim under a limit
        # (its plain claims do not return it: None)
        self.started_at: float | None = job.starts_at
        # ctx.logger is made at its first use: most jobs never log (two calls a job less)
        self._job, self._base_logger = job, logger
        self._logger: _JobLogger | None = None
        self._on_progress = on_progress
        self._cancelled = False  # set from the loop; read by the task (a bool is GIL-atomic)
        self._last_progress = 0.0

    @property
    def logger(self) -> _JobLogger:
        """A logger whose records carry the job's id, task, queue, tenant and correlation id."""
        made = self._logger
        if made is None:
            made = self._logger = _JobLogger(self._base_logger, self._job, self.worker_id)
        return made

    @property
    def cancelled(self) -> bool:
        """True once the job was cancelled, timed out or lost its lease: a long sync task
        should check it between steps and return early."""
        return self._cancelled

    def progress(self, percent: float, step: str | None = None) -> None:
        """Report progress (0-100). Writes are coalesced: the newest value wins."""
        percent = max(0.0, min(100.0, float(percent)))
        if self._on_progress is not None:
            self._on_progress(self.job_id, percent, step)

    def effect_key(self, name: str) -> str:
        """A stable key for one side effect of this job, the same on every attempt: pass it as
        the idempotency key of a call to an outside system (a payment, an email)."""
        digest = hashlib.sha256(f"{self.job_id}:{name}".encode()).hexdigest()[:32]
        return f"conveyor:{digest}"

    def enqueue(self, task: str, payload: Any = None, **options: Any) -> Job:
        """Enqueue a child job that inherits this job's tenant and correlation id."""
        return self._app.enqueue(task, payload, **self._child_options(options))

    async def enqueue_async(self, task: str, payload: Any = None, **options: Any) -> Job:
        return await self._app.enqueue_async(task, payload, **self._child_options(options))

    def _child_options(self, options: dict[str, Any]) -> dict[str, Any]:
        options.setdefault("tenant", self.tenant)
        options.setdefault("correlation_id", self.correlation_id)
        options.setdefault("parent_id", self.job_id)
        return options

    def _cancel(self) -> None:
        self._cancelled = True

    def _throttled(self, interval: float) -> bool:
        now = time.monotonic()
        if now - self._last_progress < interval:
            return True
        self._last_progress = now
        return False


class _JobLogger(logging.LoggerAdapter):
    """ctx.logger: every record carries the job's id, task, queue, tenant and correlation id
    (JSON logs show them as fields). The job's Sensitive values are replaced by their keyed
    hash (`hide`, set once the payload is decoded) in the message, its arguments, the extra
    fields and a logged exception."""

    def __init__(self, logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
                 job: ClaimedJob, worker_id: str) -> None:
        super().__init__(logger, None)
        self._job = job
        self._worker_id = worker_id
        self.hide: Callable[[str], str] | None = None

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        hide = self.hide
        if hide is None or not self.isEnabledFor(level):
            super().log(level, msg, *args, **kwargs)
            return
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):
            text = f"{msg} {args!r}"
        exc_info = kwargs.pop("exc_info", None)
        if exc_info:  # the traceback quotes values too: format it here, hashed
            if exc_info is True:
                exc_info = sys.exc_info()
            elif isinstance(exc_info, BaseException):
                exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
            text += "\n" + "".join(traceback.format_exception(*exc_info)).rstrip()
        extra = kwargs.get("extra")
        if extra:
            kwargs["extra"] = {k: _hidden(hide, v) for k, v in extra.items()}
        kwargs.setdefault("stacklevel", 2)
        super().log(level, hide(text), **kwargs)

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        job = self._job
        kwargs["extra"] = {"job_id": job.id, "task": job.task, "queue": job.queue,
                           "tenant": job.tenant, "correlation_id": job.correlation_id,
                           "worker_id": self._worker_id, **(kwargs.get("extra") or {})}
        return msg, kwargs


def _hidden(hide: Callable[[str], str], value: Any) -> Any:
    """An extra= value with Sensitive values hashed: text, or a number that is one."""
    if isinstance(value, str):
        return hide(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = str(value)
        hidden = hide(text)
        return value if hidden == text else hidden
    return value
