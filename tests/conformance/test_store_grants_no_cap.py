"""Cap grants while no cap concerns a worker (issue 14: the unlimited drain's cost): its
renewal, holding no grant, reads nothing but the store's limited names, which its claims
read anyway (one read a second for both, not one each); a cap set later, by another process
whose wake-up was not heard, is still granted at a renewal once those names are CAPS_FRESH
seconds old."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from conveyor.limits.claiming import CAPS_FRESH
from conveyor.limits.model import Limit
from conveyor.store.base import Store
from conveyor.store.sqlite.store import SQLiteStore

from .conftest import StoreSetup
from .support import LEASE, T0

pytestmark = pytest.mark.anyio


@contextmanager
def _statements(store: Any) -> Iterator[list[str]]:
    """The statements the store runs meanwhile (SQLite: its connection's trace; PostgreSQL:
    the texts it prepares)."""
    seen: list[str] = []
    if isinstance(store, SQLiteStore):
        with store.db.read() as conn:
            conn.set_trace_callback(seen.append)
            try:
                yield seen
            finally:
                conn.set_trace_callback(None)
        return
    statement = store.statement  # every statement's text passes through it

    def recorded(template: str) -> Any:
        seen.append(template)
        return statement(template)

    store.statement = recorded
    try:
        yield seen
    finally:
        del store.statement


async def test_a_renewal_without_a_grant_or_a_cap_reads_only_the_limited_names(
        store: Store) -> None:
    await store.set_limit(Limit("queue", "other", concurrency=2))  # not this worker's queue
    await store.set_limit(Limit("queue", "mail", rate=5, period=1.0))  # a rate: not granted
    assert await store.renew_grants("w", ["mail"], 10, [], LEASE, now=T0) == []
    with _statements(store) as seen:
        for _ in range(3):  # within CAPS_FRESH of the names' read: no statement at all
            assert await store.renew_grants("w", ["mail"], 10, [], LEASE, now=T0) == []
    assert seen == []
    store._limited.read_at -= CAPS_FRESH  # type: ignore[attr-defined]
    with _statements(store) as seen:
        assert await store.renew_grants("w", ["mail"], 10, [], LEASE, now=T0) == []
    assert len(seen) == 1 and "conveyor_limits" in seen[0]  # the names, read again


async def test_a_cap_set_elsewhere_is_granted_once_the_names_are_read_again(
        store_setup: StoreSetup, store: Store) -> None:
    if not store_setup.shared:
        pytest.skip("the in-memory store cannot be shared between store instances")
    assert await store.renew_grants("w", ["mail"], 10, [], LEASE, now=T0) == []
    other = store_setup.make()  # type: ignore[misc]
    try:
        await other.set_limit(Limit("queue", "mail", concurrency=4))  # its wake-up unheard
    finally:
        await other.close()
    store._limited.read_at -= CAPS_FRESH  # type: ignore[attr-defined]
    [grant] = await store.renew_grants("w", ["mail"], 10, [], LEASE, now=T0 + 1)
    assert (grant.kind, grant.name, grant.cap, grant.slots) == ("queue", "mail", 4, 4)
    # a task's cap concerns a worker that holds the task's jobs
    await store.set_limit(Limit("task", "report", concurrency=3))
    grants = await store.renew_grants("w2", ["x"], 5, [], LEASE, now=T0 + 1, tasks=["report"])
    assert [(g.kind, g.name, g.slots) for g in grants] == [("task", "report", 3)]
