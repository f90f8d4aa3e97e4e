"""Issues 14/15: the server CPU of statements planned over and over, source trees interleaved.

Two measures, each a child process per tree (PYTHONPATH=<tree>/src), trees alternating within
each round, the order flipped each round; the backend's CPU is read from
/proc/<pid>/schedstat (nanoseconds), so the server must run on this host.

- `warm`: a connection's first worker rounds. A drain's pool grows to 6-8 connections per
  worker process, and each new connection parses and plans the exchange's statements again
  (psycopg prepares at a statement's fifth use on a connection). Per connection: a fresh
  store of one pooled connection claims 10 jobs, then `--exchanges` settle_and_claim rounds
  (10 completes and a claim of 10); the backend's CPU from its first use (its start not
  counted) to the last round, per round.
- `promote`: maintenance's promote_scheduled with nothing due, as a drain runs it (on any of
  the pool's connections, rarely five times on one: never prepared, so here with
  prepare=off), `--calls` calls; the backend's CPU per call.

    /work/main/.venv/bin/python bench/pg_plan_cpu.py --trees /tmp/old,. --rounds 5

Figures only: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
BASE = os.environ.get("CONVEYOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def cpu_ns(pid: int) -> int:
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


async def warm(url: str, connections: int, exchanges: int) -> float:
    from conveyor.job import NewJob, new_id
    from conveyor.store.base import ClaimAsk, Complete
    from conveyor.store.postgres.store import PostgresStore

    setup = PostgresStore(url + "&pool_size=1")
    await setup.open()
    await setup.migrate()
    jobs = connections * (exchanges + 1) * 10
    for start in range(0, jobs, 1000):
        await setup.enqueue_many([NewJob(new_id(), "t", "q", b"{}")
                                  for _ in range(min(1000, jobs - start))])
    await setup.close()
    ask = ClaimAsk(["q"], "w", 10, 30)
    spent = 0
    for _ in range(connections):
        store = PostgresStore(url + "&pool_size=1")
        await store.open()
        async with store.pools.connection() as conn:
            pid = conn.info.backend_pid
        before = cpu_ns(pid)  # the connection's start is not counted
        held = (await store.settle_and_claim([], ask)).jobs
        for _ in range(exchanges):
            held = (await store.settle_and_claim([Complete(j.lease) for j in held], ask)).jobs
        spent += cpu_ns(pid) - before
        await store.close()
    return spent / 1e3 / (connections * exchanges)


async def promote(url: str, calls: int) -> float:
    from conveyor.store.postgres.store import PostgresStore

    store = PostgresStore(url + "&pool_size=1&prepare=off")
    await store.open()
    await store.migrate()
    async with store.pools.connection() as conn:
        pid = conn.info.backend_pid
    for _ in range(20):
        await store.promote_scheduled()
    before = cpu_ns(pid)
    for _ in range(calls):
        assert (await store.promote_scheduled())[0] == 0
    spent = cpu_ns(pid) - before
    await store.close()
    return spent / 1e3 / calls


def child(args: argparse.Namespace) -> None:
    import psycopg

    schema = f"bench_pgplan_{secrets.token_hex(4)}"
    url = f"{BASE}?schema={schema}"
    try:
        if args.measure == "warm":
            got = asyncio.run(warm(url, args.connections, args.exchanges))
        else:
            got = asyncio.run(promote(url, args.calls))
    finally:
        with psycopg.connect(BASE, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    print(json.dumps({"us": got}))


def load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trees", default=".", help="base,branch[,...]: repo roots (with src/)")
    parser.add_argument("--measure", choices=("warm", "promote"), default="warm")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--exchanges", type=int, default=10)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    trees = [Path(t).resolve() for t in args.trees.split(",")]
    results: dict[Path, list[float]] = {tree: [] for tree in trees}
    loads = []
    for round_no in range(args.rounds):
        for tree in trees if round_no % 2 == 0 else trees[::-1]:
            loads.append(load())
            env = {**os.environ, "PYTHONPATH": str(tree / "src")}
            out = subprocess.run(
                [sys.executable, str(HERE), "--child", "--measure", args.measure,
                 "--connections", str(args.connections), "--exchanges", str(args.exchanges),
                 "--calls", str(args.calls)],
                env=env, check=True, stdout=subprocess.PIPE, text=True)
            got: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
            results[tree].append(got["us"])
            print(f"round {round_no} {tree.name:14} {got['us']:8.1f} us (load {loads[-1]:.1f})",
                  flush=True)
    first = results[trees[0]]
    for tree in trees:
        ratios = [v / f for v, f in zip(results[tree], first, strict=True)]
        print(f"{tree.name:14} median {statistics.median(results[tree]):8.1f} us "
              f"(x{statistics.median(ratios):.3f}; rounds "
              f"{', '.join(f'{r:.2f}' for r in ratios)})")
    print(f"load {min(loads):.1f}-{max(loads):.1f}")


if __name__ == "__main__":
    main()
