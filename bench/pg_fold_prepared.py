"""The PostgreSQL history fold's server CPU per folded row through the store (fold_history,
as maintenance calls it), source trees interleaved: each child settles `rows` jobs with
their attempt records, then folds them, `folds` times over, on a store whose pool holds 10
connections (opened first), which take the folds in turn as a drain's pool does; the CPU of
their backends (utime + stime from /proc: the server is on this machine) during the folds
only, per row. A drain folds about once a second, ~1,000 rows at 1,000 jobs/s, each time on
some connection of the pool: what a fold costs besides its rows (its parse and plan) counts
at that size.

    /work/main/.venv/bin/python bench/pg_fold_prepared.py --trees /tmp/old,. --rounds 4

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

URL = os.environ.get("BENCH_DATABASE", "postgresql://postgres@127.0.0.1:5432/test")
T0 = 1_700_000_000.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def child(rows: int, folds: int) -> dict[str, float]:
    import psycopg

    from conveyor.history.records import AttemptRecord
    from conveyor.job import NewJob, new_id
    from conveyor.store.base import Complete
    from conveyor.store.postgres.store import PostgresStore

    schema = f"bench_fold_{secrets.token_hex(4)}"
    store = PostgresStore(f"{URL}?schema={schema}&pool_size=10")
    await store.open()
    spent = 0.0
    pids: list[int] = []

    async def hold() -> None:
        async with store._session() as conn:
            pids.append(conn.info.backend_pid)
            await conn.execute("SELECT pg_sleep(0.2)")

    try:
        await store.migrate()
        await asyncio.gather(*(hold() for _ in range(10)))  # the pool at its 10
        for fold in range(folds + 2):  # two to warm up
            await store.enqueue_many([NewJob(new_id(), "t", "q", b"{}") for _ in range(rows)],
                                     now=T0 + fold)
            jobs = await store.claim(["q"], "w", rows, 30.0, now=T0 + fold)
            await store.settle([Complete(job.lease, attempt=AttemptRecord(
                task=job.task, queue=job.queue, tenant=job.tenant, number=job.attempt,
                started_at=T0 + fold, ended_at=T0 + fold + 0.001, worker_id="w", host="h",
                pid=1)) for job in jobs], now=T0 + fold)
            before = sum(map(cpu_seconds, pids))
            moved = await store.fold_history()
            if fold >= 2:
                spent += sum(map(cpu_seconds, pids)) - before
            assert moved == rows, moved
    finally:
        await store.close()
        with psycopg.connect(URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return {"us_per_row": spent / (rows * folds) * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trees", default=".")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--folds", type=int, default=20)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(args.rows, args.folds))))
        return
    trees = [Path(t).resolve() for t in args.trees.split(",")]
    got: dict[Path, list[float]] = {tree: [] for tree in trees}
    for round_no in range(args.rounds):
        for tree in trees if round_no % 2 == 0 else trees[::-1]:
            out = subprocess.run(
                [sys.executable, __file__, "--child", "--rows", str(args.rows), "--folds",
                 str(args.folds)], env={**os.environ, "PYTHONPATH": str(tree / "src")},
                check=True, stdout=subprocess.PIPE, text=True).stdout
            figure = json.loads(out.strip().splitlines()[-1])["us_per_row"]
            got[tree].append(figure)
            load = Path("/proc/loadavg").read_text().split()[0]
            print(f"round {round_no} {tree.name:12} {figure:6.2f} µs/row (load {load})",
                  flush=True)
    first = got[trees[0]]
    for tree, values in got.items():
        ratios = [v / f for v, f in zip(values, first, strict=True)]
        print(f"{tree.name:12} median {statistics.median(values):6.2f} µs/row server CPU, "
              f"x{statistics.median(ratios):.3f} of {trees[0].name} (per round: "
              f"{', '.join(f'{r:.2f}' for r in ratios)})")


if __name__ == "__main__":
    main()
