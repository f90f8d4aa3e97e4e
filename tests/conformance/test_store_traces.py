"""Trace contexts: saved before a job is enqueued, read by the worker, pruned once the job is
gone (and only after a grace, as a row is written just before its job)."""

from __future__ import annotations

import pytest

from conveyor.job import new_id
from conveyor.store.base import Store

from .support import T0, enqueue

pytestmark = pytest.mark.anyio

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def test_a_saved_trace_is_read_back(store: Store) -> None:
    job_id = new_id()
    await store.save_traces([(job_id, PARENT)], now=T0)
    assert await store.load_trace(job_id) == PARENT
    assert await store.load_trace(new_id()) is None
    await store.save_traces([(job_id, "00-other")], now=T0)  # the first stays
    assert await store.load_trace(job_id) == PARENT


async def test_traces_of_jobs_gone_are_pruned_after_the_grace(store: Store) -> None:
    kept = await enqueue(store)
    orphan, fresh = new_id(), new_id()
    await store.save_traces([(kept, PARENT), (orphan, PARENT)], now=T0)
    await store.save_traces([(fresh, PARENT)], now=T0 + 250)
    assert await store.prune_traces(now=T0 + 100, grace=300) == 0
    assert await store.prune_traces(now=T0 + 400, grace=300) == 1
    assert await store.load_trace(orphan) is None
    assert await store.load_trace(kept) == PARENT
    assert await store.load_trace(fresh) == PARENT  # may be a job about to be stored
    assert await store.prune_traces(now=T0 + 600, grace=300) == 1
    assert await store.prune_traces(now=T0 + 600, grace=300, limit=5) == 0
