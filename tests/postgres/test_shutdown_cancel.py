"""A shutdown cancels a maintenance concern in the middle of a query, and the runner cancels
it again: psycopg, interrupted while it cancels the query on the server, closes the
connection, and the transaction's exit then fails on it with an OperationalError in place of
the CancelledError. The concern, which logs errors and goes on, must stop all the same
(CI saw `conveyor worker` processes that never exited after SIGTERM)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import pytest

from conveyor import Conveyor
from conveyor.errors import StoreUnavailable
from conveyor.store.postgres.connection import LoopPools
from conveyor.store.postgres.store import PostgresStore
from conveyor.store.postgres.vacuums import vacuum_at_most_every
from conveyor.worker.loop import run as run_loop
from conveyor.worker.maintenance import _every

from .conftest import admin_connect

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

# a VACUUM that waits for a lock (the store's own skip locked tables)
WAITING_VACUUM = "VACUUM (ANALYZE) {schema}.conveyor_count_deltas"


async def _cancel_twice(task: asyncio.Task[None], started: asyncio.Event) -> None:
    await started.wait()
    await asyncio.sleep(0.1)  # the query is on the server
    task.cancel()
    for _ in range(3):  # psycopg is now asking the server to cancel it
        await asyncio.sleep(0)
    task.cancel()


async def test_a_vacuum_cancelled_twice_stops_its_concern(store: PostgresStore,
                                                          schema: str) -> None:
    """The store's vacuum (vacuums.py) waits for a table another session has locked, and
    shutdown cancels it twice: its concern ends, and the vacuum's lock is not left behind."""
    started = asyncio.Event()
    calls = 0

    async def vacuum() -> None:
        nonlocal calls
        calls += 1
        store.__dict__.pop("_vacuumed_at", None)  # due each time
        started.set()
        await vacuum_at_most_every(store, WAITING_VACUUM, 30.0)

    with admin_connect() as blocker:
        for _ in range(3):  # the second cancel's moment varies: it must hold each time
            blocker.execute("BEGIN")
            blocker.execute(f"LOCK TABLE {schema}.conveyor_count_deltas "
                            "IN SHARE UPDATE EXCLUSIVE MODE")
            started.clear()
            task = asyncio.get_running_loop().create_task(_every(0.05, vacuum, "test"))
            await _cancel_twice(task, started)
            done, _ = await asyncio.wait([task], timeout=3.0)
            assert task in done, "the concern went on after its cancellation"
            assert task.cancelled()
            blocker.execute("ROLLBACK")
        assert calls >= 3
        # the closed connections' backends end, and their session locks with them
        deadline = time.monotonic() + 5.0
        while blocker.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND objid = %s::regclass::oid",
                (f"{schema}.conveyor_count_deltas",)).fetchone() != (0,):
            assert time.monotonic() < deadline, "a cancelled vacuum's lock was left behind"
            time.sleep(0.05)


async def test_a_closed_connection_error_outside_a_cancel_stays_an_outage(
        store: PostgresStore) -> None:
    """Without a cancel pending the same error is an outage (StoreUnavailable), not a stop."""
    with pytest.raises(StoreUnavailable):
        async with store.pools.connection() as conn:
            await conn.close()
            await conn.execute("SELECT 1")


def test_a_worker_lets_go_of_its_loops_connections_as_it_stops(url: str, schema: str) -> None:
    """A worker's loop ends with no pool of its own left open (the pool's tasks would outlive
    the loop: psycopg_pool takes the cancel of a reconnect for a failed connect and tries
    again, and the loop's end waits for ever). Stopped while its pool reconnects."""
    app = Conveyor(url)
    app.migrate()

    @app.task(queue="default")
    def noop(payload: dict[str, int]) -> None:
        return None

    worker = app.worker(concurrency=2)
    loops: list[asyncio.AbstractEventLoop] = []

    async def main() -> None:
        loops.append(asyncio.get_running_loop())
        running = asyncio.get_running_loop().create_task(worker.run(install_signals=False))
        await asyncio.sleep(0.5)
        with admin_connect() as admin:  # every connection of the worker's pool ends
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE application_name = %s AND pid <> pg_backend_pid()", (schema,))
        await asyncio.sleep(0.05)
        worker.stop()
        await running

    ended = threading.Event()

    def in_thread() -> None:
        run_loop(main())
        ended.set()

    threading.Thread(target=in_thread, daemon=True).start()
    assert ended.wait(20), "the worker's loop did not end"
    assert not [key for key in app.store.pools._pools if key[0] is loops[0]]
    app.close()


async def test_a_task_that_swallowed_a_cancel_still_meets_an_outage_as_one(
        store: PostgresStore) -> None:
    """Only an error that replaced a CancelledError stands for one: a task that once caught a
    cancel and went on (it still counts it) gets StoreUnavailable for a real outage."""
    async def body() -> None:
        with contextlib.suppress(asyncio.CancelledError):  # swallowed, not uncancelled
            await asyncio.sleep(10)
        with pytest.raises(StoreUnavailable):
            async with store.pools.connection() as conn:
                await conn.close()
                await conn.execute("SELECT 1")

    task = asyncio.get_running_loop().create_task(body())
    await asyncio.sleep(0.01)
    task.cancel()
    await task


async def test_a_call_waiting_for_a_connection_as_the_loop_is_released_gets_one(
        url: str) -> None:
    """release_loop() closes the loop's pools while the loop goes on (a worker stopped beside
    the demo's dashboard): a call already waiting for a connection gets one of a new pool."""
    store = PostgresStore(url + "&pool_size=1")
    await store.open()
    await store.migrate()
    try:
        async with store.pools.connection() as held:
            async def wait_for_one() -> int:
                async with store.pools.connection() as conn:
                    [(one,)] = await (await conn.execute("SELECT 1")).fetchall()
                    return int(one)

            waiter = asyncio.get_running_loop().create_task(wait_for_one())
            await asyncio.sleep(0.1)  # waiting for the one connection
            await store.release_loop()
            await held.execute("SELECT 1")  # the held one works on until given back
        assert await asyncio.wait_for(waiter, 10) == 1
    finally:
        await store.close()


def test_a_pool_cancelled_as_it_opens_is_closed(url: str) -> None:
    """A cancel while the loop's pool opens (SIGTERM in a worker's first moments) leaves no
    pool task behind: nobody else could close that pool, and the loop's end would wait for
    its tasks for ever."""
    async def main() -> list[asyncio.Task[object]]:
        stores = []
        for delay_ms in (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 30):
            pools = PostgresStore(url).pools  # each its own first use: a pool opening
            stores.append(pools)

            async def use(pools: LoopPools = pools) -> None:
                async with pools.connection() as conn:
                    await conn.execute("SELECT 1")

            task = asyncio.get_running_loop().create_task(use())
            await asyncio.sleep(delay_ms / 1000)
            task.cancel()
            await asyncio.wait([task])
        for pools in stores:
            await pools.close_loop()
        await asyncio.sleep(0.1)
        return [task for task in asyncio.all_tasks()
                if "psycopg_pool" in task.get_coro().cr_code.co_filename]  # type: ignore[union-attr]

    left: list[list[asyncio.Task[object]]] = []
    ended = threading.Event()

    def in_thread() -> None:
        left.append(run_loop(main()))
        ended.set()

    threading.Thread(target=in_thread, daemon=True).start()
    assert ended.wait(30), "the loop did not end"
    assert left == [[]]
