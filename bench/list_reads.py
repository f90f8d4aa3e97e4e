"""The jobs list at size, every combination of its counted filters, source trees A/B (issue 16).

On a kept SQLite file loaded by bench/reads.py's load (1M jobs: 20 queues, 10 tasks, 50
tenants, every state), each tree in a child process of its own (PYTHONPATH=<tree>/src) times
`store.list_jobs(where, limit=51)` (the API's page: 50 + 1) for each filter: queue=q7,
task=bench.t3, tenant=org-17 in every combination (none to all three) times the states
(none, completed, dead, running, queued+scheduled, dead+cancelled), and a next page of each
(the first page's last id as the cursor). Per filter: wall p50/p95 ms and the child's CPU ms
per read (os.times). Trees alternate round by round (A B, B A, ...); medians over rounds.

    PYTHONPATH= .venv/bin/python bench/list_reads.py --ab /tmp/old=/tmp/old.db,.=/tmp/new.db \
        --rounds 4 --reads 12 --json /tmp/lists.json

The two files hold the same jobs (copy one, then migrate the copy with the new tree: the
child migrates its file before timing). Figures only: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

FIELDS = {"queue": "q7", "task": "bench.t3", "tenant": "org-17"}
STATES = {"": (), "completed": ("completed",), "dead": ("dead",), "running": ("running",),
          "queued,scheduled": ("queued", "scheduled"), "dead,cancelled": ("dead", "cancelled")}


def filters() -> dict[str, dict[str, object]]:
    found = {}
    for n in range(4):
        for names in itertools.combinations(FIELDS, n):
            for label, states in STATES.items():
                fields: dict[str, object] = {name: FIELDS[name] for name in names}
                if states:
                    fields["states"] = states
                text = "&".join([f"{k}={v}" for k, v in fields.items() if k != "states"]
                                + ([f"state={label}"] if states else []))
                found[text or "(none)"] = fields
    return found


def child(path: str, reads: int) -> None:
    from conveyor.job import JobFilter, JobState
    from conveyor.store.base import open_store

    async def run() -> dict[str, dict[str, float]]:
        store = open_store(f"sqlite:///{path}")
        await store.migrate()
        out = {}
        for label, fields in filters().items():
            states = tuple(JobState(s) for s in fields.get("states", ()))  # type: ignore[attr-defined]
            where = JobFilter(**{**fields, "states": states})  # type: ignore[arg-type]
            for page in ("first", "next"):
                after = None
                if page == "next":
                    first = await store.list_jobs(where, limit=51)
                    if len(first) < 51:
                        continue
                    after = first[-1].id
                await store.list_jobs(where, after=after, limit=51)  # warm
                walls = []
                cpu0 = sum(os.times()[:2])
                for _ in range(reads):
                    began = time.perf_counter()
                    await store.list_jobs(where, after=after, limit=51)
                    walls.append((time.perf_counter() - began) * 1000)
                cpu = (sum(os.times()[:2]) - cpu0) * 1000 / reads
                walls.sort()
                out[f"{label} [{page}]"] = {
                    "p50": round(statistics.median(walls), 2),
                    "p95": round(walls[min(len(walls) - 1, round(0.95 * len(walls)))], 2),
                    "cpu": round(cpu, 2)}
        await store.close()
        return out

    print(json.dumps(asyncio.run(run())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ab", help="TREE=FILE,TREE=FILE: the trees and their files")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--reads", type=int, default=12)
    parser.add_argument("--json", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.reads)
        return
    trees = [pair.split("=", 1) for pair in args.ab.split(",")]
    rounds: dict[str, list[dict[str, dict[str, float]]]] = {tree: [] for tree, _ in trees}
    for n in range(args.rounds):
        order = trees if n % 2 == 0 else list(reversed(trees))
        for tree, path in order:
            env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve() / "src")}
            load = os.getloadavg()[0]
            done = subprocess.run([sys.executable, __file__, "--child", path, "--reads",
                                   str(args.reads)], env=env, capture_output=True, text=True,
                                  check=True)
            rounds[tree].append(json.loads(done.stdout))
            print(f"round {n + 1} {tree}: load {load:.1f}", file=sys.stderr)
    summary = {tree: {label: {k: round(statistics.median(r[label][k] for r in runs), 2)
                              for k in ("p50", "p95", "cpu")}
                      for label in runs[0]}
               for tree, runs in rounds.items()}
    names = [tree for tree, _ in trees]
    print("| filter | " + " | ".join(f"{t} p50 / p95 / cpu" for t in names) + " |")
    print("| --- | " + " | ".join("--:" for _ in names) + " |")
    for label in summary[names[0]]:
        cells = [" / ".join(f"{summary[t][label][k]:.2f}" for k in ("p50", "p95", "cpu"))
                 if label in summary[t] else "-" for t in names]
        print(f"| {label} | " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"rounds": rounds, "summary": summary}))


if __name__ == "__main__":
    main()
