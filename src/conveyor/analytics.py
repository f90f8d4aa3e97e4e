"""Analytics over the attempt history, for the API, the CLI and the dashboard: every read
takes a time range and an optional tenant (a tenant token's scope), and an operator can
retry or discard every dead job of an error group.

    found = app.analytics.tasks(parse_range("24h"), tenant="acme")
    app.analytics.retry_group("3f9a0c...")       # requeue the group's dead jobs
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .errors import ConfigError
from .history.records import AttemptInfo, ErrorGroup, TaskSummary, TimeRange, WorkerSummary
from .store.dead_groups import PAGE as DEAD_GROUP_PAGE

if TYPE_CHECKING:
    from .app import Conveyor
    from .store.base import Store

GROUP_PAGE = DEAD_GROUP_PAGE  # a group's dead jobs read (and retried, discarded) at a time

_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|h|d|w)\s*$")
_UNIT = {"m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
LONGEST = 60 * 86400.0
SKEW = 60.0
_FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")


def parse_span(text: str) -> float:
    """'90m', '1h', '24h', '7d', '30d', '2w' -> seconds (at most 60 days)."""
    match = _SPAN.match(text or "")
    if match is None:
        raise ConfigError(f"a time range is a number and a unit (m, h, d or w), like 1h or "
                          f"30d; got {text!r}")
    seconds = float(match[1]) * _UNIT[match[2]]
    if not 0 < seconds <= LONGEST:
        raise ConfigError(f"a time range is more than 0 and at most 60 days; got {text!r}")
    return seconds


def check_fingerprint(fingerprint: str) -> str:
    if not _FINGERPRINT.match(fingerprint or ""):
        raise ConfigError(f"an error group's fingerprint is 16 hex digits; got "
                          f"{fingerprint!r}")
    return fingerprint


class Analytics:
    def __init__(self, app: Conveyor) -> None:
        self.app = app

    def window(self, span: str | float = "1h", *, tenant: str | None = None,
               task: str | None = None, queue: str | None = None,
               end: float | None = None) -> TimeRange:
        """The range ending now (the app's clock) and `span` long ('24h', or seconds). It
        reaches a minute past now: attempts are stamped by the workers' clocks, which may
        run a little ahead of this one."""
        seconds = parse_span(span) if isinstance(span, str) else float(span)
        stop = self.app.clock.now() if end is None else end
        return TimeRange(stop - seconds, stop + SKEW, tenant=tenant, task=task, queue=queue)

    def tasks(self, window: TimeRange, points: int = 30) -> list[TaskSummary]:
        return self.app.call(lambda s: s.task_analytics(window, points))

    def queues(self, window: TimeRange, points: int = 30) -> list[TaskSummary]:
        """tasks() per queue, every task summed (task ''), without durations: the charts."""
        return self.app.call(lambda s: s.queue_analytics(window, points))

    def errors(self, window: TimeRange, limit: int = 50) -> list[ErrorGroup]:
        return self.app.call(lambda s: s.error_groups(window, limit))

    def workers(self, window: TimeRange) -> list[WorkerSummary]:
        return self.app.call(lambda s: s.worker_analytics(window, self.app.clock.store_now()))

    def slow(self, window: TimeRange, limit: int = 20) -> list[AttemptInfo]:
        return self.app.call(lambda s: s.slow_attempts(window, limit))

    def attempts(self, job_id: str, tenant: str | None = None) -> list[AttemptInfo]:
        return self.app.call(lambda s: s.job_attempts(job_id, tenant))

    def group_jobs(self, fingerprint: str, tenant: str | None = None,
                   limit: int | None = None, after: str | None = None) -> list[str]:
        """The dead jobs still stored whose last attempt failed in this group: a page of
        at most `limit` ids in id order, after `after` (the previous page's last id)."""
        check_fingerprint(fingerprint)
        page = GROUP_PAGE if limit is None else limit
        return self.app.call(lambda s: s.group_dead_jobs(fingerprint, tenant, page, after))

    def _each_page(self, fingerprint: str, tenant: str | None) -> Iterator[list[str]]:
        """Every dead job of the group, a page at a time: the next page is read after the
        last id acted on, so jobs leaving the group meanwhile do not shift it."""
        after = None
        while page := self.group_jobs(fingerprint, tenant, after=after):
            yield page
            after = page[-1]

    def retry_group(self, fingerprint: str, tenant: str | None = None) -> int:
        """Requeue every dead job of the group; returns how many went back in the queue."""
        queued = 0
        for ids in self._each_page(fingerprint, tenant):
            now = self.app.clock.store_now()
            outcomes = self.app.call(functools.partial(_requeue, ids=ids, tenant=tenant,
                                                       now=now))
            queued += sum(1 for outcome in outcomes.values() if outcome == "queued")
        return queued

    def discard_group(self, fingerprint: str, tenant: str | None = None) -> int:
        """Delete every dead job of the group (their attempts stay in the history)."""
        return sum(self.app.call(functools.partial(_discard, ids=ids, tenant=tenant))
                   for ids in self._each_page(fingerprint, tenant))


async def _requeue(store: Store, ids: list[str], tenant: str | None,
                   now: float | None) -> dict[str, str]:
    return await store.requeue(ids, tenant, now)


async def _discard(store: Store, ids: list[str], tenant: str | None) -> int:
    return await store.discard(ids, tenant)
