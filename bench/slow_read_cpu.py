"""The slowest-attempts read on a loaded PostgreSQL schema, with the server's CPU per read:
the backend's utime + stime from /proc/<pid>/stat (the server is on this machine) over
`rounds` runs of each range, beside the wall time. PYTHONPATH selects the tree: a tree
before 0025 runs history_sql.SLOW (the duration index of every attempt), one from 0025 on
its store's two statements (the 10-minute index, with JIT off in the transaction as the
store runs it), one from 0026 on the statement its store picks (the tops the fold kept).
Run trees alternately on one schema holding both indexes.

    PYTHONPATH=src .venv/bin/python bench/slow_read_cpu.py URL SCHEMA [rounds] [json] \
        [--filtered]

--filtered: instead, the 30-day reads of a task and of a queue (of every tenant and of
org-17), and a day's of a task.

Figures only: it asserts nothing.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
from typing import Any

import psycopg

from conveyor.history.records import TimeRange
from conveyor.store import history_sql as hq
from conveyor.store.history_reads import _scope
from conveyor.store.postgres.store import PostgresStore

READS: list[tuple[int, str | None, dict[str, str]]] = [
    (span, tenant, {}) for tenant in (None, "org-17") for span in (3600, 86400, 30 * 86400)]
FILTERED: list[tuple[int, str | None, dict[str, str]]] = [
    (86400, None, {"task": "bench.t3"}),
    *((30 * 86400, tenant, scope) for tenant in (None, "org-17")
      for scope in ({"task": "bench.t3"}, {"queue": "q7"}))]


def backend_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def statement(store: PostgresStore, window: TimeRange) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {**_scope(window), "limit": 20}
    if hasattr(hq, "SLOW_PART"):  # the branch: the 10-minute read
        from conveyor.store.postgres.history import PostgresHistory

        params |= {"first_part": math.floor(window.start / hq.SLOW_PART),
                   "last_part": math.floor(window.end / hq.SLOW_PART)}
        if hasattr(PostgresHistory, "_slow_statement"):  # 0026: the tops kept by the fold
            return store.statement(store._slow_statement(params)), params
        return store.statement(PostgresHistory._slow[window.tenant is None]), params
    return store.statement(hq.SLOW), params


def main(url: str, schema: str, rounds: int) -> None:
    args = [a for a in sys.argv[1:] if a != "--filtered"]
    store = PostgresStore(f"{url}?schema={schema}")
    out = {}
    with psycopg.connect(url, autocommit=True) as conn:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        for span, tenant, scope in FILTERED if "--filtered" in sys.argv else READS:
            now = time.time()
            sql, params = statement(store, TimeRange(now - span, now + 60, tenant=tenant,
                                                     **scope))
            walls = []
            for n in range(rounds + 2):
                if n == 2:
                    cpu_before = backend_cpu(pid)
                began = time.perf_counter()
                with conn.transaction():
                    conn.execute("SELECT set_config('jit', 'off', true)")
                    conn.execute(sql, params, prepare=True).fetchall()
                if n >= 2:
                    walls.append((time.perf_counter() - began) * 1000)
            label = (f"slow {span // 3600}h" + "".join(f" {k}" for k in scope)
                     + (f" ({tenant})" if tenant else ""))
            walls.sort()
            out[label] = {"wall_p50_ms": round(statistics.median(walls), 2),
                          "wall_p95_ms": round(walls[max(0, round(0.95 * len(walls)) - 1)], 2),
                          "server_cpu_ms": round((backend_cpu(pid) - cpu_before)
                                                 / rounds * 1000, 2)}
            print(f"| {label} | {out[label]['wall_p50_ms']} | {out[label]['wall_p95_ms']} | "
                  f"{out[label]['server_cpu_ms']} |", flush=True)
    if len(args) > 3:
        with open(args[3], "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--filtered"]
    main(args[0], args[1], int(args[2]) if len(args) > 2 else 20)
