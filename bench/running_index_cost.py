"""What migration 0024 costs the drain's statements on PostgreSQL, server side: two schemas
in one database, one at version 23 (conveyor_jobs_lease) and one at the newest (the queue's
running index in its place), each drained by the same statements on one connection:
CLAIM_QUEUE of 10, a HEARTBEAT of the worker's jobs, COMPLETE of the 10, and a
RESCUE_EXPIRED every 50 claims (as a worker's maintenance would), with no ANALYZE (as in a
fresh drain with autovacuum behind). Schemas alternate within each round, the order flipped
each round; per job: the backend's CPU (/proc) and wall µs. Medians and per-round ratios.

    PYTHONPATH=src .venv/bin/python bench/running_index_cost.py --jobs 10000 --rounds 6
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

import psycopg

from conveyor.store.postgres import queries as q
from conveyor.store.postgres.store import PostgresStore

PG = os.environ.get("CONVEYOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
FILL = """INSERT INTO {schema}.conveyor_jobs (id, task, queue, state, payload)
SELECT lpad(n::text, 12, '0'), 'job', 'default', 'queued', '\\x7b7d'
FROM generate_series(1, %(jobs)s) AS n"""
TICKS = os.sysconf("SC_CLK_TCK")


def fresh(schema: str, version: int | None) -> PostgresStore:
    store = PostgresStore(f"{PG}?schema={schema}")
    if version is not None:
        store._migrations = [m for m in store._migrations if m.version <= version]

    async def run() -> None:
        try:
            await store.migrate()
        finally:
            await store.close()

    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    asyncio.run(run())
    return store


def cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def drain(store: PostgresStore, jobs: int) -> tuple[float, float]:
    """(backend CPU µs/job, wall µs/job) of draining `jobs` fresh jobs."""
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(store.statement(FILL), {"jobs": jobs})
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        claim, beat = store.statement(q.CLAIM_QUEUE), store.statement(q.HEARTBEAT)
        complete, rescue = store.statement(q.COMPLETE), store.statement(q.RESCUE_EXPIRED)
        base = {"now": None, "events": None}
        cpu0, wall0, done, token = cpu(pid), time.perf_counter(), 0, 0
        while done < jobs:
            token += 1
            rows = conn.execute(claim, {**base, "queue": "default", "limit": 10, "token": token,
                                        "lease_for": 30.0, "worker_id": "w",
                                        "host": "h"}).fetchall()
            if not rows:
                break
            conn.execute(beat, {**base, "id": "w", "host": "h", "pid": 1, "queues": "default",
                                "concurrency": 10, "running": len(rows), "claimed": 0,
                                "claimed_queues": "{}", "lease_for": 30.0}).fetchall()
            conn.execute(complete, {**base, "ids": [r[0] for r in rows],
                                    "tokens": [token] * len(rows),
                                    "results": [None] * len(rows)}).fetchall()
            if token % 50 == 0:
                conn.execute(rescue, {**base, "limit": 1000}).fetchall()
            done += len(rows)
        took_cpu, took_wall = cpu(pid) - cpu0, time.perf_counter() - wall0
    return took_cpu / done * 1e6, took_wall / done * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    variants = {"0023 (lease index)": 23, "0024 (queue's running index)": None}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    names = list(variants)
    for round_no in range(args.rounds):
        for name in (names if round_no % 2 == 0 else names[::-1]):
            store = fresh(f"bench_runidx_cost_{variants[name] or 24}", variants[name])
            got = drain(store, args.jobs)
            results[name].append(got)
            print(f"round {round_no} {name:30s} backend {got[0]:6.1f} µs/job  "
                  f"wall {got[1]:6.1f} µs/job", flush=True)
    for name in names:
        print(f"{name:30s} median backend {statistics.median(r[0] for r in results[name]):6.1f}"
              f" µs/job  wall {statistics.median(r[1] for r in results[name]):6.1f} µs/job")
    ratios = [new[0] / old[0] for old, new in zip(*results.values(), strict=True)]
    print("0024/0023 backend CPU per round: " + ", ".join(f"{r:.3f}" for r in ratios)
          + f"; median {statistics.median(ratios):.3f}")
    with psycopg.connect(PG, autocommit=True) as conn:
        for version in (23, 24):
            conn.execute(f'DROP SCHEMA IF EXISTS "bench_runidx_cost_{version}" CASCADE')


if __name__ == "__main__":
    main()
