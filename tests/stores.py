"""A store URL for tests that run on both stores: a SQLite file in the test's folder, or a
schema of its own on the test PostgreSQL (dropped afterwards; skipped when the server is
unreachable, except in CI, where that fails)."""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest

PG_URL = os.environ.get("CONVEYOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
BOTH = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@contextlib.contextmanager
def store_url_for(kind: str, folder: Path, prefix: str) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'jobs.db'}"
        return
    schema = f"{prefix}_{secrets.token_hex(5)}"
    try:
        with psycopg.connect(PG_URL, connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    yield f"{PG_URL}?schema={schema}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def schema_of(url: str) -> str:
    """The PostgreSQL schema of a store_url_for URL ('' for SQLite)."""
    return url.split("?schema=", 1)[1] if "?schema=" in url else ""


def raw_execute(url: str) -> Callable[[str, list[tuple[Any, ...]] | None], list[Any]]:
    """SQL on the store at a store_url_for URL, outside Conveyor: `{schema}` in it becomes the
    tables' prefix ('' on SQLite, '"schema".' on PostgreSQL) and `%s` SQLite's `?`; with rows,
    one executemany and no result, else the statement's rows."""
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")

        def on_sqlite(sql: str, rows: list[tuple[Any, ...]] | None) -> list[Any]:
            with sqlite3.connect(path) as conn:
                sql = sql.replace("{schema}", "").replace("%s", "?")
                if rows is not None:
                    conn.executemany(sql, rows)
                    return []
                return conn.execute(sql).fetchall()

        return on_sqlite
    prefix = f'"{schema_of(url)}".'

    def on_postgres(sql: str, rows: list[tuple[Any, ...]] | None) -> list[Any]:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            sql = sql.replace("{schema}", prefix)
            if rows is not None:
                conn.cursor().executemany(sql, rows)
                return []
            return conn.execute(sql).fetchall()

    return on_postgres


# Jobs of an upgrade test of the list indexes (0030, 0032): many of one combination, a few rare.
LIST_SHAPES = [("bulk", "t.send", "org-a")] * 9 + [
    ("rare", "t.sync", "org-b"), ("rare", "t.send", None), ("bulk", "t.sync", None)]


async def assert_every_list(store: Any, made: Sequence[Any], state_of: Callable[[Any], Any],
                            state_sets: Iterable[tuple[Any, ...]]) -> None:
    """Every list by queue, task, tenant (each of LIST_SHAPES' or none) and each of
    `state_sets` is the first 7 of the matching jobs, newest first."""
    from conveyor.job import JobFilter

    for queue, task, tenant, states in itertools.product(
            (None, "bulk", "rare"), (None, "t.send", "t.sync"), (None, "org-a", "org-b"),
            state_sets):
        want = [j.id for j in sorted(made, key=lambda j: j.id, reverse=True)
                if queue in (None, j.queue) and task in (None, j.task)
                and tenant in (None, j.tenant) and (not states or state_of(j) in states)][:7]
        where = JobFilter(queue=queue, task=task, tenant=tenant, states=states)
        assert [j.id for j in await store.list_jobs(where, limit=7)] == want, where
