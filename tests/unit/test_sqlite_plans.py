"""SQLite query plans: finding a job by the start or end of its id searches an index (the
primary key, conveyor_jobs_id_tail), never the whole table."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from conveyor.store.sqlite import keys
from conveyor.store.sqlite import queries as q
from conveyor.store.sqlite.store import SQLiteStore


def plan(conn: sqlite3.Connection, sql: str, params: dict[str, object]) -> str:
    return " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))


def migrated(path: Path) -> sqlite3.Connection:
    """A connection to a new store at `path`, migrated to the newest schema."""
    store = SQLiteStore(f"sqlite:///{path}")

    async def migrate() -> None:
        try:
            await store.migrate()
        finally:
            await store.close()

    asyncio.run(migrate())
    return sqlite3.connect(path)


def test_find_by_prefix_and_suffix_use_indexes(tmp_path: Path) -> None:
    conn = migrated(tmp_path / "plans.db")
    try:
        conn.execute("ANALYZE")
        prefix = plan(conn, q.FIND_BY_PREFIX, {"low": "01a2", "high": "01a3", "tenant": None,
                                               "limit": 5})
        assert "USING PRIMARY KEY" in prefix, prefix
        suffix = plan(conn, q.FIND_BY_SUFFIX, {"low": "dcba", "high": "dcbb",
                                               "fragment": "abcd", "tenant": None,
                                               "limit": 5})
        assert "conveyor_jobs_id_tail" in suffix, suffix
        for found in (prefix, suffix):  # a SEARCH of an index, never a SCAN of the table
            assert not any(step.startswith("SCAN") for step in found.split(" | ")), found
    finally:
        conn.close()


def test_dead_letters_search_the_index_of_dead_rows(tmp_path: Path) -> None:
    conn = migrated(tmp_path / "dead.db")
    try:
        for sql, params in ((q.DEAD_LETTERS, {"queue": None, "tenant": None, "after": None,
                                              "limit": 51}),
                            (q.DEAD_QUEUES, {"tenant": None})):
            found = plan(conn, sql, params)
            assert "conveyor_jobs_dead" in found, found
            # a walk of the dead rows' index, newest first, that stops at the page's end:
            # never a scan of the table
            assert all("conveyor_jobs_dead" in step for step in found.split(" | ")
                       if step.startswith("SCAN")), found
    finally:
        conn.close()


def test_a_keyed_claim_reads_only_the_keys_it_picked(tmp_path: Path) -> None:
    """Per-key limits: ready keys from their partial index (parked ones are not in it), a
    key's counts and next jobs from the index of keyed jobs, never a scan of the jobs."""
    conn = migrated(tmp_path / "keys.db")
    try:
        ready = plan(conn, keys.READY_KEYS, {"task": "t", "now": 1.0, "probe": 11, "keys": 32,
                                             "queues": '["default"]'})
        picked = plan(conn, keys.KEY_CANDIDATES, {"task": "t", "key": "k", "now": 1.0,
                                                   "queues": '["default"]', "room": 2})
        assert "conveyor_limit_keys_ready" in ready, ready
        for found in (ready, picked):
            assert "conveyor_jobs_limit_key" in found, found
            assert not any(step.startswith("SCAN job") or step == "SCAN conveyor_jobs"
                           for step in found.split(" | ")), found
    finally:
        conn.close()
