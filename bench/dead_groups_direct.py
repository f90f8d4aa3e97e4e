"""An error group's dead-job counts by direct SQL (issue 15): main's DEAD_BY_GROUP (a join of
the dead jobs with their final attempts) against the kept counts (dead_groups.DEAD_GROUP_COUNTS),
on a store loaded by bench/view_reads.py and migrated to version 22; p50 / p95 ms of 10 runs.

    PYTHONPATH=/work/main/src python -c "from conveyor.store import history_sql as h; \
        print(h.DEAD_BY_GROUP)" > /tmp/old.sql
    PYTHONPATH=src python bench/dead_groups_direct.py /tmp/old.sql SCHEMA /tmp/v.db
"""

from __future__ import annotations

import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conveyor.store import dead_groups as dg
from conveyor.store import history_sql as hq

PG = "postgresql://postgres@127.0.0.1:5432/test"
PARAMS = {"tenant": None, "pending_limit": 5000}


def timed(run: Callable[[], Any]) -> str:
    run()
    took = []
    for _ in range(10):
        began = time.perf_counter()
        run()
        took.append((time.perf_counter() - began) * 1000)
    took.sort()
    return f"{statistics.median(took):.2f} / {took[round(0.95 * len(took)) - 1]:.2f}"


def main() -> None:
    import psycopg

    old_path, schema, sqlite_path = sys.argv[1:4]
    statements = {"main DEAD_BY_GROUP": Path(old_path).read_text(),
                  "kept DEAD_GROUP_COUNTS": dg.DEAD_GROUP_COUNTS}
    with psycopg.connect(PG) as conn:
        for name, template in statements.items():
            sql = template.replace("{schema}", schema)
            print("postgres", name, timed(lambda s=sql: conn.execute(s, PARAMS).fetchall()))
    lite = sqlite3.connect(sqlite_path)
    for name, template in statements.items():
        sql = hq.for_sqlite(template)
        print("sqlite", name, timed(lambda s=sql: lite.execute(s, PARAMS).fetchall()))


if __name__ == "__main__":
    main()
