"""Finding jobs: the part of Conveyor's API behind the search of the API, the dashboard and
`conveyor jobs` (search.py holds the rules). A mixin of Conveyor (app.py), kept apart so
that each module stays readable.

    found = app.search_jobs(JobFilter(tenant="org-1"), Search.parse(field="order_id:ord-1"))
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import PayloadUndecodable
from .job import Job, JobFilter
from .search import (
    Found,
    Search,
    error_matches,
    is_sensitive,
    matching_names,
    payload_matches,
    refuse_sensitive,
)
from .store.base import Names

if TYPE_CHECKING:
    from .codec import Codec
    from .store.base import Store
    from .task import TaskRegistry

T = TypeVar("T")
PIECE = 100  # candidates read per trip to the store


class Finding:
    if TYPE_CHECKING:  # what Conveyor (app.py) provides
        registry: TaskRegistry
        codec: Codec

        def call(self, coro_fn: Callable[[Store], Coroutine[Any, Any, T]]) -> T: ...

        def decode(self, job: Job, *, redacted: bool = False) -> Job: ...

        def list_jobs(self, where: JobFilter | None = None, *, after: str | None = None,
                      limit: int = 50, redacted: bool = False,
                      bodies: bool = True, budget: int | None = None) -> list[Job]: ...

    def job_names(self, tenant: str | None = None) -> Names:
        """Task and queue names for autocomplete and name search: the store's (job_names),
        and for an unscoped reader also this app's own tasks and their queues."""
        stored = self.call(lambda store: store.job_names(tenant))
        if tenant is not None:
            return stored  # a tenant is told only the names of its own jobs
        return Names(tuple(sorted({*stored.tasks, *self.registry.names()})),
                     tuple(sorted({*stored.queues, *self.registry.queues()})))

    def resolve_names(self, where: JobFilter, search: Search) -> JobFilter | None:
        """The filter with each name fragment replaced by the names it matches; None when a
        fragment matches no name (nothing can match)."""
        if not (search.task_contains or search.queue_contains):
            return where
        names = self.job_names(where.tenant)
        if search.task_contains:
            where = replace(where, tasks=matching_names(names.tasks, search.task_contains))
            if not where.tasks:
                return None
        if search.queue_contains:
            where = replace(where, queues=matching_names(names.queues, search.queue_contains))
            if not where.queues:
                return None
        return where

    def search_jobs(self, where: JobFilter, search: Search, *, after: str | None = None,
                    limit: int = 50) -> Found:
        """A page of jobs as a reader sees them (redacted), newest first. Without a payload
        or error part this is an ordinary list of the resolved names; with one, a bounded
        scan (search.py)."""
        resolved = self.resolve_names(where, search)
        if resolved is None:
            return Found([], None, 0 if search.scanning else None, True)
        if not search.scanning:
            jobs = self.list_jobs(resolved, after=after, limit=limit + 1, redacted=True)
            more = len(jobs) > limit
            return Found(jobs[:limit], jobs[limit - 1].id if more else None)
        self._check_fields(resolved, search)
        return self._scan(replace(resolved, with_errors=resolved.with_errors or
                                  search.error is not None), search, after, limit)

    def _check_fields(self, where: JobFilter, search: Search) -> None:
        """Refuse a field this process's schemas mark Sensitive for the tasks searched."""
        if search.field is None:
            return
        tasks = ([where.task] if where.task else list(where.tasks) or self.registry.names())
        for name in tasks:
            spec = self.registry.find(name)
            if spec is not None and is_sensitive(spec.sensitive, search.field):
                raise refuse_sensitive(name, search.field_name)

    def _scan(self, where: JobFilter, search: Search, after: str | None,
              limit: int) -> Found:
        found: list[Job] = []
        scanned, last = 0, after
        while scanned < search.scan:
            want = min(PIECE, search.scan - scanned)
            piece = self.call(functools.partial(_page, where=where, after=last, limit=want))
            for job in piece:
                scanned, last = scanned + 1, job.id
                shown = self._matching(job, search)
                if shown is not None:
                    found.append(shown)
                    if len(found) == limit:
                        return Found(found, last, scanned, exhausted=False)
            if len(piece) < want:
                return Found(found, None, scanned, exhausted=True)
        return Found(found, last, scanned, exhausted=False)

    def _matching(self, job: Job, search: Search) -> Job | None:
        """The job as the reader sees it if it matches, else None; SearchRefused if its
        stored paths mark the searched field Sensitive."""
        if search.field is not None:
            if is_sensitive(job.sensitive, search.field):
                raise refuse_sensitive(job.task, search.field_name)
            # the field is not sensitive (here, nor in this process's schemas: _check_fields),
            # so its value in the opened payload is what the reader would see: only a match
            # is revealed whole
            try:
                payload = self.codec.decode(job.payload, job.id, job.tenant)
            except PayloadUndecodable:
                return None
            if not payload_matches(payload, search.field, search.value or ""):
                return None
        shown = self.decode(job, redacted=True)
        if search.error is not None and not error_matches(shown, search.error):
            return None
        return shown


async def _page(store: Store, *, where: JobFilter, after: str | None, limit: int) -> list[Job]:
    """One page of a scan's candidates."""
    return await store.list_jobs(where, after, limit)
