"""A migration behind a long transaction waits in short tries (store/postgres/upgrade.py).

A migration that alters conveyor_jobs (ACCESS EXCLUSIVE, as 0020 and 0037 take: here one
made for the test, after the real ones). Behind a transaction that read
the table and stays open, the migration's lock request queues, and every enqueue and
claim queues behind the migration: with one long wait the cluster stands still until that
transaction ends. With migrate_lock_timeout a try gives up after it, rolls back and
releases what it held, so the enqueue goes through between tries; the migration applies
once the transaction has ended, or fails clearly after migrate_wait.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from tests.postgres.conftest import BASE_URL, admin_connect

from conveyor.errors import ConfigError, MigrationBlocked
from conveyor.job import NewJob, new_id
from conveyor.store.migrate import Migration
from conveyor.store.postgres.connection import parse_url
from conveyor.store.postgres.store import PostgresStore

NAME = "{:04d}_lock_test"


def upgrading(url: str, options: str, latest: int) -> PostgresStore:
    """A store of the schema with one migration more than the real ones: a column added to
    conveyor_jobs, then an index on it."""
    store = PostgresStore(f"{url}&{options}")
    store._migrations = [*store._migrations, Migration(latest + 1, "lock_test", (
        "ALTER TABLE {schema}.conveyor_jobs ADD COLUMN lock_test integer",
        "CREATE INDEX conveyor_jobs_lock_test ON {schema}.conveyor_jobs (lock_test)"))]
    return store


@pytest.fixture
def long_reader(store: PostgresStore, schema: str) -> Iterator[psycopg.Connection[Any]]:
    """A transaction that read conveyor_jobs and stays open (ACCESS SHARE until it ends),
    as a long report would, on a schema migrated to the real latest version."""
    reader = psycopg.connect(BASE_URL, connect_timeout=5)  # not autocommit: a transaction
    try:
        reader.execute(f'SELECT count(*) FROM "{schema}".conveyor_jobs').fetchone()
        yield reader
    finally:
        reader.close()


async def enqueue_seconds(store: PostgresStore) -> float:
    began = time.monotonic()
    await asyncio.wait_for(store.enqueue_many(
        [NewJob(id=new_id(), task="t", queue="q", payload=b"{}")]), timeout=30)
    return time.monotonic() - began


@pytest.mark.anyio
async def test_an_enqueue_is_not_held_up_while_a_migration_waits_for_a_long_transaction(
        store: PostgresStore, url: str, schema: str, long_reader: psycopg.Connection[Any],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="conveyor.store")
    latest = store.latest_version
    upgrade = upgrading(url, "migrate_lock_timeout=0.2&migrate_wait=60", latest)
    try:
        migration = asyncio.create_task(upgrade.migrate())
        await asyncio.sleep(1.0)
        assert not migration.done()
        # one wait of a try at most (0.2 s), not the reader's whole transaction (about 4 s
        # more here; without the tries the enqueue waits for all of it)
        took = await enqueue_seconds(store)
        assert took < 1.5, took
        assert await store.schema_version() == latest
        await asyncio.sleep(2.5)
        assert not migration.done()
        long_reader.rollback()  # the long transaction ends
        assert await asyncio.wait_for(migration, timeout=30) == 1
        assert await store.schema_version() == latest + 1
        assert f"migration {NAME.format(latest + 1)} waits for a table lock" in caplog.text
    finally:
        await upgrade.close()


@pytest.mark.anyio
async def test_a_migration_that_cannot_get_its_lock_in_time_fails_clearly_and_applies_nothing(
        store: PostgresStore, url: str, schema: str,
        long_reader: psycopg.Connection[Any]) -> None:
    latest = store.latest_version
    upgrade = upgrading(url, "migrate_lock_timeout=0.1&migrate_wait=1", latest)
    try:
        began = time.monotonic()
        with pytest.raises(MigrationBlocked, match=rf"migration {NAME.format(latest + 1)} on "
                           rf"schema {schema} .* could not take the table locks") as failed:
            await upgrade.migrate()
        assert time.monotonic() - began < 5
        assert "conveyor migrate" in str(failed.value)
        assert await store.schema_version() == latest  # nothing of it stayed
        with admin_connect() as conn:
            row = conn.execute("SELECT count(*) FROM information_schema.columns WHERE "
                               "table_schema = %s AND column_name = 'lock_test'",
                               (schema,)).fetchone()
        assert row == (0,)
    finally:
        await upgrade.close()


@pytest.mark.anyio
async def test_no_lock_timeout_waits_as_long_as_the_transaction_lasts(
        store: PostgresStore, url: str, schema: str,
        long_reader: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="conveyor.store")
    upgrade = upgrading(url, "migrate_lock_timeout=0&options=-c%20lock_timeout%3D500",
                        store.latest_version)  # a connection's own setting, overridden
    try:
        migration = asyncio.create_task(upgrade.migrate())
        await asyncio.sleep(3.0)  # past the default try (2 s) and the connection's (0.5 s)
        assert "waits for a table lock" not in caplog.text
        assert not migration.done(), migration.exception()
        with admin_connect() as conn:  # one wait, on the lock, in the migration's session
            waiting = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                "AND wait_event_type = 'Lock'", (schema,)).fetchone()
        assert waiting == (1,)
        long_reader.rollback()
        assert await asyncio.wait_for(migration, timeout=30) == 1
    finally:
        await upgrade.close()


@pytest.mark.parametrize("option", ["migrate_lock_timeout=-1", "migrate_wait=soon",
                                    "migrate_lock_timeout=nan", "migrate_wait=inf",
                                    "migrate_lock_timeout=2147484"])
def test_the_url_refuses_a_wait_that_is_not_a_number_of_seconds(option: str) -> None:
    with pytest.raises(ConfigError, match=option.split("=")[0]):
        parse_url(f"postgresql://u@h/db?{option}")


def test_the_url_takes_the_waits_and_keeps_them_from_libpq() -> None:
    target = parse_url("postgresql://u@h/db?migrate_lock_timeout=0.5&migrate_wait=30")
    assert (target.migrate_lock_timeout, target.migrate_wait) == (0.5, 30.0)
    assert "migrate" not in target.conninfo


def test_an_option_with_a_space_reaches_libpq_as_a_space() -> None:
    # libpq's URIs decode %20, not "+": options=-c lock_timeout=500 must stay one setting
    target = parse_url("postgresql://u@h/db?options=-c%20lock_timeout%3D500")
    assert "options=-c%20lock_timeout%3D500" in target.conninfo
    assert (parse_url("postgresql://u@h/db").migrate_lock_timeout,
            parse_url("postgresql://u@h/db").migrate_wait) == (2.0, 600.0)
