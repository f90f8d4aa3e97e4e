"""The store fixture: every conformance test runs on each store driver.

sqlite-file and sqlite-memory always; postgres once conveyor.store.postgres.store exists.
Each postgres test gets its own schema (dropped afterwards). With the server unreachable the
postgres tests are skipped locally and fail in CI.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from conveyor.store.base import Store
from conveyor.store.sqlite.store import SQLiteStore

POSTGRES_BASE = os.environ.get("CONVEYOR_TEST_POSTGRES",
                               "postgresql://postgres@127.0.0.1:5432/test")


def _has_postgres_driver() -> bool:
    try:
        return importlib.util.find_spec("conveyor.store.postgres.store") is not None
    except ModuleNotFoundError:
        return False


STORE_KINDS = ["sqlite-file", "sqlite-memory"]
if _has_postgres_driver():
    STORE_KINDS.append(pytest.param("postgres", marks=pytest.mark.postgres))


@functools.cache
def _postgres_problem() -> str | None:
    """Why the server cannot be used (None when it can); probed once per session."""
    import psycopg

    try:
        with psycopg.connect(POSTGRES_BASE, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"{POSTGRES_BASE}: {exc}".strip()
    return None


def _require_postgres() -> None:
    problem = _postgres_problem()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required in CI and is not reachable: {problem}")
    pytest.skip(f"PostgreSQL not reachable: {problem}")


def _drop_schema(schema: str) -> None:
    import psycopg

    try:
        with psycopg.connect(POSTGRES_BASE, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    except psycopg.OperationalError:
        pass  # the server is gone: there is nothing to drop (the test was skipped or failed)


class StoreSetup:
    """How to reach the database under test again: `url`, and `make()` for another store
    instance on the same data (None for the in-memory store, which has one connection)."""

    def __init__(self, kind: str, url: str, make: Callable[[], Any] | None) -> None:
        self.kind = kind
        self.url = url
        self.make = make

    @property
    def shared(self) -> bool:
        return self.make is not None


@pytest.fixture(params=STORE_KINDS)
def store_setup(request: pytest.FixtureRequest, tmp_path: Any) -> StoreSetup:
    kind = request.param
    if kind == "sqlite-file":
        url = f"sqlite:///{tmp_path / 'conformance.db'}"
        return StoreSetup(kind, url, lambda: SQLiteStore(url))
    if kind == "sqlite-memory":
        return StoreSetup(kind, "sqlite:///:memory:", None)
    _require_postgres()
    from conveyor.store.postgres.store import PostgresStore  # type: ignore[import-not-found]

    schema = f"conveyor_test_{secrets.token_hex(6)}"
    url = f"{POSTGRES_BASE}?schema={schema}"
    request.addfinalizer(lambda: _drop_schema(schema))
    return StoreSetup(kind, url, lambda: PostgresStore(url))


@pytest.fixture
async def store(store_setup: StoreSetup) -> AsyncIterator[Store]:
    if store_setup.kind == "sqlite-memory":
        instance: Store = SQLiteStore(store_setup.url)
    else:
        instance = store_setup.make()  # type: ignore[misc]
    await instance.open()
    try:
        await instance.migrate()
        yield instance
    finally:
        await instance.close()
