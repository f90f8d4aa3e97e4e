"""Fixtures for the PostgreSQL store's own tests: each test gets a schema of its own (dropped
afterwards), so parallel runs and other people's tests on the same server never collide.

With the server unreachable these tests are skipped locally and fail under CI=true.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

from conveyor.store.postgres.store import PostgresStore

from .cluster import PrivateCluster, bin_dir

BASE_URL = os.environ.get("CONVEYOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

pytestmark = pytest.mark.postgres


def admin_connect() -> psycopg.Connection[tuple[object, ...]]:
    """A superuser connection for setup and inspection (autocommit)."""
    try:
        return psycopg.connect(BASE_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")


@pytest.fixture
def schema() -> Iterator[str]:
    name = f"conveyor_pgtest_{secrets.token_hex(6)}"
    with admin_connect():
        pass  # skip (or fail in CI) before anything else when the server is down
    yield name
    with admin_connect() as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def url(schema: str) -> str:
    return f"{BASE_URL}?schema={schema}&application_name={schema}"


@pytest.fixture
async def store(url: str) -> AsyncIterator[PostgresStore]:
    instance = PostgresStore(url)
    await instance.open()
    await instance.migrate()
    try:
        yield instance
    finally:
        await instance.close()


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivateCluster]:
    """A PostgreSQL server of this test session's own, free to stop, crash and restart."""
    binaries = bin_dir()
    if binaries is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL's server binaries (initdb, pg_ctl) are required in CI")
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    cluster = PrivateCluster(binaries)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def private_url(private_pg: PrivateCluster) -> str:
    """A fresh schema on the private server, which is running when the test starts."""
    if not private_pg.running():
        private_pg.start()
    return f"{private_pg.url}?schema=conveyor_pgtest_{secrets.token_hex(6)}"
