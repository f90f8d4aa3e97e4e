"""Issue 15: the server CPU of reading a settle's attempt rows from its parameters, per row, three
ways: the store's (one jsonb array of arrays, each column by `->>` and a cast: history.py
_PARSED), typed arrays (one text[]/int4[]/float8[] parameter per column, unnest), and
jsonb_to_recordset over objects. 15 rows a statement (a trip's settle), 2,000 statements a
variant, 5 rounds interleaved; the backend's CPU from /proc and this client's, per row.

    PYTHONPATH=src /work/main/.venv/bin/python bench/pg_history_bind.py

Figures only: it asserts nothing.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import psycopg

from conveyor.store.history_fold_sql import PENDING_COLUMNS
from conveyor.store.postgres.history import _ATTEMPT_TYPES, _PARSED

URL = os.environ.get("BENCH_DATABASE", "postgresql://postgres@127.0.0.1:5432/test")
ROWS, STATEMENTS, ROUNDS = 15, 2000, 5
OUT = "SELECT count(*), sum(pid), max(ended_at) FROM "


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    rows = [[f"01JOB{i:020d}", 1, "job", "default", None, "w-abc123", "host1", 4242,
             1.7e9 + i, 1.7e9 + i + .001, .001, "completed", None, None, None, None, None,
             0.0002, 50_000_000, 3] for i in range(ROWS)]
    columns = [list(c) for c in zip(*rows, strict=True)]
    objects = [dict(zip(PENDING_COLUMNS, r, strict=True)) for r in rows]
    typed = ", ".join(f"{c} {t}" for c, t in zip(PENDING_COLUMNS, _ATTEMPT_TYPES, strict=True))
    variants: dict[str, tuple[str, Callable[[], tuple[Any, ...]]]] = {
        "jsonb ->> (store)": (_PARSED.replace("%(rows)s", "%s") + OUT + "parsed",
                              lambda: (orjson.dumps(rows).decode(),)),
        "typed arrays": (OUT + "unnest(" + ", ".join(f"%s::{t}[]" for t in _ATTEMPT_TYPES)
                         + ") AS parsed(" + ", ".join(PENDING_COLUMNS) + ")",
                         lambda: tuple(columns)),
        "jsonb_to_recordset": (OUT + f"jsonb_to_recordset(%s::jsonb) AS parsed({typed})",
                               lambda: (orjson.dumps(objects).decode(),)),
    }
    got: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    with psycopg.connect(URL, autocommit=True, prepare_threshold=0) as conn:
        pid = conn.info.backend_pid
        for _ in range(ROUNDS):
            for name, (sql, args) in variants.items():
                conn.execute(sql, args())
                server, client = cpu_seconds(pid), time.process_time()
                for _ in range(STATEMENTS):
                    conn.execute(sql, args())
                per_row = STATEMENTS * ROWS / 1e6
                got[name].append(((cpu_seconds(pid) - server) / per_row,
                                  (time.process_time() - client) / per_row))
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"{ROWS} rows a statement, {STATEMENTS} statements, {ROUNDS} rounds (load {load}):")
    for name, figures in got.items():
        print(f"{name:20} server {statistics.median(f[0] for f in figures):6.2f} µs/row, "
              f"client {statistics.median(f[1] for f in figures):6.2f} µs/row")


if __name__ == "__main__":
    main()
