"""A worker's slots: the jobs it runs on its loop, at most `concurrency` at once, and the jobs
it holds claimed for a slot to free up (the buffer). Each job ends in an outcome for the
worker to write back (outcomes.py): its own, a Release when the worker stops it to shut down,
a Cancelled when a cancel request stopped it, and none when its lease went to another worker.

    slots = Slots(10, runner, outcomes, on_done=wake_claim_loop)
    slots.hold(claimed_jobs)        # start what fits now, keep the rest for freed slots

Everything here runs on the worker's loop, except `leases()`, which the heartbeat thread calls
(so `running` and `buffer` change only under `lock`), and `progressed()`, which a sync task
calls from its thread (Outcomes keeps progress under a lock of its own).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ..job import ClaimedJob, Lease
from ..limits.claiming import BOOK_AHEAD
from ..store.base import Cancelled, Release, Settle
from .executor import JobRunner
from .outcomes import Outcomes

if TYPE_CHECKING:
    from ..context import JobContext
    from .grants import WorkerGrants

log = logging.getLogger("conveyor.worker")


class Running:
    __slots__ = ("ctx", "job", "task")

    def __init__(self, job: ClaimedJob, ctx: JobContext, task: asyncio.Task[None]) -> None:
        self.job = job
        self.ctx = ctx
        self.task = task


class Slots:
    def __init__(self, concurrency: int, runner: JobRunner, outcomes: Outcomes,
                 on_done: Callable[[], None]) -> None:
        self.concurrency = concurrency
        self.runner = runner
        self.outcomes = outcomes
        self.on_done = on_done  # a job ended and the claim loop has work: written or claimed
        self.buffer: deque[ClaimedJob] = deque()
        self.running: dict[str, Running] = {}
        self.lock = threading.Lock()
        self.closed = False  # the worker is stopping: start nothing more
        self.gate: WorkerGrants | None = None  # cap grants: a job starts only if they allow
        self.average_duration: float | None = None  # seconds, smoothed over recent jobs
        self.processed = 0
        # Running jobs being stopped, and why; an id leaves when its job ends, so a later
        # claim of the same job is not mistaken for it.
        self._lost: set[str] = set()       # their lease went elsewhere
        self._cancelled: set[str] = set()  # a cancel request

    @property
    def free(self) -> int:
        """Slots neither running nor promised to a held job."""
        return self.concurrency - len(self.running) - len(self.buffer)

    def leases(self) -> list[Lease]:
        """Every lease held, running and waiting; safe from any thread."""
        with self.lock:
            return ([r.job.lease for r in self.running.values()] +
                    [job.lease for job in self.buffer])

    def held_by_queue(self) -> dict[str, int]:
        """The jobs held claimed ahead (not started), by queue; safe from any thread."""
        with self.lock:
            queues = [job.queue for job in self.buffer]
        return {queue: queues.count(queue) for queue in set(queues)}

    def held_jobs(self) -> list[ClaimedJob]:
        """The jobs running and held claimed (on the loop)."""
        return [r.job for r in self.running.values()] + list(self.buffer)

    def known(self) -> set[str]:
        """Jobs this worker runs, holds, or has an outcome to write for."""
        return set(self.running) | {job.id for job in self.buffer} | self.outcomes.job_ids()

    # --- starting ---------------------------------------------------------------------------

    def hold(self, jobs: Iterable[ClaimedJob]) -> None:
        """Take claimed (or handed-off) jobs: start what fits, keep the rest in order."""
        with self.lock:
            self.buffer.extend(jobs)
        self.fill()

    def fill(self) -> None:
        # `gate.held`, not its `active` property: three checks a job, a call each
        if (gate := self.gate) is not None and gate.held:
            self._fill_gated(gate)
            return
        while self.buffer and len(self.running) < self.concurrency and not self.closed:
            with self.lock:
                job = self.buffer.popleft()
            self.start(job)

    def _fill_gated(self, gate: WorkerGrants) -> None:
        """Start held jobs in order, passing over those whose cap grant is full here."""
        while self.buffer and len(self.running) < self.concurrency and not self.closed:
            with self.lock:
                job = next((j for j in self.buffer if gate.allows(j)), None)
                if job is None:
                    return
                self.buffer.remove(job)
            self.start(job)

    def give_back(self, keys: list[tuple[str, str]]) -> int:
        """Give back the held jobs of these caps (their grant here is 0: worker/grants.py)."""
        kinds = set(keys)
        with self.lock:
            back = [j for j in self.buffer if ("queue", j.queue) in kinds
                    or ("task", j.task) in kinds]
            if back:
                ids = {j.id for j in back}
                self.buffer = deque(j for j in self.buffer if j.id not in ids)
        for job in back:
            self.outcomes.add(Release(job.lease))
        return len(back)

    def start(self, job: ClaimedJob) -> None:
        if (gate := self.gate) is not None and gate.held:  # gate.active, without its call
            gate.started(job)
        ctx = self.runner.context(job)
        task = asyncio.get_running_loop().create_task(self._execute(job, ctx))
        with self.lock:
            self.running[job.id] = Running(job, ctx, task)

    async def _until_booked(self, job: ClaimedJob) -> None:
        """A start the store booked a little ahead (ClaimedJob.starts_at) waits for its time,
        never longer than BOOK_AHEAD (the store's clock may be a little off this host's)."""
        assert job.starts_at is not None
        ahead = job.starts_at - self.runner.clock.now()
        if ahead > 0:
            await asyncio.sleep(min(ahead, BOOK_AHEAD))

    async def join(self) -> None:
        """Until every running job has ended."""
        while self.running:
            await asyncio.gather(*(r.task for r in list(self.running.values())),
                                 return_exceptions=True)

    async def _execute(self, job: ClaimedJob, ctx: JobContext) -> None:
        loop = asyncio.get_running_loop()
        # every claim says when it starts (its started_at); only a start booked ahead waits,
        # and the others create and await no coroutine for it. The clock read here is the
        # attempt's start (one read a job, not one here and one in run)
        now: float | None = None
        if job.starts_at is not None:
            now = self.runner.clock.now()
            if job.starts_at > now:
                await self._until_booked(job)
                now = None  # it waited: run reads the clock again
        started = loop.time()
        self.runner.lifecycle.started(job)
        try:
            outcome: Settle | None = await self.runner.run(job, ctx, now)
        except asyncio.CancelledError:
            outcome = self._interrupted(job)
        except Exception as exc:  # a bug of ours: never lose the job over it
            log.exception("executor failed on job %s", job.id)
            outcome = self.runner.failed(job, exc)
        with self.lock:
            self.running.pop(job.id, None)
        if (gate := self.gate) is not None and gate.held:  # gate.active, without its call
            gate.ended(job)
        took = loop.time() - started
        self.runner.lifecycle.ended(job, ctx, outcome, took)
        average = self.average_duration
        self.average_duration = took if average is None else average + 0.2 * (took - average)
        if self._lost or self._cancelled:  # empty but while a job is being stopped
            self._lost.discard(job.id)
            self._cancelled.discard(job.id)
        if outcome is not None:
            self.outcomes.add(outcome)
        self.processed += 1
        self.fill()
        # a slot left free with jobs held: their cap grant is full here (worker/grants.py),
        # so claim for the slot (without grants, fill() leaves none free while jobs wait)
        if not self.buffer or len(self.outcomes) >= self.concurrency or \
                len(self.running) < self.concurrency:
            self.on_done()

    def _interrupted(self, job: ClaimedJob) -> Settle | None:
        if job.id in self._lost:
            return None  # its lease is gone: another worker owns it now
        if job.id in self._cancelled:
            return Cancelled(job.lease, "cancelled while running")
        return Release(job.lease)  # shutdown: give it back untouched

    def progressed(self, job_id: str, percent: float, step: str | None) -> None:
        running = self.running.get(job_id)
        if running is not None:
            self.outcomes.progressed(running.job.lease, percent, step)

    # --- stopping ---------------------------------------------------------------------------

    def lose(self, job_id: str) -> None:
        """Its lease went to another worker: stop it, write nothing for it."""
        with self.lock:
            self.buffer = deque(job for job in self.buffer if job.id != job_id)
        if job_id in self.running:  # its end must write nothing (_interrupted)
            self._lost.add(job_id)
            self._stop(job_id)

    def cancel(self, job_id: str) -> bool:
        """A cancel request: stop it if it runs; a held job that never started is cancelled
        here and now (True: there is an outcome to write)."""
        if job_id in self.running:  # its end writes Cancelled (_interrupted)
            self._cancelled.add(job_id)
            self._stop(job_id)
        with self.lock:
            unstarted = [job for job in self.buffer if job.id == job_id]
            if unstarted:
                self.buffer = deque(job for job in self.buffer if job.id != job_id)
        for job in unstarted:  # claimed ahead, never started: it must not run now
            self.outcomes.add(Cancelled(job.lease, "cancelled before it started"))
        return bool(unstarted)

    def _stop(self, job_id: str) -> None:
        running = self.running.get(job_id)
        if running is not None:
            running.ctx._cancel()
            running.task.cancel()

    def release_held(self) -> None:
        """Give back every held job that has not started (shutting down)."""
        with self.lock:
            unstarted, self.buffer = list(self.buffer), deque()
        for job in unstarted:
            self.outcomes.add(Release(job.lease))

    async def wind_down(self, grace: Callable[[], float]) -> None:
        """Let running jobs finish within the grace period (read again as it runs: a second
        interrupt sets it to 0), then stop the rest and give their jobs back."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace()
        if self.running:
            log.info("waiting up to %gs for %d running jobs", grace(), len(self.running))
        while self.running and grace() > 0 and loop.time() < deadline:
            await asyncio.sleep(0.05)  # jobs leave `running` as they finish
        still = list(self.running.values())
        for running in still:  # past the grace period: stop them, give their jobs back
            running.ctx._cancel()
            running.task.cancel()
        if still:
            await asyncio.wait([r.task for r in still], timeout=2.0)
        with self.lock:
            leftover = list(self.running.values())
            self.running.clear()
        for running in leftover:
            self.outcomes.add(Release(running.job.lease))
