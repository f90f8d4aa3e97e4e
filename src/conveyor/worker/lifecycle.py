"""What a worker tells about each attempt: its job log lines (observability/joblogs.py) and the
app's lifecycle hooks (hooks.py).

    lifecycle.started(job, ctx)                 # log line, "started" hooks
    lifecycle.ended(job, ctx, outcome, 0.012)   # log line; remember the job for its hooks
    lifecycle.written(items, applied)           # after the settle: "completed", "dead" ...

Hooks for an outcome fire only once the store has accepted it (`applied`): an outcome
dropped because the job's lease moved on fires nothing, and one that could not be written
yet fires when a later trip writes it. So each transition fires once, in this worker.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..hooks import HookEvent
from ..job import ClaimedJob, ErrorInfo, Lease
from ..observability.joblogs import JobLog
from ..sealing import open_error
from ..store.base import Cancelled, Complete, Fail, Release, Settle, Snooze

if TYPE_CHECKING:
    from ..app import Conveyor
    from ..context import JobContext

log = logging.getLogger("conveyor.worker")


def outcome_name(outcome: Settle | None) -> str:
    """How the end line names what became of an attempt."""
    match outcome:
        case Complete():
            return "completed"
        case Fail(retry_in=None):
            return "dead"
        case Fail():
            return "retrying"
        case Snooze():
            return "snoozed"
        case Cancelled():
            return "cancelled"
        case Release():
            return "released"
        case None:
            return "lost"
    return type(outcome).__name__.lower()


class Lifecycle:
    def __init__(self, app: Conveyor, worker_id: str) -> None:
        self.app = app
        self.hooks = app.hooks
        self.worker_id = worker_id
        self.job_log = JobLog(logging.getLogger("conveyor.jobs"), app.settings, worker_id)
        self._kept: dict[str, bool] = {}  # job id: its lines survived sampling
        self._ended: dict[Lease, ClaimedJob] = {}  # outcomes waiting for their settle
        self._started_hooks = app.hooks.registered("started")  # live: hooks added later count

    def started(self, job: ClaimedJob) -> None:
        try:  # telling must never cost a job (a log handler that raises, say)
            job_log = self.job_log  # JobLog.started's own first test, without its call
            if job_log.enabled and job_log.log.isEnabledFor(logging.INFO) and \
                    job_log.started(job):  # only the kept: a quiet log keeps no entry
                self._kept[job.id] = True
            if self._started_hooks:  # hooks.wanted("started"), without its call
                self.hooks.fire(self._event("started", job))
        except Exception:
            log.exception("could not log the start of job %s", job.id)

    def ended(self, job: ClaimedJob, ctx: JobContext, outcome: Settle | None,
              seconds: float) -> None:
        try:  # one call per job, not two: a no-op drain's end costs little else
            kept = self._kept.pop(job.id, False) if self._kept else False
            if type(outcome) is Complete:  # most ends: no error to open, no match to walk
                if kept:  # a completion whose start was not logged logs no end (JobLog.ended)
                    self.job_log.ended(job, "completed", seconds, kept, None, ctx.logger.hide)
            else:
                error = None
                if isinstance(outcome, Fail):
                    opened = self._opened(job, outcome.error)
                    error = (opened.type, opened.message)
                self.job_log.ended(job, outcome_name(outcome), seconds, kept, error,
                                   ctx.logger.hide)
            if (self.hooks.after_settle and outcome is not None
                    and not isinstance(outcome, Release)):
                self._ended[outcome.lease] = job
        except Exception:
            log.exception("could not log the end of job %s", job.id)

    def written(self, items: Sequence[Settle], applied: Sequence[bool]) -> None:
        """The settle trip returned: fire the hooks of what it wrote."""
        if not self._ended:
            return
        for item, ok in zip(items, applied, strict=True):
            job = self._ended.pop(item.lease, None)
            if job is None or not ok:
                continue
            try:  # the claim loop calls this: nothing may escape
                self.hooks.fire_all(self._events(job, item))
            except Exception:
                log.exception("could not fire the hooks of job %s", job.id)

    def _events(self, job: ClaimedJob, item: Settle) -> list[HookEvent]:
        match item:
            case Complete():
                return [self._event("completed", job)] if self.hooks.wanted("completed") else []
            case Cancelled(reason=reason):
                return [self._event("cancelled", job, reason=reason)]
            case Fail(error=error, retry_in=retry_in, dead_reason=reason):
                then = "dead" if retry_in is None else "retrying"
                if not (self.hooks.wanted("failed") or self.hooks.wanted(then)):
                    return []
                opened = self._opened(job, error)
                return [self._event(name, job, error=opened, reason=reason, retry_in=retry_in)
                        for name in ("failed", then)]
        return []

    def _event(self, name: str, job: ClaimedJob, *, error: ErrorInfo | None = None,
               reason: str | None = None, retry_in: float | None = None) -> HookEvent:
        return HookEvent(name, job.id, job.task, job.queue, job.tenant, job.attempt,
                         job.correlation_id, self.worker_id, error, reason, retry_in)

    def _opened(self, job: ClaimedJob, error: ErrorInfo) -> ErrorInfo:
        return open_error(self.app.codec, error, job.id, job.tenant)

