"""Migration 0032 on a store that holds jobs in every state (both stores): after it alone,
every list by queue, task, tenant and states is the jobs that match, newest first, the
running ones too (on SQLite the keyed read takes them from conveyor_jobs_running_ids, as
conveyor_jobs_listed no longer holds them: sqlite/listing.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.stores import BOTH, LIST_SHAPES, assert_every_list, raw_execute, store_url_for

from conveyor.job import JobState, NewJob, new_id
from conveyor.store.base import Complete, open_store
from conveyor.store.sqlite.store import SQLiteStore

VERSION = 32


def upgraded(make: Callable[[], Any]) -> None:
    async def migrate() -> None:
        store = make()
        newest = [m for m in store._migrations if m.version <= VERSION]
        store._migrations = [m for m in newest if m.version < VERSION]
        await store.migrate()
        sqlite = isinstance(store, SQLiteStore)
        if sqlite:  # today's claim and settle flip count_mark (0036): the column comes
            # ahead of its migration, and the 0019 trigger stands aside for them as it did
            # for the releases before 0036, by a deferral row (removed after the fill)
            with store.db.write() as conn:
                conn.execute("ALTER TABLE conveyor_jobs ADD COLUMN count_mark "
                             "INTEGER NOT NULL DEFAULT 0")
                conn.execute("INSERT INTO conveyor_count_deferred VALUES (1)")
        made = [NewJob(id=new_id(), payload=b"{}", queue=q, task=t, tenant=tenant)
                for q, t, tenant in LIST_SHAPES * 10]
        await store.enqueue_many(made)
        claimed = await store.claim(None, "w", 80, 60.0)
        await store.settle([Complete(c.lease) for c in claimed[::2]])
        if sqlite:
            with store.db.write() as conn:
                conn.execute("DELETE FROM conveyor_count_deferred")
        state = {j.id: JobState.QUEUED for j in made}
        for n, c in enumerate(claimed):
            state[c.id] = JobState.COMPLETED if n % 2 == 0 else JobState.RUNNING
        store._migrations = newest
        assert await store.migrate() == 1  # 0032 alone
        await assert_every_list(
            store, made, lambda j: state[j.id],
            ((), (JobState.RUNNING,), (JobState.RUNNING, JobState.COMPLETED),
             (JobState.QUEUED, JobState.COMPLETED)))
        await store.close()

    asyncio.run(migrate())


@pytest.mark.parametrize("kind", BOTH)
def test_0032_lists_the_jobs_stored_before_it(kind: str, tmp_path: Path) -> None:
    with store_url_for(kind, tmp_path, "t_listed32") as url:
        upgraded(lambda: open_store(url))
        if kind == "sqlite":
            sql = raw_execute(url)("SELECT sql FROM sqlite_master "
                                   "WHERE name = 'conveyor_jobs_listed'", None)
            assert "state <> 'running'" in str(sql), sql
