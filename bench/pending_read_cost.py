"""The SQLite tasks read's cost in its pending rows: `--rows` pending attempt rows (not
folded) over the last 5 minutes, 10 tasks x 20 queues x 50 tenants, mixed outcomes and
durations, then store.task_analytics over the last hour (every tenant, and one tenant)
`--rounds` times, and the charts' read (queue_analytics, every tenant); the median CPU
ms of each. `--unpinned`: the read without the pending
rows' index pin (INDEXED BY conveyor_attempts_pending_tasks taken out of the statements),
and with `--drop-index` the index itself dropped (what a store without 0031's pending index
would run). Figures only.

    PYTHONPATH=src .venv/bin/python bench/pending_read_cost.py --rows 20000 [--drop-index]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from itertools import chain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--drop-index", action="store_true")
    args = parser.parse_args()
    from conveyor import Conveyor, Settings
    from conveyor.history.records import TimeRange
    from conveyor.history.rollup import bucket
    from conveyor.store.history_rows import PLAIN_COLUMNS
    from conveyor.store.sqlite.history import _PLAIN_ROWS, CHUNK

    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as folder:
        app = Conveyor(settings=Settings.load(url=f"sqlite:///{folder}/reads.db",
                                              log_level="CRITICAL"), auto_migrate=True)
        store = app.store
        now = time.time()
        rows = []
        for n in range(args.rows):
            ended = now - 300 + 300 * n / args.rows
            duration = rng.choice((0.0005, 0.003, 0.02, 0.2, 1.5))
            rows.append((f"job-{n:08d}", 1, f"task{rng.randrange(10)}",
                         f"queue{rng.randrange(20)}", f"org-{rng.randrange(50)}", "w1", "host",
                         42, ended - duration, ended, duration,
                         rng.choice(("completed",) * 8 + ("retried", "dead")), 0.0, 0,
                         bucket(duration)))
        assert len(rows[0]) == len(PLAIN_COLUMNS)
        with store.db.write() as conn:  # type: ignore[attr-defined]
            for part in range(0, len(rows), CHUNK):
                chunk = rows[part:part + CHUNK]
                conn.execute(_PLAIN_ROWS[len(chunk)], list(chain.from_iterable(chunk)))
            if args.drop_index:
                conn.execute("DROP INDEX IF EXISTS conveyor_attempts_pending_tasks")
        if args.drop_index:  # the pin taken out, on this instance only
            store._task_rollups = tuple(  # type: ignore[attr-defined]
                sql.replace(" INDEXED BY conveyor_attempts_pending_tasks", "")
                for sql in store._task_rollups)  # type: ignore[attr-defined]
        for read, tenant in (("tasks", None), ("tasks", "org-17"), ("charts", None)):
            window = TimeRange(now - 3600, now + 60, tenant=tenant)
            spent = []
            for _ in range(args.rounds):
                cpu = time.process_time()
                result = asyncio.run(store.task_analytics(window) if read == "tasks" else
                                     store.queue_analytics(window))
                spent.append((time.process_time() - cpu) * 1e3)
            print(f"{read} read: rows {args.rows} drop_index {args.drop_index} tenant {tenant}: "
                  f"{statistics.median(spent):.2f} CPU ms median, {min(spent):.2f} min "
                  f"({len(result)} rows)")
        app.close()


if __name__ == "__main__":
    os.environ.setdefault("CONVEYOR_LOG_LEVEL", "CRITICAL")
    main()
