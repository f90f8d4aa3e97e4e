"""Issue 15: the server CPU of one worker process's upkeep (maintenance) while it has no jobs,
and its backends, source trees interleaved.

A real `conveyor worker --processes P` on a fresh schema with nothing queued: what its
backends do is maintenance (promote, the two folds, rescue, expire every few seconds), the
heartbeat and the listener. After `--settle` seconds, the backends of its URL (found by
application_name, the schema) are counted and their CPU (/proc/<pid>/schedstat, ns) is read
over `--window` seconds: server CPU per second. Trees alternate, the order flipped each round.

    /work/main/.venv/bin/python bench/pg_upkeep_cpu.py --trees /tmp/old,. --rounds 4

Figures only: it asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

BASE = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
APP = '''
from conveyor import Conveyor

app = Conveyor()


@app.task(queue="default")
def job(payload: dict) -> None:
    return None
'''


def backends(name: str) -> dict[int, int]:
    """pid -> CPU ns of each backend whose application_name is `name`."""
    with psycopg.connect(BASE, autocommit=True) as conn:
        pids = [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,))]
    found = {}
    for pid in pids:
        with contextlib.suppress(OSError):  # a backend that has gone
            found[pid] = int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    return found


def one(tree: Path, args: argparse.Namespace, appdir: Path) -> dict[str, Any]:
    schema = f"bench_pgserver_{secrets.token_hex(4)}"
    url = f"{BASE}?schema={schema}&application_name={schema}"
    env = {**os.environ, "CONVEYOR_URL": url,
           "PYTHONPATH": os.pathsep.join([str(tree / "src"), str(appdir)])}
    python = sys.executable
    subprocess.run([python, "-m", "conveyor", "migrate", "--app", "upkeep_app:app"],
                   env=env, cwd=appdir, check=True, stdout=subprocess.DEVNULL)
    worker = subprocess.Popen(
        [python, "-m", "conveyor", "worker", "--app", "upkeep_app:app", "--concurrency", "10",
         "--processes", str(args.processes)], env=env, cwd=appdir,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        time.sleep(args.settle)
        before, began = backends(schema), time.monotonic()
        time.sleep(args.window)
        after, ended = backends(schema), time.monotonic()
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
        with psycopg.connect(BASE, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    used = sum(after[p] - before.get(p, after[p]) for p in after)  # ones opened late: from 0
    used += sum(after[p] for p in after if p not in before)
    return {"server_ms_per_s": used / 1e6 / (ended - began), "backends": len(after)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trees", default=".")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--settle", type=float, default=8.0)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--json")
    args = parser.parse_args()
    trees = [Path(t).resolve() for t in args.trees.split(",")]
    appdir = Path(tempfile.mkdtemp(prefix="pg-upkeep-"))
    (appdir / "upkeep_app.py").write_text(APP)
    results: list[dict[str, Any]] = []
    for round_no in range(args.rounds):
        for tree in (trees if round_no % 2 == 0 else trees[::-1]):
            got = one(tree, args, appdir)
            results.append({"round": round_no, "tree": str(tree), **got})
            print(f"round {round_no} {tree.name:16} {got['server_ms_per_s']:6.2f} ms/s "
                  f"({got['backends']} backends)", flush=True)
    for tree in trees:
        mine = [r for r in results if r["tree"] == str(tree)]
        print(f"{tree.name:16} median {statistics.median(r['server_ms_per_s'] for r in mine):6.2f}"
              f" ms/s server CPU, backends {sorted(r['backends'] for r in mine)}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
