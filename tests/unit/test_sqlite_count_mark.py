"""Migration 0036 (SQLite): the count trigger stands aside for a row whose count_mark the
statement flipped (the store's summed claims and batched settles, whose counts it writes as
sums), and for nothing else. Any other writer is counted: a plain sqlite3 connection, a
previous release (which stands the trigger aside by a conveyor_count_deferred row, still
honoured), a worker killed in the middle of its trip (nothing of it stays behind)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from conveyor.job import NewJob, new_id
from conveyor.store.base import ClaimAsk, Complete
from conveyor.store.sqlite.store import SQLiteStore

T0 = 1_700_000_000.0
COUNTED = "CASE WHEN state = 'scheduled' AND attempt > 0 THEN 'retrying' ELSE state END"


def _jobs(n: int) -> list[NewJob]:
    return [NewJob(id=new_id(), task="send", queue="mail", payload=b"{}",
                   tenant=("acme" if i % 2 else None)) for i in range(n)]


def _kept_and_recounted(conn: sqlite3.Connection) -> tuple[list[object], list[object]]:
    """The kept counts (all tenants, then per tenant), and the same counted from the jobs."""
    kept = sorted(conn.execute("SELECT '', queue, task, state, n FROM conveyor_counts "
                               "WHERE n <> 0 UNION ALL SELECT tenant, queue, task, state, n "
                               "FROM conveyor_tenant_counts WHERE n <> 0"))
    recount = sorted(conn.execute(
        f"SELECT '', queue, task, {COUNTED}, count(*) FROM conveyor_jobs GROUP BY 2, 3, 4 "
        f"UNION ALL SELECT tenant, queue, task, {COUNTED}, count(*) FROM conveyor_jobs "
        "WHERE tenant <> '' GROUP BY 1, 2, 3, 4"))
    return kept, recount


def _fill(path: Path, jobs: int, claim: int, complete: int) -> None:
    async def fill() -> None:
        store = SQLiteStore(f"sqlite:///{path}")
        await store.migrate()
        await store.enqueue_many(_jobs(jobs), now=T0)
        ask = ClaimAsk(("mail",), "w1", claim, 30.0)
        held = (await store.settle_and_claim([], ask, now=T0 + 1)).jobs
        await store.settle_and_claim([Complete(c.lease) for c in held[:complete]],
                                     ClaimAsk(("mail",), "w1", 0, 30.0), now=T0 + 2)
        await store.close()

    asyncio.run(fill())


def test_the_store_s_summed_statements_flip_the_mark_and_others_are_counted(
        tmp_path: Path) -> None:
    path = tmp_path / "mark.db"
    _fill(path, jobs=10, claim=6, complete=2)
    with sqlite3.connect(path, isolation_level=None) as conn:
        # claimed then completed: flipped twice; claimed: once; queued: never
        marks = dict(conn.execute("SELECT state, sum(count_mark) FROM conveyor_jobs "
                                  "GROUP BY state"))
        assert marks == {"queued": 0, "running": 4, "completed": 0}
        assert conn.execute("SELECT count(*) FROM conveyor_count_deferred").fetchone() == (0,)
        kept, recount = _kept_and_recounted(conn)
        assert kept == recount
        # a plain connection, as the sqlite3 shell or the CLI: counted by the trigger
        conn.execute("UPDATE conveyor_jobs SET state = 'cancelled' WHERE id IN "
                     "(SELECT id FROM conveyor_jobs WHERE state = 'running' LIMIT 2)")
        kept, recount = _kept_and_recounted(conn)
        assert kept == recount
        # a statement that flips the mark is not counted (the store writes its sums)
        conn.execute("UPDATE conveyor_jobs SET state = 'dead', count_mark = 1 - count_mark "
                     "WHERE state = 'queued'")
        kept, recount = _kept_and_recounted(conn)
        assert dict((r[3], r[4]) for r in kept if not r[0])["queued"] == 4
        assert "dead" not in {r[3] for r in kept}
        assert {r[3] for r in recount} == {"running", "completed", "cancelled", "dead"}


def test_a_previous_release_s_deferral_row_is_still_honoured(tmp_path: Path) -> None:
    """A release before 0036 (a rolling deploy) stands the trigger aside by a row of
    conveyor_count_deferred around its summed statement and writes the sums itself: the
    trigger must not count that statement too."""
    path = tmp_path / "old-release.db"
    _fill(path, jobs=6, claim=4, complete=0)
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO conveyor_count_deferred (one) VALUES (1)")
        conn.execute("UPDATE conveyor_jobs SET state = 'completed', finished_at = ? "
                     "WHERE state = 'running'", (T0 + 3,))
        conn.execute("UPDATE conveyor_counts SET n = n - 4 WHERE state = 'running'")
        conn.execute("INSERT INTO conveyor_counts VALUES ('mail', 'send', 'completed', 4)")
        conn.execute("UPDATE conveyor_tenant_counts SET n = n - 2 WHERE state = 'running'")
        conn.execute("INSERT INTO conveyor_tenant_counts "
                     "VALUES ('acme', 'mail', 'send', 'completed', 2)")
        conn.execute("DELETE FROM conveyor_count_deferred")
        conn.execute("COMMIT")
        kept, recount = _kept_and_recounted(conn)
        assert kept == recount


_CHILD = """
import asyncio, sys, time
from conveyor.store.base import ClaimAsk
from conveyor.store.sqlite.count_sums import Sums
from conveyor.store.sqlite.store import SQLiteStore

