"""Migration 0025 on a store with history (both stores): the duration index of every attempt
(conveyor_attempts_slow) is gone, the 10-minute one (conveyor_attempts_slow_10min) holds the
attempts already folded, and the slowest-attempts read finds them through it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from conveyor.history.records import TimeRange
from conveyor.store.sqlite.store import SQLiteStore

COLUMNS = "job_id, attempt, task, queue, tenant, started_at, ended_at, duration, outcome"
HOUR = 3600.0
ROWS = [(f"job-{n}", 1, "t", "q", "acme" if n % 2 else None, n * 997.0, n * 997.0 + n % 7,
         float(n % 7), "completed") for n in range(1, 40)]


def want(window: TimeRange, limit: int) -> list[tuple[str, float]]:
    kept = [r for r in ROWS if window.start <= r[6] < window.end
            and window.tenant in (None, r[4])]
    kept.sort(key=lambda r: (r[7], r[6], r[0]), reverse=True)
    return [(r[0], r[7]) for r in kept[:limit]]


WINDOWS = [TimeRange(0, 40 * 997.0 + HOUR), TimeRange(1500.0, 5 * HOUR + 100.0),
           TimeRange(1500.0, 5 * HOUR + 100.0, tenant="acme")]


def upgraded(make: Callable[[], Any],
             execute: Callable[[str, list[tuple[Any, ...]] | None], list[Any]],
             indexes: str) -> None:
    async def migrate() -> None:
        store = make()
        newest = [m for m in store._migrations if m.version <= 25]  # up to 0025
        store._migrations = [m for m in newest if m.version < 25]
        await store.migrate()
        execute(f"INSERT INTO {{schema}}conveyor_attempts ({COLUMNS}) VALUES "
                f"({', '.join(['%s'] * 9)})", ROWS)
        store._migrations = newest
        assert await store.migrate() == 1  # 0025 alone
        for window in WINDOWS:
            for limit in (3, 50):
                found = await store.slow_attempts(window, limit=limit)
                assert [(a.job_id, a.duration) for a in found] == want(window, limit)
        await store.close()

    asyncio.run(migrate())
    names = {row[0] for row in execute(indexes, None)}
    assert "conveyor_attempts_slow_10min" in names
    assert "conveyor_attempts_slow" not in names


def test_0025_replaces_the_duration_index_sqlite(tmp_path: Any) -> None:
    import sqlite3

    path = tmp_path / "upgrade.db"

    def execute(sql: str, rows: list[tuple[Any, ...]] | None) -> list[Any]:
        with sqlite3.connect(path) as conn:
            sql = sql.replace("{schema}", "").replace("%s", "?")
            if rows is not None:
                conn.executemany(sql, rows)
                return []
            return conn.execute(sql).fetchall()

    upgraded(lambda: SQLiteStore(f"sqlite:///{path}"), execute,
             "SELECT name FROM sqlite_master WHERE type = 'index' "
             "AND tbl_name = 'conveyor_attempts'")


@pytest.mark.postgres
def test_0025_replaces_the_duration_index_postgres() -> None:
    import os
    import secrets

    import psycopg

    from conveyor.store.postgres.store import PostgresStore

    base = os.environ.get("CONVEYOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        psycopg.connect(base, connect_timeout=3).close()
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    schema = f"t_slow10_{secrets.token_hex(4)}"

    def execute(sql: str, rows: list[tuple[Any, ...]] | None) -> list[Any]:
        with psycopg.connect(base, autocommit=True) as conn:
            sql = sql.replace("{schema}", f'"{schema}".')
            if rows is not None:
                conn.cursor().executemany(sql, rows)
                return []
            return conn.execute(sql).fetchall()

    try:
        upgraded(lambda: PostgresStore(f"{base}?schema={schema}"), execute,
                 f"SELECT indexname FROM pg_indexes WHERE schemaname = '{schema}' "
                 "AND tablename = 'conveyor_attempts'")
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
