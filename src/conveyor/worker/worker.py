"""The worker: `concurrency` slots on one asyncio loop, fed by a batched claim loop.

One loop claims `min(free slots + prefetch, batch)` jobs per store call, starts them, and
writes finished outcomes back in batches. It wakes on a store notification, a freed slot or a
jittered poll (how many to claim, and when to go round again: intake.py). A heartbeat thread
extends every held lease in one call, so a CPU-bound task cannot make its own job look dead.
Sync task functions run in a thread pool sized to the slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..clock import Clock
from ..job import ClaimedJob, Lease, WorkerInfo
from ..observability.logs import apply_log_settings
from ..store.base import (
    LIMITS_HINT,
    SCHEDULED_HINT,
    ClaimAsk,
    Fail,
    Release,
    Settle,
    Snooze,
)
from .caps import Caps
from .executor import JobRunner
from .grants import WorkerGrants
from .handoffs import HandOffs
from .heartbeat import Heartbeat
from .intake import Intake
from .maintenance import Maintenance
from .outcomes import Outcomes
from .pacing import Pacing
from .slots import Slots
from .storecalls import StoreCalls
from .watchdog import LeaseWatch

if TYPE_CHECKING:
    from ..app import Conveyor

log = logging.getLogger("conveyor.worker")


class Worker:
    """Runs jobs from the store until stopped.

    >>> worker = app.worker(queues=["emails"], concurrency=10)   # doctest: +SKIP
    >>> asyncio.run(worker.run())                                 # until SIGTERM / SIGINT
    """

    def __init__(self, app: Conveyor, *, queues: list[str] | tuple[str, ...] | None = None,
                 concurrency: int | None = None, prefetch: int | None = None,
                 lease: float | None = None, heartbeat: float | None = None,
                 poll_interval: float | None = None, grace: float | None = None,
                 clock: Clock | None = None, maintenance: bool = True,
                 worker_id: str | None = None) -> None:
        s = app.settings
        self.app = app
        self.store = app.store
        self.clock = clock or app.clock
        # By default a worker serves the queues of the tasks it knows, so it never claims jobs
        # it cannot run; "*" (or an app with no tasks) means every queue.
        if queues and "*" in queues:
            self.queues: tuple[str, ...] | None = None
        elif queues:
            self.queues = tuple(queues)
        else:
            self.queues = tuple(app.registry.queues()) or None
        self.concurrency = concurrency or s.concurrency
        self.lease = lease or s.lease
        self.heartbeat_interval = heartbeat or min(s.heartbeat or 5.0, self.lease / 3)
        self.poll_interval = poll_interval or s.poll_interval
        self.grace = s.grace if grace is None else grace
        self.host = socket.gethostname()
        self.id = worker_id or f"{self.host}:{os.getpid()}:{os.urandom(3).hex()}"
        self.threads = ThreadPoolExecutor(max_workers=self.concurrency,
                                          thread_name_prefix="conveyor-task")
        self.store_calls = StoreCalls(self.store)  # an inline store's on a thread of its own
        self._off_loop = self.store_calls.run
        self.runner = JobRunner(app, self.id, self.host, self.threads, self.clock,
                                logging.getLogger("conveyor.task"), self._on_progress)
        self.outcomes = Outcomes(self.runner.lifecycle.written, self.runner.stamp)
        self.slots = Slots(self.concurrency, self.runner, self.outcomes, self._wake_up)
        self.maintenance = (Maintenance(app, self.clock, run=self._off_loop) if maintenance
                            else None)
        self.heartbeat = Heartbeat(self)
        self.watch = LeaseWatch(self.lease, self.heartbeat_interval)
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self.handoffs = HandOffs(self.concurrency, 2 * self.poll_interval + 1.0)
        self.pacing = Pacing(self.store, self.queues)  # wake when a rate has room again
        self.caps = Caps()  # retry soon when a full cap cut a claim short
        tasks = tuple(app.registry.names())  # the caps of the tasks it runs, as it holds them
        self.grants = WorkerGrants(lambda asks: self._off_loop(self.store.renew_grants(
            self.id, self.queues, self.concurrency, asks, self.lease, self.clock.store_now(),
            *self.grants.ask_for(self.concurrency, self.queues, tasks or None))),
            self.lease, self.slots)  # grants.py: each cap asked for the slots it could use
        self.intake = Intake(self.slots, self.pacing, self.clock,
                             self.concurrency if prefetch is None else prefetch,
                             self.poll_interval, self.maintenance)  # how much, and when
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def info(self) -> WorkerInfo:
        ahead = self.slots.held_by_queue()  # prefetched, not started
        return WorkerInfo(id=self.id, host=self.host, pid=os.getpid(),
                          queues=self.queues or ("*",), concurrency=self.concurrency,
                          claimed=sum(ahead.values()), claimed_queues=ahead)

    def leases(self) -> list[Lease]:
        """Every lease this worker holds (running and prefetched); safe from any thread."""
        return self.slots.leases()

    @property
    def processed(self) -> int:
        return self.slots.processed

    @property
    def lost(self) -> int:
        """Outcomes dropped because their job's lease had moved on to another worker."""
        return self.outcomes.lost

    # --- test door: no loop of our own, no sleeping ---------------------------------------

    async def run_once(self) -> int:
        """Claim up to `concurrency` jobs, run them all to the end and write their outcomes.
        Returns how many jobs ran. For tests with a FakeClock."""
        self._ensure_loop_state()
        _, jobs, failure = await self._exchange([], self.concurrency)
        if failure is not None:
            raise failure
        for job in jobs:
            self.slots.start(job)
        await self.slots.join()
        await self.flush()
        await self.app.hooks.drain()
        return len(jobs)

    async def run_until_idle(self, max_rounds: int = 10_000) -> int:
        """run_once (with maintenance) until nothing is left to run now; returns the count."""
        total = 0
        for _ in range(max_rounds):
            if self.maintenance is not None:
                await self.maintenance.run_once()
            ran = await self.run_once()
            total += ran
            if not ran:
                break
        return total

    # --- the real loop --------------------------------------------------------------------

    async def run(self, install_signals: bool = True, release_loop: bool = True) -> None:
        """Run until stop() (or SIGTERM/SIGINT when `install_signals`); then let go of the
        store's connections on this loop (unless `release_loop` is False: a group's workers
        share the loop, and the group does it once they have all stopped)."""
        self._ensure_loop_state()
        apply_log_settings(self.app.settings)  # embedded too, not only `conveyor worker`
        loop = asyncio.get_running_loop()
        await self.app.check_schema()
        await self.declare_limits()
        if self.maintenance is not None:
            self.maintenance.scheduler.check()
        stop_listening = await self.store.listen(self._on_notify, self.id, self._on_job)
        if install_signals:
            self._install_signals(loop)
        self.heartbeat.start()
        background = [loop.create_task(self.maintenance.run())] if self.maintenance else []
        background.append(loop.create_task(self.watch.run(self.leases, self.slots.lose)))
        log.info("worker %s started: queues=%s concurrency=%d", self.id,
                 ",".join(self.queues or ("*",)), self.concurrency)
        try:
            await self._claim_loop()
        finally:
            try:
                for task in background:
                    task.cancel()
                await self._shutdown()
                # they end before the loop does (a query they were in is cancelled)
                await asyncio.wait(background, timeout=5.0)
                await self.app.hooks.drain()
                await stop_listening()
            finally:
                # also when a second cancel cut the steps above short: a heartbeat left
                # running would renew the given-up jobs' leases, and no rescue would come
                self.heartbeat.stop()
                try:
                    with contextlib.suppress(Exception):
                        await self.store.deregister_worker(self.id)
                    if release_loop:
                        with contextlib.suppress(Exception):
                            await self.store.release_loop()
                finally:
                    self.close()
            log.info("worker %s stopped after %d jobs", self.id, self.processed)

    async def declare_limits(self) -> None:
        """Write the limits the app declares in code (limits/control.py) to the store."""
        if declared := self.app.limits.declared():
            await self._off_loop(self.store.declare_limits(declared, self.clock.store_now()))

    def close(self) -> None:
        """Release the worker's thread pools (run() does it when it returns)."""
        self.threads.shutdown(wait=False, cancel_futures=True)
        self.store_calls.close()

    def stop(self, now: bool = False) -> None:
        """Stop claiming; running jobs get the grace period to finish (none with `now`), then
        are stopped and given back to the queue. Thread-safe."""
        if self._loop is not None and self._loop is not _current_loop():
            self._loop.call_soon_threadsafe(self.stop, now)
            return
        if now:
            self.grace = 0
        if not self._stopping:
            log.info("worker %s stopping: %d running, %d prefetched", self.id,
                     len(self.slots.running), len(self.slots.buffer))
        self._stopping = self.slots.closed = True
        if self._wake is not None:
            self._wake.set()

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        def on_signal(sig: signal.Signals) -> None:
            if self._stopping and sig == signal.SIGINT:
                log.warning("second interrupt: not waiting for running jobs")
                self.stop(now=True)
            else:
                self.stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)

    async def _claim_loop(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            self._wake.clear()
            if self.intake.schedule_due():
                await self.intake.promote()
            if self.grants.due() and await self.grants.renew_round():
                self._wake_up()  # held jobs given back: write their releases
            # a holder claims ahead of its grants, so far (grants.py)
            want = self.grants.claim_room(self.intake.wanted(), self.queues)
            self.handoffs.claiming = True  # until the claimed jobs are held
            try:
                jobs = await self._settle_and_claim(max(want, 0), pace=True)
                self.handoffs.claimed(len(jobs), want)
                if jobs:
                    self.slots.hold(jobs)
            finally:
                self.handoffs.claiming = False
            if jobs and len(jobs) == want:
                await asyncio.sleep(0)  # let the slots run, then come back for more
                continue
            # a claim a full concurrency cap cut short retries soon, not at the poll (caps.py)
            await self._wait(min(self.caps.delay(self.intake.delay()),
                                 self.grants.until_due()))

    async def _settle_and_claim(self, want: int, pace: bool = False) -> list[ClaimedJob]:
        """Write finished outcomes, then claim up to `want` jobs: one trip to the store
        (`pace`: and after a short claim, when a rate has room again: pacing.py)."""
        items = self.outcomes.take()
        applied, jobs, failure = await self._exchange(items, want, pace)
        if applied is None:  # the outcomes were not written: keep them for the next trip
            self.outcomes.put_back(items)
        else:
            self.outcomes.report(items, applied)
            if any(isinstance(item, (Fail, Snooze)) for item in items):
                self.intake.schedule_dirty = True  # a retry was scheduled: when is it due
        if failure is not None:  # store down or locked: back off, keep running jobs
            log.warning("store unavailable, retrying: %s", failure)
            await asyncio.sleep(min(self.poll_interval, 1.0))
        return jobs

    async def _exchange(self, items: list[Settle], want: int, pace: bool = False
                        ) -> tuple[list[bool] | None, list[ClaimedJob], Exception | None]:
        """Settle `items` and claim up to `want` jobs in one store call (settle_and_claim: the
        slots the settle frees are claimed again in the same trip). A failure is returned,
        not raised, so that a settle that succeeded is never written twice because the
        claim after it failed."""
        store, now = self.store, self.clock.store_now()
        claiming = want > 0 and not self._stopping
        if not items and not claiming:
            return [], [], None
        ask = ClaimAsk(self.queues, self.id, want if claiming else 0, self.lease,
                       self.handoffs.offer(self._stopping) if claiming else None,
                       self.grants.holding() if claiming else None)

        async def both() -> tuple[list[bool] | None, list[ClaimedJob], Exception | None]:
            try:
                answer = await store.settle_and_claim(items, ask, now)
            except Exception as exc:
                return None, [], exc
            if pace:
                self.caps.after_claim(answer)  # cut short by a full cap: ask again soon
            if answer.claim_failed is not None:
                return answer.applied, [], answer.claim_failed
            try:
                if pace and claiming:
                    await self.pacing.after_claim(len(answer.jobs), want, now,
                                                  self.clock.now())
            except Exception as exc:
                return answer.applied, answer.jobs, exc
            return answer.applied, answer.jobs, None

        return await self._off_loop(both())

    async def _wait(self, timeout: float) -> None:
        assert self._wake is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._wake.wait()

    def _on_job(self, job: ClaimedJob) -> None:
        """A job handed to this worker by its enqueue (store hand-off): start it now, or
        give it back if this worker is stopping."""
        self.handoffs.heard()
        if not self.handoffs.accepts(job):
            return  # given back as never heard of (a loop blocked past two heartbeats)
        if self._stopping:
            self.outcomes.add(Release(job.lease))
            self._wake_up()
            return
        self.slots.hold([job])

    def _on_notify(self, queue: str) -> None:
        self.handoffs.heard()
        if self._wake is None:
            return
        if queue == SCHEDULED_HINT:
            self.intake.schedule_dirty = True
            self._wake.set()
        elif queue == LIMITS_HINT:  # a limit changed: claim at once, with grants renewed
            self.grants.next_at = 0.0
            self._wake.set()
        elif queue == "*" or self.queues is None or queue in self.queues:
            self._wake.set()

    # --- running jobs ---------------------------------------------------------------------

    def _wake_up(self) -> None:
        """Have the claim loop go round now: outcomes to write, or slots to fill."""
        if self._wake is not None:
            self._wake.set()

    def _on_progress(self, job_id: str, percent: float, step: str | None) -> None:
        self.slots.progressed(job_id, percent, step)

    async def flush(self) -> None:
        """Write every finished outcome and progress now."""
        items = self.outcomes.take()
        if not items:
            return
        applied, _, failure = await self._exchange(items, 0)
        if applied is None:
            log.warning("could not write %d outcomes, will retry: %s", len(items), failure)
            self.outcomes.put_back(items)
            await asyncio.sleep(0.5)
            return
        self.outcomes.report(items, applied)

    # --- lost leases, cancel requests (from the heartbeat thread) -------------------------

    def on_heartbeat(self, lost: frozenset[str], cancel: frozenset[str],
                     unknown: tuple[Lease, ...] = ()) -> None:
        """Called on the loop: stop jobs whose lease is gone or that were cancelled; give
        back jobs leased to this worker that it has not heard of at two heartbeats in a row
        (a hand-off whose wake-up was lost)."""
        for lease in self.handoffs.strangers(unknown, self.slots.known()):
            log.warning("job %s was handed to this worker but its wake-up never came: giving "
                        "it back to its queue", lease.job_id)
            self.outcomes.add(Release(lease))
            self._wake_up()
        for job_id in lost:
            self.slots.lose(job_id)
        for job_id in cancel:
            if self.slots.cancel(job_id):
                self._wake_up()

    # --- shutdown -------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        self._stopping = self.slots.closed = True  # also when the claim loop failed
        try:  # first: no more hand-offs (one still on its way is given back on arrival)
            await self._off_loop(self.store.withdraw_offer(self.id))
        except Exception as exc:
            log.warning("could not withdraw this worker's offer: %s", exc)
        self.slots.release_held()
        await self.flush()
        await self.slots.wind_down(lambda: self.grace)
        await self.flush()

    def _ensure_loop_state(self) -> None:
        if self._wake is None:
            self._wake = asyncio.Event()
            self._loop = asyncio.get_running_loop()
            self.intake.schedule_dirty = True


def _current_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def run_worker(app: Conveyor, **options: Any) -> int:
    """Run one worker in this process until SIGTERM/SIGINT; the process's exit status."""
    from .loop import run

    worker = app.worker(**options)
    run(worker.run())
    return 0  # note: sync jobs past the grace may still hold threads; exit with os._exit
