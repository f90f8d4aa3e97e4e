"""Migration 0030 on a store that holds jobs (both stores): after it alone, every list by
queue, task, tenant and states is the jobs that match, newest first (on SQLite the keyed
read of the new index conveyor_jobs_listed serves the rare combinations: sqlite/listing.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.stores import BOTH, LIST_SHAPES, assert_every_list, raw_execute, store_url_for

from conveyor.job import JobState, NewJob, new_id
from conveyor.store.base import open_store

VERSION = 30


def upgraded(make: Callable[[], Any]) -> None:
    async def migrate() -> None:
        store = make()
        newest = [m for m in store._migrations if m.version <= VERSION]
        store._migrations = [m for m in newest if m.version < VERSION]
        await store.migrate()
        made = [NewJob(id=new_id(), payload=b"{}", queue=q, task=t, tenant=tenant,
                       delay=60 if i % 5 == 0 else 0)
                for i, (q, t, tenant) in enumerate(LIST_SHAPES * 10)]
        await store.enqueue_many(made)
        store._migrations = newest
        assert await store.migrate() == 1  # 0030 alone
        await assert_every_list(
            store, made, lambda j: JobState.SCHEDULED if j.delay else JobState.QUEUED,
            ((), (JobState.QUEUED,), (JobState.QUEUED, JobState.SCHEDULED)))
        await store.close()

    asyncio.run(migrate())


@pytest.mark.parametrize("kind", BOTH)
def test_0030_lists_the_jobs_stored_before_it(kind: str, tmp_path: Path) -> None:
    with store_url_for(kind, tmp_path, "t_listed") as url:
        upgraded(lambda: open_store(url))
        if kind == "sqlite":
            assert raw_execute(url)(
                "SELECT name FROM sqlite_master WHERE name = 'conveyor_jobs_listed'", None)
