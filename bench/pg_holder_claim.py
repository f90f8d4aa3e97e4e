"""Issue 14: the server CPU of a capped PostgreSQL drain's holder claims, with and without
the worker saying what it holds (ClaimAsk.holding), one process, no worker.

A fresh schema, cap 20 on queue q, `--jobs` jobs; two grant holders ("a", "b": renew_grants,
10 slots each) take turns in one process: settle their held jobs and claim again in one
settle_and_claim (as the worker's claim loop does), 10 at a time, until the queue is empty.
`told`: each ask carries holding={"q": n}, so the store neither counts the holder's jobs
nor (no rate) takes the limit row's lock (limits.LOCK_ROOM); `counted`: holding=None, as
before this branch (the count walks the queue's running-index entries of the last lease
period and fetches their heap rows). Prints the backends' CPU per job (/proc) and their
buffers per job (pg_stat_database), alternating the two modes for `--rounds` rounds.

    PYTHONPATH=src /work/main/.venv/bin/python bench/pg_holder_claim.py --rounds 4

Figures only: it asserts nothing. Needs this branch's tree (ClaimAsk.holding).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
from pathlib import Path

import psycopg

from conveyor.job import ClaimedJob, NewJob, new_id
from conveyor.limits.model import Limit
from conveyor.store.base import ClaimAsk, Complete
from conveyor.store.postgres.store import PostgresStore

BASE = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backends(conn: psycopg.Connection[tuple[object, ...]], app: str) -> dict[int, float]:
    rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                        (app,)).fetchall()
    return {int(r[0]): cpu_seconds(int(r[0])) for r in rows}  # type: ignore[call-overload]


def buffers(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    row = conn.execute("SELECT blks_hit + blks_read FROM pg_stat_database"
                       " WHERE datname = current_database()").fetchone()
    return int(row[0]) if row else 0  # type: ignore[call-overload]


async def drain(jobs: int, told: bool) -> dict[str, float]:
    schema = f"bench_holder_{secrets.token_hex(4)}"
    url = f"{BASE}?schema={schema}&application_name={schema}"
    store = PostgresStore(url)
    await store.open()
    admin = psycopg.connect(BASE, autocommit=True)
    try:
        await store.migrate()
        await store.set_limit(Limit("queue", "q", concurrency=20))
        for start in range(0, jobs, 1000):
            await store.enqueue_many([NewJob(new_id(), "t", "q", b"{}")
                                      for _ in range(min(1000, jobs - start))])
        held: dict[str, list[ClaimedJob]] = {"a": [], "b": []}
        for worker in held:
            await store.renew_grants(worker, ["q"], 10, [], 30.0)
        cpu0, buf0 = backends(admin, schema), buffers(admin)
        done = 0
        while True:
            claimed = 0
            for worker, mine in held.items():
                holding = {"q": 0} if told else None  # it settles all it holds first
                answer = await store.settle_and_claim(
                    [Complete(j.lease) for j in mine],
                    ClaimAsk(["q"], worker, 10, 30.0, holding=holding))
                done += len(mine)
                held[worker] = answer.jobs
                claimed += len(answer.jobs)
            if not claimed:
                break
        await asyncio.sleep(1.1)  # the backends flush their counters at most once a second
        cpu1 = {pid: cpu_seconds(pid) for pid in cpu0}
        spent = sum(cpu1[p] - cpu0[p] for p in cpu0)
        return {"jobs": done, "server_us": spent / done * 1e6,
                "buffers_per_job": (buffers(admin) - buf0) / done}
    finally:
        await store.close()
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--json", help="write every drain here")
    args = parser.parse_args()
    results: list[dict[str, object]] = []
    for round_no in range(args.rounds):
        modes = [False, True] if round_no % 2 == 0 else [True, False]
        for told in modes:
            got = asyncio.run(drain(args.jobs, told))
            load = os.getloadavg()[0]
            results.append({"round": round_no, "told": told, "load": load, **got})
            print(f"round {round_no} {'told   ' if told else 'counted'} "
                  f"server {got['server_us']:6.0f} us/job  buffers {got['buffers_per_job']:5.1f}"
                  f"/job  (load {load:.1f})", flush=True)
    for told in (False, True):
        mine = [r for r in results if r["told"] is told]
        print(f"median {'told   ' if told else 'counted'} server "
              f"{statistics.median(float(r['server_us']) for r in mine):.0f} us/job, buffers "  # type: ignore[arg-type]
              f"{statistics.median(float(r['buffers_per_job']) for r in mine):.1f}/job")  # type: ignore[arg-type]
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
