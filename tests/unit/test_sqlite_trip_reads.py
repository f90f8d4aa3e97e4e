"""The SQLite trip (settle_and_claim with outcomes) reads the queues it claims from, paused
ones left out, in its own write transaction: no read transaction of its own before it, and
a pause committed before the trip takes the write lock is obeyed by its claim."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conveyor.job import NewJob, new_id
from conveyor.store.base import ClaimAsk, Complete, drive_inline
from conveyor.store.sqlite.store import SQLiteStore

T0 = 1_700_000_000.0


def _jobs(n: int, queue: str) -> list[NewJob]:
    return [NewJob(id=new_id(), task="send", queue=queue, payload=b"{}") for _ in range(n)]


def test_a_trip_runs_every_statement_inside_its_one_transaction(tmp_path: Path) -> None:
    store = SQLiteStore(f"sqlite:///{tmp_path / 'trip.db'}")
    seen: list[str] = []

    async def trip() -> None:
        await store.migrate()
        await store.enqueue_many(_jobs(4, "mail"), now=T0)
        ask = ClaimAsk(("mail",), "w1", 2, 30.0)
        held = (await store.settle_and_claim([], ask, now=T0 + 1)).jobs
        conn = store.db._thread_conn()
        conn.set_trace_callback(seen.append)
        answer = await store.settle_and_claim([Complete(j.lease) for j in held], ask,
                                              now=T0 + 2)
        conn.set_trace_callback(None)
        assert answer.applied == [True, True] and len(answer.jobs) == 2
        await store.close()

    asyncio.run(trip())
    statements = [s for s in seen if not s.startswith(("PRAGMA", "--"))]
    assert statements[0] == "BEGIN IMMEDIATE", statements[:3]  # no read before the lock
    assert statements[-1] == "COMMIT"
    assert statements.count("BEGIN IMMEDIATE") == 1


def test_a_pause_committed_before_the_trip_takes_the_lock_is_obeyed(tmp_path: Path) -> None:
    """Another process pauses the queue after the trip was asked for, before its write lock:
    the trip settles its outcomes and claims nothing from the paused queue."""
    url = f"sqlite:///{tmp_path / 'paused.db'}"
    store, other = SQLiteStore(url), SQLiteStore(url)
    write = store.db.write

    @contextmanager
    def paused_first(promise: bool = False, wait: float | None = None
                     ) -> Iterator[sqlite3.Connection]:
        drive_inline(other.pause("mail"))  # a SQLite store's calls run inline
        with write(promise, wait) as conn:
            yield conn

    async def trip() -> None:
        await store.migrate()
        await store.enqueue_many(_jobs(4, "mail"), now=T0)
        ask = ClaimAsk(("mail",), "w1", 2, 30.0)
        held = (await store.settle_and_claim([], ask, now=T0 + 1)).jobs
        store.db.write = paused_first  # type: ignore[method-assign]
        answer = await store.settle_and_claim([Complete(j.lease) for j in held], ask,
                                              now=T0 + 2)
        store.db.write = write  # type: ignore[method-assign]
        assert answer.applied == [True, True]
        assert answer.jobs == []  # the queue was paused before the trip's lock
        await store.resume("mail")
        answer = await store.settle_and_claim([], ask, now=T0 + 3)
        assert len(answer.jobs) == 2
        await store.close()
        await other.close()

    asyncio.run(trip())
