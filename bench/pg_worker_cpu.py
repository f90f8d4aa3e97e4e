"""Issue 14: one worker's own CPU per job on PostgreSQL, capped (a queue limit of 20, its
grant of 10) against unlimited: a worker of 10 slots (worker.run, in this process) drains
`--jobs` no-op jobs from a fresh schema; this process's CPU (time.process_time) and its
backends' (/proc) per job, and the store calls it made per job (settle_and_claim,
renew_grants). Modes alternate, the order flipped each round, each drain in a child process
on each tree given (--trees, rotated each round). With --profile N, the loop's top N
functions by own time.

    /work/main/.venv/bin/python bench/pg_worker_cpu.py --trees /tmp/old,. --rounds 4
    /work/main/.venv/bin/python bench/pg_worker_cpu.py --caps 20 --rounds 1 --profile 30

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
import time
from pathlib import Path

BASE = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drain(jobs: int, cap: int, profile: int) -> dict[str, float]:
    import psycopg

    from conveyor import Conveyor, Settings
    from conveyor.store.postgres.store import PostgresStore

    schema = f"bench_pgwcpu_{secrets.token_hex(4)}"
    url = f"{BASE}?schema={schema}&application_name={schema}"
    calls = {"settle_and_claim": 0, "renew_grants": 0}
    for name in calls:
        plain = getattr(PostgresStore, name)

        def counted(self: object, *a: object, _plain: object = plain, _name: str = name,
                    **k: object) -> object:
            calls[_name] += 1
            return _plain(self, *a, **k)  # type: ignore[operator]

        setattr(PostgresStore, name, counted)
    app = Conveyor(settings=Settings.load(url=url, log_level="CRITICAL"), auto_migrate=True)
    admin = psycopg.connect(BASE, autocommit=True)
    ran = [0]

    @app.task(name="noop")
    async def noop(ctx: object, payload: dict[str, int]) -> None:
        ran[0] += 1
        if ran[0] == jobs:
            worker.stop()

    # after the task: a worker serves its app's tasks' queues ("default"), as `conveyor worker`
    worker = app.worker(concurrency=10, worker_id="bench-cpu")

    try:
        app.migrate()
        if cap:
            app.limits.set("queue", "default", concurrency=cap)
        for start in range(0, jobs, 1000):
            app.enqueue_many([("noop", {"n": n}) for n in range(start, min(jobs, start + 1000))])

        def backends() -> dict[int, float]:
            rows = admin.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                                 (schema,)).fetchall()
            return {int(r[0]): cpu_seconds(int(r[0])) for r in rows}

        async def run() -> None:
            await worker.run(install_signals=False)

        for name in calls:
            calls[name] = 0
        cpu = time.process_time()
        if profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.runcall(asyncio.run, run())
            pstats.Stats(profiler).sort_stats("tottime").print_stats(profile)
        else:
            asyncio.run(run())
        cpu = time.process_time() - cpu
        server = sum(backends().values())  # the pool's backends lived for this drain
        return {"client_us": cpu / jobs * 1e6, "server_us": server / jobs * 1e6,
                **{f"{k}_per_1k": v / jobs * 1000 for k, v in calls.items()}}
    finally:
        app.close()
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--trees", default=".", help="comma-separated repo roots (with src/)")
    parser.add_argument("--caps", default="0,20", help="the queue's caps to drain under (0: none)")
    parser.add_argument("--profile", type=int, default=0)
    parser.add_argument("--json", help="write every drain here")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)  # the cap, 0: none
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(drain(args.jobs, args.child, args.profile)))
        return
    trees = [Path(t).resolve() for t in args.trees.split(",")]
    caps = [int(c) for c in args.caps.split(",")]
    results: list[dict[str, object]] = []
    for round_no in range(args.rounds):
        shift = round_no % len(trees)
        for tree in trees[shift:] + trees[:shift]:  # the trees' order rotated each round
            for cap in (caps if round_no % 2 == 0 else caps[::-1]):
                out = subprocess.run([sys.executable, __file__, "--child", str(cap), "--jobs",
                                      str(args.jobs), "--profile", str(args.profile)],
                                     check=True, stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONPATH": str(tree / "src")})
                if args.profile:
                    print(f"==== {tree} cap {cap}\n" + out.stdout)
                got = json.loads(out.stdout.strip().splitlines()[-1])
                load = os.getloadavg()[0]
                results.append({"round": round_no, "tree": str(tree), "cap": cap, "load": load,
                                **got})
                print(f"round {round_no} {tree.name:14s} cap {cap:3d} client "
                      f"{got['client_us']:5.0f} server {got['server_us']:5.0f} us/job  "
                      f"exchanges/1k {got['settle_and_claim_per_1k']:5.1f}  renewals/1k "
                      f"{got['renew_grants_per_1k']:5.2f}  (load {load:.1f})", flush=True)
                if args.json:
                    Path(args.json).write_text(json.dumps(results, indent=1))
    for tree in trees:
        for cap in caps:
            mine = [r for r in results if r["cap"] == cap and r["tree"] == str(tree)]
            print(f"median {tree.name} cap {cap}: client "
                  f"{statistics.median(float(r['client_us']) for r in mine):.0f}, server "  # type: ignore[arg-type]
                  f"{statistics.median(float(r['server_us']) for r in mine):.0f} us/job")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
