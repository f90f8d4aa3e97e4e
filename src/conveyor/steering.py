"""Reading and steering jobs: the part of Conveyor's API that looks at stored jobs and acts
on them one at a time (get, list, wait, cancel, retry, discard), and the cluster's figures
(stats, queues, workers). A mixin of Conveyor (app.py), kept apart so that each
module stays readable."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .disclosure import reveal
from .errors import InvalidTransition, JobNotFound, WaitTimeout
from .job import Job, JobFilter, JobState, QueueInfo, WorkerInfo
from .store.base import Stats

if TYPE_CHECKING:
    from .clock import Clock
    from .codec import Codec
    from .hooks import Hooks
    from .store.base import Store
    from .task import TaskRegistry

T = TypeVar("T")


class Steering:
    if TYPE_CHECKING:  # what Conveyor (app.py) provides
        registry: TaskRegistry
        codec: Codec
        hooks: Hooks
        clock: Clock

        @property
        def store(self) -> Store: ...

        def call(self, coro_fn: Callable[[Store], Coroutine[Any, Any, T]]) -> T: ...

    def get(self, job_id: str, *, tenant: str | None = None,
            redacted: bool = False) -> Job:
        job = self.call(lambda s: s.get(job_id, tenant))
        if job is None:
            raise JobNotFound(job_id)
        return self.decode(job, redacted=redacted)

    async def get_async(self, job_id: str, *, tenant: str | None = None,
                        redacted: bool = False) -> Job:
        job = await self.store.get(job_id, tenant)
        if job is None:
            raise JobNotFound(job_id)
        return self.decode(job, redacted=redacted)

    def decode(self, job: Job, *, redacted: bool = False) -> Job:
        """The job with its payload, result and errors decoded (and, if `redacted`, its
        sensitive fields masked and their values scrubbed: disclosure.py)."""
        return reveal(job, self.codec, self.registry, redacted=redacted)

    def list_jobs(self, where: JobFilter | None = None, *, after: str | None = None,
                  limit: int = 50, redacted: bool = False, bodies: bool = True,
                  budget: int | None = None) -> list[Job]:
        """bodies=False: payload, result, errors and progress step are neither read nor shown.
        budget=N: stop once the jobs' stored bodies reach N bytes (the store's list_jobs):
        fewer than `limit` jobs is then not the end; go on after the last one."""
        jobs = self.call(lambda s: s.list_jobs(where or JobFilter(), after, limit, bodies=bodies,
                                               budget=budget))
        return [self.decode(j, redacted=redacted) if bodies else j for j in jobs]

    def wait(self, job_id: str, timeout: float = 30.0, *,
             tenant: str | None = None) -> Job:
        """Block until the job is terminal (completed, dead or cancelled) and return it."""
        deadline = time.monotonic() + timeout
        pause = 0.005
        while True:
            job = self.get(job_id, tenant=tenant)
            if job.terminal:
                return job
            if time.monotonic() >= deadline:
                raise WaitTimeout(job_id, timeout, str(job.state))
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 1.5, 0.1)

    def cancel(self, job_id: str, *, tenant: str | None = None) -> Job:
        """Cancel a waiting job at once; a running one is asked to stop."""
        before = self.get(job_id, tenant=tenant).state if self.hooks.wanted("cancelled") else None
        outcome = self.call(lambda s: s.cancel([job_id], tenant, self.clock.store_now()))[job_id]
        job = self._after_control(job_id, outcome, "cancel", tenant)
        if outcome == "cancelled" and before not in (None, JobState.CANCELLED):
            self.hooks.cancelled(job)  # a waiting job, cancelled here (a running one: its worker)
        return job

    def retry(self, job_id: str, *, tenant: str | None = None) -> Job:
        """Run a dead, cancelled or waiting-to-retry job again now, with fresh attempts."""
        outcome = self.call(lambda s: s.requeue([job_id], tenant, self.clock.store_now()))[job_id]
        return self._after_control(job_id, outcome, "retry", tenant)

    def _after_control(self, job_id: str, outcome: str, action: str,
                       tenant: str | None) -> Job:
        if outcome == "not_found":
            raise JobNotFound(job_id)
        if outcome not in ("cancelled", "cancel_requested", "queued"):
            raise InvalidTransition(job_id, outcome.removeprefix("already_"), action)
        return self.get(job_id, tenant=tenant)

    def discard(self, ids: Sequence[str], *, tenant: str | None = None) -> int:
        """Delete finished jobs (dead, cancelled, completed) now; returns how many. Jobs
        still waiting or running are left alone: cancel them first."""
        return self.call(lambda s: s.discard(list(ids), tenant))

    def retry_dead(self, queue: str | None = None, *, tenant: str | None = None,
                   limit: int = 1000) -> int:
        """Requeue dead jobs (of one queue), up to `limit`; returns how many."""
        dead = self.list_jobs(JobFilter(states=(JobState.DEAD,), queue=queue, tenant=tenant),
                              limit=limit, bodies=False)
        if not dead:
            return 0
        ids = [j.id for j in dead]
        outcomes = self.call(lambda s: s.requeue(ids, tenant, self.clock.store_now()))
        return sum(1 for o in outcomes.values() if o == "queued")

    def stats(self, *, tenant: str | None = None) -> Stats:
        return self.call(lambda s: s.stats(tenant, self.clock.store_now()))

    def queues(self, *, tenant: str | None = None) -> list[QueueInfo]:
        return self.call(lambda s: s.queues(tenant, self.clock.store_now()))

    def workers(self) -> list[WorkerInfo]:
        return self.call(lambda s: s.workers(self.clock.store_now()))

    def pause(self, queue: str) -> None:
        self.call(lambda s: s.pause(queue))

    def resume(self, queue: str) -> None:
        self.call(lambda s: s.resume(queue))
