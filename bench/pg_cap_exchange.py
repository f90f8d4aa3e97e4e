"""Issue 14: a capped PostgreSQL exchange against an unlimited one, one process, no worker:
the server's and this process's CPU per job, and how the pool's connections planned the
statements they prepared (pg_prepared_statements: generic and custom plans).

A fresh schema with `--jobs` jobs on queue q, capped at 20 (`capped`: two grant holders "a"
and "b" of 10 slots, ClaimAsk.holding as the worker sends it) or not (`unlimited`); the two
workers take turns in one process: settle what they hold and claim 10 again in one
settle_and_claim (the worker's claim loop), until the queue is empty. Modes alternate, the
order flipped each round.

    PYTHONPATH=src /work/main/.venv/bin/python bench/pg_cap_exchange.py --rounds 4

Figures only: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import secrets
import statistics
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import _queries as psycopg_queries

from conveyor.job import ClaimedJob, NewJob, new_id
from conveyor.limits.model import Limit
from conveyor.store.base import ClaimAsk, Complete
from conveyor.store.postgres.store import PostgresStore

BASE = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
PLANS = """SELECT generic_plans, custom_plans, left(regexp_replace(statement, '\\s+', ' ', 'g'), 60)
FROM pg_prepared_statements ORDER BY 2 DESC, 1 DESC"""


COUNTS = {"executes": 0, "parses": 0}  # psycopg's executes; its uncached placeholder parses


def _counting() -> None:
    plain_execute = psycopg.AsyncCursor.execute
    plain_parse = psycopg_queries._query2pg_nocache

    async def execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        COUNTS["executes"] += 1
        return await plain_execute(self, *args, **kwargs)

    def parse(*args: Any) -> Any:
        COUNTS["parses"] += 1
        return plain_parse(*args)

    psycopg.AsyncCursor.execute = execute  # type: ignore[method-assign]
    psycopg_queries._query2pg_nocache = parse
    psycopg_queries._query2pg = functools.lru_cache(parse)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backends(conn: psycopg.Connection[tuple[object, ...]], app: str) -> dict[int, float]:
    rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                        (app,)).fetchall()
    return {int(r[0]): cpu_seconds(int(r[0])) for r in rows}  # type: ignore[call-overload]


async def drain(jobs: int, capped: bool, plans: bool) -> dict[str, object]:
    schema = f"bench_capx_{secrets.token_hex(4)}"
    url = f"{BASE}?schema={schema}&application_name={schema}"
    store = PostgresStore(url)
    await store.open()
    admin = psycopg.connect(BASE, autocommit=True)
    try:
        await store.migrate()
        if capped:
            await store.set_limit(Limit("queue", "q", concurrency=20))
        for start in range(0, jobs, 1000):
            await store.enqueue_many([NewJob(new_id(), "t", "q", b"{}")
                                      for _ in range(min(1000, jobs - start))])
        held: dict[str, list[ClaimedJob]] = {"a": [], "b": []}
        if capped:
            for worker in held:
                await store.renew_grants(worker, ["q"], 10, [], 30.0)
        cpu0, own0 = backends(admin, schema), time.process_time()
        executes0, parses0 = COUNTS["executes"], COUNTS["parses"]
        done = trips = 0
        while True:
            claimed = 0
            for worker, mine in held.items():
                holding = {"q": len(mine)} if capped else None
                answer = await store.settle_and_claim(
                    [Complete(j.lease) for j in mine],
                    ClaimAsk(["q"], worker, 10, 30.0, holding=holding))
                trips += 1
                done += len(mine)
                held[worker] = answer.jobs
                claimed += len(answer.jobs)
            if not claimed:
                break
        own = time.process_time() - own0
        cpu1 = {pid: cpu_seconds(pid) for pid in cpu0}
        spent = sum(cpu1[p] - cpu0[p] for p in cpu0)
        found: list[tuple[object, ...]] = []
        if plans:
            async with store.pools.connection() as conn:
                found = [tuple(r) for r in await (await conn.execute(PLANS)).fetchall()]
        return {"jobs": done, "trips": trips, "server_us": spent / done * 1e6,
                "client_us": own / done * 1e6, "plans": found,
                "executes_per_trip": (COUNTS["executes"] - executes0) / trips,
                "parses_per_trip": (COUNTS["parses"] - parses0) / trips}
    finally:
        await store.close()
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--plans", action="store_true", help="print one connection's plans")
    parser.add_argument("--json", help="write every drain here")
    args = parser.parse_args()
    _counting()
    results: list[dict[str, object]] = []
    for round_no in range(args.rounds):
        modes = [False, True] if round_no % 2 == 0 else [True, False]
        for capped in modes:
            got = asyncio.run(drain(args.jobs, capped, args.plans))
            load = os.getloadavg()[0]
            results.append({"round": round_no, "capped": capped, "load": load, **got})
            print(f"round {round_no} {'capped   ' if capped else 'unlimited'} "
                  f"server {got['server_us']:6.0f} us/job  client {got['client_us']:6.0f} us/job"
                  f"  trips {got['trips']}  executes/trip {got['executes_per_trip']:.2f}"
                  f"  parses/trip {got['parses_per_trip']:.2f}  (load {load:.1f})", flush=True)
            for row in got["plans"]:  # type: ignore[union-attr]
                print("    ", row)
    for capped in (False, True):
        mine = [r for r in results if r["capped"] is capped]
        print(f"median {'capped   ' if capped else 'unlimited'} server "
              f"{statistics.median(float(r['server_us']) for r in mine):.0f} us/job, client "  # type: ignore[arg-type]
              f"{statistics.median(float(r['client_us']) for r in mine):.0f} us/job")  # type: ignore[arg-type]
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