def stuck(self, conn):  # the trip's claim ran in its open transaction; held there
    print("claimed", flush=True)
    time.sleep(120)

Sums.write = stuck
store = SQLiteStore("sqlite:///" + sys.argv[1])
asyncio.run(store.settle_and_claim([], ClaimAsk(("mail",), "w9", 3, 30.0)))
"""


def test_a_worker_killed_in_the_middle_of_its_trip_leaves_nothing_standing_aside(
        tmp_path: Path) -> None:
    """A real process claims (its summed UPDATE done, its transaction open) and is killed
    with SIGKILL: nothing of its trip stays, no deferral and no mark; a plain writer after
    it and the store's next trip are counted exactly."""
    path = tmp_path / "killed.db"
    _fill(path, jobs=8, claim=2, complete=1)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_CHILD), str(path)],
                             stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "claimed"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()
    with sqlite3.connect(path, isolation_level=None) as conn:
        assert conn.execute("SELECT count(*) FROM conveyor_count_deferred").fetchone() == (0,)
        assert dict(conn.execute("SELECT state, count(*) FROM conveyor_jobs GROUP BY state")
                    ) == {"queued": 6, "running": 1, "completed": 1}
        # the first fill's two claimed (one then settled alone: counted by the trigger)
        assert conn.execute("SELECT sum(count_mark) FROM conveyor_jobs").fetchone() == (2,)
        conn.execute("UPDATE conveyor_jobs SET state = 'cancelled' WHERE state = 'queued' "
                     "AND tenant = 'acme'")
        kept, recount = _kept_and_recounted(conn)
        assert kept == recount
    _fill(path, jobs=0, claim=2, complete=2)  # the store's next trips, summed
    with sqlite3.connect(path) as conn:
        kept, recount = _kept_and_recounted(conn)
        assert kept == recount


def test_jobs_stored_before_0036_are_counted_once_by_the_next_trips(tmp_path: Path) -> None:
    """Rows written before the column existed read its default (0): the store's first flip
    of them stands the trigger aside all the same, and the counts stay the jobs'."""
    path = tmp_path / "upgraded.db"

    async def before_and_after() -> None:
        store = SQLiteStore(f"sqlite:///{path}")
        newest = [m for m in store._migrations if m.version <= 36]
        store._migrations = [m for m in newest if m.version < 36]
        await store.migrate()
        await store.enqueue_many(_jobs(9), now=T0)
        store._migrations = newest
        assert await store.migrate() == 1  # 0036 alone
        ask = ClaimAsk(("mail",), "w1", 6, 30.0)
        held = (await store.settle_and_claim([], ask, now=T0 + 1)).jobs
        await store.settle_and_claim([Complete(c.lease) for c in held], ask, now=T0 + 2)
        await store.close()

    asyncio.run(before_and_after())
    with sqlite3.connect(path) as conn:
        assert dict(conn.execute("SELECT state, count(*) FROM conveyor_jobs GROUP BY state")
                    ) == {"running": 3, "completed": 6}
        kept, recount = _kept_and_recounted(conn)
        assert kept == recount
