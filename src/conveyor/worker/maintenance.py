"""Background upkeep, each a bounded, idempotent run_once that is safe on every node:
promote due scheduled jobs, rescue jobs whose lease ran out, expire jobs past their TTL,
prune finished jobs past retention (and expired dashboard sessions), and enqueue the due
slots of cron schedules."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from .. import _rng
from .._cancel import raise_if_cancelled
from ..alerts import enqueue_wait_alerts
from ..hooks import dead_events
from ..retention import KeepCounts, enforce
from ..scheduler import Scheduler
from ..store.lanes import UPKEEP, outside_upkeep, upkeep

if TYPE_CHECKING:
    from ..app import Conveyor
    from ..clock import Clock

log = logging.getLogger("conveyor.maintenance")
T = TypeVar("T")


async def _await(coro: Coroutine[Any, Any, T]) -> T:
    return await coro


class Maintenance:
    def __init__(self, app: Conveyor, clock: Clock, *, promote_every: float = 1.0,
                 rescue_every: float = 5.0, prune_every: float = 60.0,
                 run: Callable[[Coroutine[Any, Any, Any]], Awaitable[Any]] | None = None) -> None:
        self.app = app
        self.clock = clock
        # the worker runs store calls off its event loop
        self._run_store: Callable[[Coroutine[Any, Any, Any]], Awaitable[Any]] = run or _await
        self._turn: asyncio.Lock | None = None  # run()'s: its store calls one at a time
        self.promote_every = promote_every
        self.rescue_every = rescue_every
        self.prune_every = prune_every
        self.next_due: float | None = None  # earliest scheduled job, so the claim loop wakes
        self._skew_warned = False
        self.scheduler = Scheduler(app, clock)

    async def _run(self, call: Coroutine[Any, Any, T], *, waits: bool = True) -> T:
        """One store call; under run(), one at a time (each concern waits its turn between
        two calls, never for a whole prune), so upkeep needs one connection, not seven: the
        PostgreSQL store serves it from a pool of its own (store/lanes.py), each connection
        a server backend that plans every statement again (issue 15). A promotion the claim
        loop asks for (intake.py, outside the upkeep lane) never waits for upkeep's turn."""
        turn = self._turn  # this call's: run() ends by forgetting it, maybe before we do
        if turn is None or not waits or not UPKEEP.get():
            result: T = await self._run_store(call)
            return result
        try:
            await turn.acquire()
        except asyncio.CancelledError:
            call.close()  # stopped while waiting its turn: the call never started
            raise
        try:
            result = await self._run_store(call)
            return result
        finally:
            # the lock taken, not self._turn: a release that failed on None here replaced a
            # shutdown's CancelledError, and the concern's loop went on for ever (a worker
            # that never stopped)
            turn.release()

    async def promote(self) -> int:
        store = self.app.store
        total = 0
        while True:
            count: int
            next_due: float | None
            before = self.clock.now()
            # not behind upkeep's turn: a job due now must not wait for a prune or a fold
            # batch (upkeep's pool has a second connection for it)
            count, next_due = await self._run(store.promote_scheduled(self.clock.store_now(),
                                                                      1000), waits=False)
            total += count
            if count < 1000:
                break
        self.next_due = self._local_due(next_due, before)
        return total

    def _local_due(self, next_due: float | None, before: float) -> float | None:
        """When the claim loop should promote next, by this host's clock. The store's clock
        said `next_due` is still to come when this host's clock read `before` or later; if
        `before` is past it, this clock runs ahead by at least the difference, and waiting
        for it by this clock would promote in a busy loop until the store's clock caught up.
        Look again after that difference instead (at most `promote_every`: the job starts on
        time by another worker, or within that second by this one)."""
        if next_due is None or next_due > before or self.clock.store_now() is not None:
            return next_due
        ahead = before - next_due
        if ahead >= 1.0 and not self._skew_warned:
            self._skew_warned = True
            log.warning("this host's clock is at least %.1fs ahead of the store's: the store's "
                        "clock decides when jobs are due (check the host's time sync)", ahead)
        return self.clock.now() + min(self.promote_every, max(ahead, 0.05))

    async def rescue(self) -> int:
        # not behind upkeep's turn either: rescue is how jobs get back from a worker that
        # froze, and a frozen worker may hold rows that another upkeep call (a fold's
        # upsert) waits for, holding the turn as long as it stays frozen
        changed = await self._run(self.app.store.rescue_expired_jobs(self.clock.store_now(),
                                                                     1000), waits=False)
        if changed:
            log.warning("rescued %d jobs whose worker stopped heartbeating", len(changed))
            outside_upkeep(self.app.hooks.fire_all, dead_events(changed, "worker_lost"))
        return len(changed)

    async def expire(self) -> int:
        changed = await self._run(self.app.store.expire_jobs(self.clock.store_now(), 1000),
                                  waits=False)
        if changed:
            log.info("expired %d jobs past their TTL", len(changed))
            outside_upkeep(self.app.hooks.fire_all, dead_events(changed, "expired"))
        return len(changed)

    async def prune(self) -> int:
        """Finished jobs past their retention by age and by count (retention.py), and
        expired dashboard sessions; returns how many jobs were deleted."""
        store = self.app.store
        pruned: int = await self._run(store.prune(self.app.retention, self.clock.store_now()))
        pruned += await self.prune_kept()
        await self._run(store.prune_traces(self.clock.store_now(), 1000))  # of jobs gone
        while await self._run(store.prune_sessions(self.clock.store_now(), 1000)) == 1000:
            pass
        # attempt history: its own retention, not the jobs' (stamped by worker clocks)
        now, settings = self.clock.now(), self.app.settings
        await self._run(store.prune_history(now - settings.history_retention,
                                            now - settings.rollup_retention))
        return pruned

    async def prune_kept(self) -> int:
        """Retention by count: CONVEYOR_KEEP_COMPLETED and CONVEYOR_KEEP_DEAD."""
        settings = self.app.settings
        completed = KeepCounts.parse(settings.keep_completed, "CONVEYOR_KEEP_COMPLETED")
        dead = KeepCounts.parse(settings.keep_dead, "CONVEYOR_KEEP_DEAD")
        if completed.empty and dead.empty:
            return 0
        queues = await self._run(self.app.store.queues(None, self.clock.store_now()))
        return await enforce(self.app.store, self._run, queues, completed, dead)

    async def fold_counts(self) -> int:
        """Fold the job counters' deltas into their totals (store/counting.py), so a read of
        the counts sums a few rows, not every change since the last fold. On its own interval
        in run(), not in run_once: the counts are exact unfolded too, and run_until_idle
        calls run_once between every two claims."""
        folded: int = await self._run(self.app.store.fold_counts())
        return folded

    async def fold_history(self) -> int:
        """Move the attempts settles left pending into the attempt history and its rollups
        (store.fold_history), all of them, a bounded batch per transaction. On its own
        interval in run(), like fold_counts: every history read folds first anyway."""
        total = 0
        while True:
            moved: int = await self._run(self.app.store.fold_history(10_000))
            total += moved
            if moved < 10_000:
                return total

    async def alert_waits(self) -> int:
        """Alerts for queues whose oldest job waits past CONVEYOR_ALERT_QUEUE_WAIT."""
        if not self.app.settings.alert_url or self.app.settings.alert_queue_wait <= 0:
            return 0
        queues = await self._run(self.app.store.queues(None, self.clock.store_now()))
        return await enqueue_wait_alerts(self.app, queues)  # on the loop, as hooks enqueue

    async def cron(self) -> int:
        """Enqueue the due slots of the app's schedules (this node's share: duplicates of
        another node's are not counted)."""
        if not self.app.schedules:
            return 0
        count: int = await self._run(self.scheduler.run_once())
        return count

    async def run_once(self) -> dict[str, int]:
        """Every task once, in order. Tests call this after advancing a FakeClock. Cron is not
        among them: it runs in a live worker (run), or by maintenance.cron() when a test asks,
        so run_until_idle does not enqueue a slot that happens to be due."""
        return {"rescued": await self.rescue(), "expired": await self.expire(),
                "promoted": await self.promote(), "pruned": await self.prune(),
                "alerted": await self.alert_waits()}

    async def run(self) -> None:
        """Each concern on its own jittered interval (one shared runner, no logic inside it),
        their store calls one at a time, in the store's upkeep lane."""
        self._turn = asyncio.Lock()
        try:
            with upkeep():
                await self._gather()
        finally:
            self._turn = None

    async def _gather(self) -> None:
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(concern) for concern in (
            _every(self.promote_every, self.promote, "promote"),
            _every(self.promote_every, self.fold_counts, "fold counts"),
            _every(self.promote_every, self.fold_history, "fold history"),
            _every(self.rescue_every, self.rescue, "rescue"),
            _every(self.rescue_every, self.expire, "expire"),
            _every(self.prune_every, self.prune, "prune"),
            _every(self.rescue_every, self.alert_waits, "alerts"),
            self._cron_loop())]
        try:
            await asyncio.gather(*tasks)
        finally:
            # gather ends as soon as one concern raises (a CancelledError from inside a
            # driver included) and leaves the others running: none may outlive run()
            # (once: gather's own cancel already reached them when run() was cancelled, and
            # a second one interrupts psycopg's cancel of the query, closing its connection)
            for task in tasks:
                if not task.done() and not task.cancelling():
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _cron_loop(self) -> None:
        """The scheduler at each slot as it falls due (and at least every 5 s, as schedules
        are registered at import), so a slot's job is enqueued within milliseconds of it."""
        if not self.app.schedules:
            return
        while True:
            wait = 5.0
            try:
                await self.cron()
                now = self.clock.now()
                upcoming = self.scheduler.next_slot(now)
                if upcoming is not None:
                    wait = min(max(upcoming - now, 0.0), 5.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise_if_cancelled(exc)
                log.warning("maintenance cron failed: %s", exc)
            await asyncio.sleep(wait + 0.002)  # just past the slot: it is then due


async def _every(interval: float, action: object, name: str) -> None:
    """Run `action` now and then every `interval` seconds, +/- 20 %, until cancelled."""
    assert callable(action)
    while True:
        try:
            await action()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise_if_cancelled(exc)  # an error that stands in for shutdown's cancel
            log.warning("maintenance %s failed: %s", name, exc)
        await asyncio.sleep(interval * _rng.uniform(0.8, 1.2))
