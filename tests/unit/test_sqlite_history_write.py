"""The SQLite settle's history write (sqlite/history.write_history): the pending rows go in
INSERTs of up to CHUNK rows each, and the table then holds exactly history_rows.pending_rows
of the items, value by value and type by type, for batches below, at and across the chunk
boundaries."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from conveyor.history.records import AttemptRecord
from conveyor.job import ErrorInfo
from conveyor.store.base import Complete, Fail, Lease, Settle
from conveyor.store.history_fold_sql import PENDING_COLUMNS
from conveyor.store.history_rows import pending_rows
from conveyor.store.sqlite.history import CHUNK, write_history
from conveyor.store.sqlite.store import SQLiteStore


def _items(count: int) -> list[Settle]:
    """`count` settles: every seventh failed (an error row), the others completed."""
    items: list[Settle] = []
    for n in range(count):
        record = AttemptRecord(f"task{n % 3}", "q", None if n % 2 else "acme", 1,
                               1000.0 + n, 1000.0 + n + 0.001 * (n % 5), "w1", "host", 42,
                               0.25 if n % 2 else None, 1 << 20 if n % 3 else None)
        lease = Lease(f"job-{n:04d}", n + 1)
        if n % 7 == 3:
            record.fingerprint = "0123456789abcdef"
            error = ErrorInfo(attempt=1, type="ValueError", message=f"boom {n}",
                              traceback="tb", worker="w1", host="host", at=2000.0)
            items.append(Fail(lease, error, None, attempt=record))
        else:
            items.append(Complete(lease, b"{}", record))
    return items


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("history") / "write.db"
    store = SQLiteStore(f"sqlite:///{path}")

    async def migrate() -> None:
        await store.migrate()
        await store.close()

    asyncio.run(migrate())
    return path


@pytest.mark.parametrize("count", [1, 2, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 3,
                                   4 * CHUNK + 7])
def test_the_pending_table_holds_pending_rows_of_the_applied_items(
        database: Path, count: int) -> None:
    items = _items(count)
    applied = [n % 11 != 5 for n in range(count)]  # a refused settle writes no row
    conn = sqlite3.connect(database, isolation_level=None)
    try:
        conn.execute("BEGIN")
        write_history(conn, items, applied)
        stored = [tuple(r) for r in conn.execute(
            f"SELECT {', '.join(PENDING_COLUMNS)} FROM conveyor_attempts_pending")]
        conn.execute("ROLLBACK")
    finally:
        conn.close()
    expected = pending_rows(items, applied)
    assert len(stored) == len(expected) == sum(applied)
    assert sorted(stored) == sorted(expected)
    by_job = {row[0]: row for row in stored}
    for row in expected:  # REAL stays REAL, an integer an integer (an outcome is a str)
        assert [_kind(v) for v in by_job[row[0]]] == [_kind(v) for v in row]


def _kind(value: object) -> type:
    return str if isinstance(value, str) else type(value)


def test_nothing_to_write_runs_no_insert(database: Path) -> None:
    conn = sqlite3.connect(database, isolation_level=None)
    try:
        statements: list[str] = []
        conn.set_trace_callback(statements.append)
        write_history(conn, _items(3), [False] * 3)
    finally:
        conn.close()
    assert statements == []
