"""The count trigger of job updates, two versions of its function, by the backend's CPU (not
EXPLAIN ANALYZE's timing, whose per-node cost weighs on a bigger plan): pg_trigger_cost.py's
schema and statements (claim: queued -> running; settle: running -> completed), batches of 15
ids as a trip's, every job once per step, versions interleaved over 4 rounds; µs per job of
the whole statement, its trigger included.

    PYTHONPATH=src /work/main/.venv/bin/python bench/pg_trigger_cpu.py 15000 \
        bench/pg_count_trigger_one_statement.sql

Figures only: it asserts nothing.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import sys

import pg_trigger_cost as t
import psycopg
from pg_fold_prepared import cpu_seconds

BATCH = 15


def main() -> None:
    jobs, new = int(sys.argv[1]), sys.argv[2]
    schema = f"bench_{secrets.token_hex(4)}"
    asyncio.run(t.build(f"{t.PG}?schema={schema}", jobs))
    variants = {"0022": t.trigger_function("0022", schema), "new": t.trigger_function(new, schema)}
    s = f'"{schema}"'
    got: dict[str, dict[str, list[float]]] = {v: {"claim": [], "settle": []} for v in variants}
    with psycopg.connect(t.PG, autocommit=True) as conn:
        pid = conn.info.backend_pid
        try:
            ids = [r[0] for r in conn.execute(
                f"SELECT id FROM {s}.conveyor_jobs ORDER BY id").fetchall()]
            for round_no in range(4):
                for name in list(variants)[::1 if round_no % 2 == 0 else -1]:
                    conn.execute(variants[name])
                    conn.execute(t.RESET.format(s=s))
                    conn.execute(f"TRUNCATE {s}.conveyor_count_deltas, "
                                 f"{s}.conveyor_finished_deltas")
                    conn.execute(f"VACUUM (ANALYZE) {s}.conveyor_jobs")
                    for step in ("claim", "settle"):
                        statement = t.STEPS[step].format(s=s)
                        before = cpu_seconds(pid)
                        for start in range(0, jobs, BATCH):
                            conn.execute(statement, (ids[start:start + BATCH],))
                        got[name][step].append((cpu_seconds(pid) - before) / jobs * 1e6)
        finally:
            conn.execute(f"DROP SCHEMA IF EXISTS {s} CASCADE")
    for name, steps in got.items():
        print(f"{name:5} " + "  ".join(
            f"{step} {statistics.median(v):6.1f} µs/job ({', '.join(f'{x:.1f}' for x in v)})"
            for step, v in steps.items()))


if __name__ == "__main__":
    main()
