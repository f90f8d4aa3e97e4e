"""What the SQLite history fold costs per row when conveyor_attempts already holds many
rows, with each of its full indexes dropped in turn: a migrated file gets `stored` attempts
(a recursive CTE: random durations, ended_at rising, one every `every` seconds: 0.01 s,
360,000 an hour, by default; 50 tenants) and 16,000 pending rows (one in ten failed); a store folds
2,000 twice (warm-up), then `limit` rows, timed (thread CPU). The duration index dropped is
whichever the schema has: conveyor_attempts_slow (before 0025) or _slow_10min (0025 on).

    PYTHONPATH=src .venv/bin/python bench/history_fold_scale.py 500000 [every] [--short]

(--short: the folds of 2,000 with all indexes and without the duration index only.
--keys: the pending rows of 10 tasks and 20 queues, as view_reads.py's, not all one task
and queue: what the slow tops per task and queue (0027) cost, a row per part, tenant and
task or queue.)

Figures only: it asserts nothing.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import sqlite3
import sys
import tempfile
import time

from conveyor import Conveyor, Settings
from conveyor.job import new_id

PENDING = 16_000


def _base(folder: str, stored: int, every: float) -> str:
    path = f"{folder}/base.db"
    app = Conveyor(settings=Settings.load(url=f"sqlite:///{path}", history=True,
                                          log_level="CRITICAL"), auto_migrate=True)
    app.migrate()
    app.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(
        "INSERT INTO conveyor_attempts (job_id, attempt, task, queue, tenant, worker_id, host, "
        "pid, started_at, ended_at, duration, outcome, rss) "
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :stored) "
        "SELECT printf('%08x-0000-7000-8000-%012x', i / 1000, i), 1, 'work', 'default', "
        "'org-' || (i % 50), 'w', 'h', 1, 1.7e9 + i * :every, "
        "1.7e9 + i * :every + abs(random() % 4000) / 1e6, "
        "abs(random() % 4000) / 1e6, 'completed', 5e7 FROM n",
        {"stored": stored, "every": every})
    conn.close()
    return path


def _pending(path: str, drop: str | None, after: float, keys: bool = False) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    for name in ({"conveyor_attempts_slow", "conveyor_attempts_slow_10min",
                  "conveyor_attempts_slow_10min_tenant"} & names if drop == "duration"
                 else [drop] if drop else []):
        conn.execute(f"DROP INDEX {name}")
    rows = []
    for n, job_id in enumerate(new_id.many(PENDING)):
        ended, took, failed = after + n * 0.003, random.uniform(0.0001, 0.004), n % 10 == 0
        task, queue = (f"work-{n % 10}", f"q{n % 20}") if keys else ("work", "default")
        rows.append((job_id, 1, task, queue, f"org-{n % 50}", "w", "h", 1, ended - took,
                     ended, took, "dead" if failed else "completed",
                     "ValueError" if failed else None, "boom" if failed else None,
                     "tb" if failed else None, None,
                     "abcdef0123456789" if failed else None, None, 5e7, 2))
    conn.executemany("INSERT INTO conveyor_attempts_pending VALUES (" + ", ".join("?" * 20)
                     + ")", rows)
    conn.close()


def _fold(path: str, limit: int) -> float:
    app = Conveyor(settings=Settings.load(url=f"sqlite:///{path}", history=True,
                                          log_level="CRITICAL"))

    async def run() -> float:
        await app.store.fold_history(2000)
        await app.store.fold_history(2000)
        began = time.thread_time()
        moved = await app.store.fold_history(limit)
        return (time.thread_time() - began) / moved * 1e6

    try:
        return asyncio.run(run())
    finally:
        app.close()


def main(stored: int, every: float = 0.01, rounds: int = 2, short: bool = False,
         keys: bool = False) -> None:
    folder = tempfile.mkdtemp()
    base = _base(folder, stored, every)
    after = 1.7e9 + stored * every + 10
    cases = [(None, 2000), (None, 10_000), ("duration", 2000), ("duration", 10_000),
             ("conveyor_attempts_ended", 2000), ("conveyor_attempts_job", 2000)]
    if short:  # a fold of 2,000 with and without the duration index
        cases = [(None, 2000), ("duration", 2000)]
    spent: dict[str, list[float]] = {}
    for _ in range(rounds):
        for drop, limit in cases:
            path = f"{folder}/t.db"
            shutil.copy(base, path)
            _pending(path, drop, after, keys)
            case = (f"{'without the ' + drop + ' index' if drop else 'all indexes'}, "
                    f"fold of {limit}")
            spent.setdefault(case, []).append(_fold(path, limit))
    print(f"fold µs/row with {stored} attempts stored, one every {every} s"
          f"{', 10 tasks and 20 queues' if keys else ''}:")
    for case, figures in spent.items():
        print(f"  {case}: {' '.join(f'{x:.2f}' for x in figures)}")
    shutil.rmtree(folder)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500_000,
         float(sys.argv[2]) if len(sys.argv) > 2 and not sys.argv[2].startswith("--")
         else 0.01, short="--short" in sys.argv, keys="--keys" in sys.argv)
