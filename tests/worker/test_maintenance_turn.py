"""Upkeep's store calls take turns (one connection's worth), but the periodic promotion, the
rescue and the expiry do not wait for the turn: a job due now must not start late behind a
prune or a fold batch, nor a frozen worker's jobs wait for a fold blocked on its rows."""

from __future__ import annotations

import asyncio
import time

import pytest

from conveyor import Conveyor
from conveyor.store.lanes import upkeep
from conveyor.worker.maintenance import Maintenance

pytestmark = pytest.mark.anyio


class HostClock:
    def now(self) -> float:
        return time.time()

    def store_now(self) -> float | None:
        return None


async def test_the_promotion_does_not_wait_for_upkeeps_turn(tmp_path: object) -> None:
    app = Conveyor(f"sqlite:///{tmp_path}/jobs.db")

    @app.task
    def noop(payload: object) -> None:
        return None

    app.migrate()
    app.enqueue("noop", {}, delay=0.05)
    await asyncio.sleep(0.1)
    maintenance = Maintenance(app, HostClock())
    maintenance._turn = asyncio.Lock()  # as run() makes it
    try:
        with upkeep():
            await maintenance._turn.acquire()  # another concern's long call holds the turn
            try:
                promoted = await asyncio.wait_for(maintenance.promote(), 5.0)
            finally:
                maintenance._turn.release()
            assert promoted == 1
            # nor does the rescue (a frozen worker's jobs) or the expiry
            await maintenance._turn.acquire()
            try:
                assert await asyncio.wait_for(maintenance.rescue(), 5.0) == 0
                assert await asyncio.wait_for(maintenance.expire(), 5.0) == 0
                # the long concerns do wait their turn
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(maintenance.fold_counts(), 0.3)
            finally:
                maintenance._turn.release()
    finally:
        app.close()


async def test_no_concern_outlives_run_when_one_ends_on_its_own(tmp_path: object) -> None:
    """A concern that ends with a CancelledError of its own (a driver's, not a shutdown's)
    ended gather while the others ran on; run() then forgot the turn under them, a release
    failed on None, swallowed the shutdown's cancellation, and the worker never stopped."""
    app = Conveyor(f"sqlite:///{tmp_path}/jobs.db")
    app.migrate()
    maintenance = Maintenance(app, HostClock(), promote_every=0.01)

    async def interrupted() -> int:
        await asyncio.sleep(0.05)
        raise asyncio.CancelledError  # as psycopg's "query cancellation interrupted"

    maintenance.prune = interrupted  # type: ignore[method-assign]
    before = asyncio.all_tasks()
    try:
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(maintenance.run(), 5.0)
        await asyncio.sleep(0.05)
        left = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task()]
        assert left == [], left
    finally:
        app.close()
