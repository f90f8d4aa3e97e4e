"""Migrations are the one source of schema truth: idempotent, numbered, versioned."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from conveyor.store.base import Store
from conveyor.store.sqlite.store import SQLiteStore

from .conftest import StoreSetup
from .support import T0, claim_ids, enqueue

pytestmark = pytest.mark.anyio


def _newest_migration(store: Store) -> int:
    folder = Path(inspect.getfile(type(store))).parent / "migrations"
    numbers = [int(m[1]) for p in folder.iterdir() if (m := re.match(r"^(\d{4})_", p.name))]
    assert numbers, f"no migrations in {folder}"
    return max(numbers)


async def test_schema_version_is_the_newest_migration(store: Store) -> None:
    newest = _newest_migration(store)
    assert newest >= 1
    assert await store.schema_version() == newest


async def test_migrate_is_idempotent(store: Store) -> None:
    job_id = await enqueue(store)
    version = await store.schema_version()
    assert await store.migrate() == 0
    assert await store.migrate() == 0
    assert await store.schema_version() == version
    assert await claim_ids(store, now=T0) == [job_id]  # the data survived


async def test_a_second_instance_sees_the_migrated_schema(store_setup: StoreSetup,
                                                          store: Store) -> None:
    if not store_setup.shared:
        pytest.skip("the in-memory store is one connection")
    other = store_setup.make()  # type: ignore[misc]
    await other.open()
    try:
        assert await other.schema_version() == _newest_migration(store)
        assert await other.migrate() == 0
        job_id = await enqueue(store)
        assert await claim_ids(other, now=T0) == [job_id]
    finally:
        await other.close()


async def test_a_fresh_sqlite_database_is_at_version_zero(tmp_path: Path) -> None:
    store = SQLiteStore(f"sqlite:///{tmp_path / 'fresh.db'}")
    await store.open()
    try:
        assert await store.schema_version() == 0
        assert await store.migrate() == _newest_migration(store)
        assert await store.schema_version() == _newest_migration(store)
    finally:
        await store.close()
