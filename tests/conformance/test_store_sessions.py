"""Dashboard sessions in the store: opened, found while live (idle and absolute expiry),
extended, revoked, and pruned once expired. The store sees hashes only."""

from __future__ import annotations

import time

import pytest

from conveyor.store.base import Store

from .conftest import StoreSetup
from .support import T0

pytestmark = pytest.mark.anyio

IDLE = 600.0
LIFETIME = 3600.0


async def test_a_new_session_is_found_with_its_deadlines(store: Store) -> None:
    made = await store.create_session("h1", "check-1", IDLE, LIFETIME, now=T0)
    assert (made.id_hash, made.token_check, made.created_at) == ("h1", "check-1", T0)
    assert (made.idle_expires_at, made.expires_at) == (T0 + IDLE, T0 + LIFETIME)
    found = await store.find_session("h1", now=T0 + 10)
    assert found is not None
    assert (found.token_check, found.created_at, found.checked_at) == ("check-1", T0, T0 + 10)
    assert (found.idle_expires_at, found.expires_at) == (T0 + IDLE, T0 + LIFETIME)
    assert await store.find_session("unknown", now=T0) is None


async def test_a_session_left_idle_ends(store: Store) -> None:
    await store.create_session("h1", "c", IDLE, LIFETIME, now=T0)
    assert await store.find_session("h1", now=T0 + IDLE - 1) is not None
    assert await store.find_session("h1", now=T0 + IDLE) is None
    assert await store.extend_session("h1", IDLE, now=T0 + IDLE + 1) is False
    assert await store.find_session("h1", now=T0 + IDLE + 1) is None


async def test_use_extends_the_idle_deadline_but_not_past_the_lifetime(store: Store) -> None:
    await store.create_session("h1", "c", IDLE, LIFETIME, now=T0)
    assert await store.extend_session("h1", IDLE, now=T0 + 500) is True
    found = await store.find_session("h1", now=T0 + 900)
    assert found is not None and found.idle_expires_at == T0 + 500 + IDLE
    at = T0
    while at + 500 < T0 + LIFETIME:
        at += 500
        assert await store.extend_session("h1", IDLE, now=at) is True
    last = await store.find_session("h1", now=T0 + LIFETIME - 1)
    assert last is not None and last.idle_expires_at == T0 + LIFETIME  # capped
    assert await store.find_session("h1", now=T0 + LIFETIME) is None
    assert await store.extend_session("h1", IDLE, now=T0 + LIFETIME) is False


async def test_revoked_sessions_are_gone_at_once(store: Store) -> None:
    await store.create_session("h1", "c", IDLE, LIFETIME, now=T0)
    await store.create_session("h2", "c", IDLE, LIFETIME, now=T0)
    assert await store.revoke_session("h1") is True
    assert await store.revoke_session("h1") is False
    assert await store.find_session("h1", now=T0 + 1) is None
    assert await store.extend_session("h1", IDLE, now=T0 + 1) is False
    assert await store.find_session("h2", now=T0 + 1) is not None  # others stay


async def test_prune_deletes_expired_sessions_only_and_is_bounded(store: Store) -> None:
    for index in range(5):
        await store.create_session(f"idle-{index}", "c", IDLE, LIFETIME, now=T0)
    await store.create_session("kept", "c", IDLE, LIFETIME, now=T0)
    await store.extend_session("kept", IDLE, now=T0 + IDLE - 1)
    later = T0 + IDLE + 1
    assert await store.prune_sessions(now=later, limit=3) == 3
    assert await store.prune_sessions(now=later, limit=3) == 2
    assert await store.prune_sessions(now=later, limit=3) == 0
    assert await store.find_session("kept", now=later) is not None
    assert await store.prune_sessions(now=T0 + LIFETIME) == 1  # past its lifetime
    assert await store.find_session("kept", now=T0 + 1) is None  # deleted, not just expired


async def test_without_now_the_store_clock_decides(store: Store) -> None:
    before = time.time()
    made = await store.create_session("h1", "c", IDLE, LIFETIME)
    assert before - 5 <= made.created_at <= time.time() + 5
    assert made.expires_at == pytest.approx(made.created_at + LIFETIME)
    found = await store.find_session("h1")
    assert found is not None and found.checked_at >= made.created_at
    assert await store.extend_session("h1", IDLE) is True
    assert await store.prune_sessions() == 0


async def test_sessions_are_shared_by_every_store_on_the_data(store: Store,
                                                              store_setup: StoreSetup) -> None:
    if not store_setup.shared:
        pytest.skip("an in-memory store has one connection")
    other = store_setup.make()  # type: ignore[misc]
    await other.open()
    try:
        await store.create_session("h1", "c", IDLE, LIFETIME, now=T0)
        assert await other.find_session("h1", now=T0 + 1) is not None
        assert await other.revoke_session("h1") is True
        assert await store.find_session("h1", now=T0 + 1) is None
    finally:
        await other.close()
