"""A tenant-scoped handle of the app: every read and action sees one tenant's jobs only.

    org = app.for_tenant("org-1")
    job = org.enqueue("send_welcome", {"user_id": "u1"})   # stored with tenant "org-1"
    org.get(other_tenants_job_id)                          # JobNotFound, as if it did not exist
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .errors import ConveyorError
from .job import Job, JobFilter, QueueInfo
from .store.base import Stats

if TYPE_CHECKING:
    from .app import Conveyor
    from .task import Task


class TenantScope:
    def __init__(self, app: Conveyor, tenant: str) -> None:
        if not tenant:
            raise ConveyorError("a tenant scope needs a tenant name")
        self.app = app
        self.tenant = tenant

    def __repr__(self) -> str:
        return f"TenantScope({self.tenant!r})"

    def _options(self, options: dict[str, Any]) -> dict[str, Any]:
        if options.get("tenant") not in (None, self.tenant):
            raise ConveyorError(f"tenant scope {self.tenant!r} cannot enqueue for tenant "
                                f"{options['tenant']!r}")
        return {**options, "tenant": self.tenant}

    def enqueue(self, task: str | Task, payload: Any = None, **options: Any) -> Job:
        return self.app.enqueue(task, payload, **self._options(options))

    async def enqueue_async(self, task: str | Task, payload: Any = None,
                            **options: Any) -> Job:
        return await self.app.enqueue_async(task, payload, **self._options(options))

    def enqueue_many(self, jobs: Iterable[Any]) -> list[Job]:
        scoped = []
        for item in jobs:
            if isinstance(item, dict):
                scoped.append(self._options(item))
            else:
                task, payload, *rest = item
                scoped.append({"task": task, "payload": payload,
                               **self._options(dict(rest[0]) if rest else {})})
        return self.app.enqueue_many(scoped)

    def get(self, job_id: str, *, redacted: bool = False) -> Job:
        return self.app.get(job_id, tenant=self.tenant, redacted=redacted)

    def list_jobs(self, where: JobFilter | None = None, *, after: str | None = None,
                  limit: int = 50, redacted: bool = False) -> list[Job]:
        scoped = replace(where or JobFilter(), tenant=self.tenant)
        return self.app.list_jobs(scoped, after=after, limit=limit, redacted=redacted)

    def wait(self, job_id: str, timeout: float = 30.0) -> Job:
        return self.app.wait(job_id, timeout, tenant=self.tenant)

    def cancel(self, job_id: str) -> Job:
        return self.app.cancel(job_id, tenant=self.tenant)

    def retry(self, job_id: str) -> Job:
        return self.app.retry(job_id, tenant=self.tenant)

    def discard(self, ids: Iterable[str]) -> int:
        return self.app.discard(list(ids), tenant=self.tenant)

    def stats(self) -> Stats:
        return self.app.stats(tenant=self.tenant)

    def queues(self) -> list[QueueInfo]:
        return self.app.queues(tenant=self.tenant)
