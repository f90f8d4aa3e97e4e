"""Issue 14, migration 0024: the unlimited PostgreSQL drain, one source tree against another
(this branch's claims and settles counting themselves vs the count trigger doing it); more
trees may follow (variants), each compared with the first.

Each drain is limit_drain.py's (a fresh database, `--jobs` no-op jobs enqueued in bulk, one
real `conveyor worker --concurrency 10 --processes P` draining them, timed from the first
job's start to the last's), unlimited only, in its own database (bench_self_counted, so it
never drops another bench's). Trees alternate within each round, the order flipped each
round, for each process count; prints per drain the rate, the worker processes' CPU and the
PostgreSQL backends' CPU per job, then the medians and the branch/base ratio per round.

    /work/main/.venv/bin/python bench/self_counted_ab.py --trees /tmp/base,. --rounds 3

Figures only: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))
import limit_drain  # noqa: E402  (bench/: the drain itself)

# its own database; BENCH_DATABASE names another, so that two runs on one server do not drop
# each other's (DROP DATABASE ... WITH (FORCE) at each drain)
limit_drain.PG_DATABASE = os.environ.get("BENCH_DATABASE", "bench_self_counted")


def one(tree: Path, processes: int, args: argparse.Namespace, workdir: Path
        ) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    out = subprocess.run(
        [sys.executable, str(HERE), "--child", "--jobs", str(args.jobs),
         "--processes", str(processes), "--workdir", str(workdir)],
        env=env, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trees", help="base,branch[,...]: repo roots (with src/)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--json", help="write every drain here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        limit_drain.unlimited_pg_child(args.workdir, args.jobs, int(args.processes))
        return
    if not args.trees:
        parser.error("--trees base,branch[,...]")
    trees = [Path(t).resolve() for t in args.trees.split(",")]
    names = [f"{n}:{t.name}" for n, t in enumerate(trees)]  # the first is the base
    workdir = Path(tempfile.mkdtemp(prefix="self-counted-"))
    (workdir / "limit_drain_app.py").write_text(limit_drain.APP)
    results = []
    for round_no in range(args.rounds):
        for processes in map(int, args.processes.split(",")):
            shift = round_no % len(trees)  # rotated: A B C, B C A, ...
            pairs = list(zip(names, trees, strict=True))
            for name, tree in pairs[shift:] + pairs[:shift]:
                got = one(tree, processes, args, workdir)
                results.append({"round": round_no, "tree": name, "processes": processes, **got})
                print(f"round {round_no} P={processes} {name:>16}: {got['rate']:7.0f} jobs/s  "
                      f"worker {got['worker_us']:5.0f} µs/job  "
                      f"backends {got['server_us']:5.0f} µs/job", flush=True)
                if args.json:
                    Path(args.json).write_text(json.dumps(results, indent=1))
    for processes in map(int, args.processes.split(",")):
        print(f"-- {processes} worker process(es), {args.rounds} rounds, {args.jobs} jobs")
        for name in names:
            mine = [r for r in results if r["tree"] == name and r["processes"] == processes]
            print(f"  {name:>16}: rate {statistics.median(r['rate'] for r in mine):7.0f}/s  "
                  f"worker {statistics.median(r['worker_us'] for r in mine):5.0f} µs/job  "
                  f"backends {statistics.median(r['server_us'] for r in mine):5.0f} µs/job")
            if name == names[0]:
                continue
            for key in ("rate", "server_us"):
                ratios = []
                for round_no in range(args.rounds):
                    pair = {r["tree"]: r[key] for r in results
                            if r["round"] == round_no and r["processes"] == processes}
                    ratios.append(pair[name] / pair[names[0]])
                print(f"    /base {key}: median {statistics.median(ratios):.3f} "
                      f"(rounds {', '.join(f'{x:.3f}' for x in ratios)})")

if __name__ == "__main__":
    main()
