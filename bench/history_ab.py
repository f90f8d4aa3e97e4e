"""History on/off drains of two checkouts, interleaved: each round runs the four drains
(old off, old on, new off, new on) in an order rotated by the round, each in a fresh
database and its own process, by this checkout's harness (bench/history.py) run on each
checkout's sources; a drain's figures include folding what it left pending. Prints
each round and the medians of the per-round ratios (on vs off within a checkout, and new
vs old per mode), so slow drift in the machine's load cancels within a round.

    git archive d72206d | tar -x -C /tmp/hist-base
    .venv/bin/python bench/history_ab.py --old /tmp/hist-base --stores sqlite,postgres

Figures only: it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from history import drop_schema, fresh_url

NEW = Path(__file__).resolve().parents[1]


def drain(root: Path, url: str, jobs: int, history: bool, live: bool
          ) -> tuple[float, float, float]:
    """(jobs/s, worker CPU µs per job, PostgreSQL backends' CPU µs per job) of one drain by
    the checkout at `root`, by this checkout's harness (bench/history.py; live drains on
    PostgreSQL through history_trip.py, which also reads its backends' CPU): drain, then
    fold what is left pending."""
    module, function = "history", "child_live" if live else "child"
    if live and "schema=" in url:
        module, function = "history_trip", "backend_cpu_child"
    code = (f"import sys; sys.path.insert(0, {str(NEW / 'bench')!r}); import {module}; "
            f"r = {module}.{function}({url!r}, {jobs}, {history}); "
            "print(1 / (1 / r[0] + r[2] / 1e6), r[1] + r[3], r[4] if len(r) > 4 else 0)")
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    done = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, check=True,
                          capture_output=True, text=True, timeout=900)
    rate, cpu, server = done.stdout.split()[-3:]
    return float(rate), float(cpu), float(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", required=True, type=Path, help="the old checkout's root")
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--live", action="store_true", help="worker.run(), as history.py")
    args = parser.parse_args()
    variants = [("old", False), ("old", True), ("new", False), ("new", True)]
    roots = {"old": args.old.resolve(), "new": NEW}
    for kind in args.stores.split(","):
        print(f"## {kind}: {args.jobs} jobs, one worker (concurrency 50), {args.rounds} rounds\n")
        print("| round | old off | old on | new off | new on | old on/off | new on/off |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        ratios: dict[str, list[float]] = {"old": [], "new": [], "off": [], "on": []}
        cpus: dict[tuple[str, bool], list[float]] = {v: [] for v in variants}
        servers: dict[tuple[str, bool], list[float]] = {v: [] for v in variants}
        cpu_ratios: dict[str, list[float]] = {"old": [], "new": []}
        with tempfile.TemporaryDirectory() as folder:
            for r in range(args.rounds):
                got = {}
                for code, history in variants[r % 4:] + variants[:r % 4]:
                    url = fresh_url(kind, folder)
                    try:
                        got[code, history] = drain(roots[code], url, args.jobs, history,
                                                   args.live)
                    finally:
                        drop_schema(url)
                    cpus[code, history].append(got[code, history][1])
                    servers[code, history].append(got[code, history][2])
                for code in ("old", "new"):  # drain time on / off - 1, CPU on / off - 1
                    ratios[code].append(got[code, False][0] / got[code, True][0] - 1)
                    cpu_ratios[code].append(sum(got[code, True][1:]) / sum(got[code, False][1:])
                                            - 1)
                for mode, history in (("off", False), ("on", True)):  # new vs old time
                    ratios[mode].append(got["old", history][0] / got["new", history][0] - 1)
                print(f"| {r + 1} | " + " | ".join(f"{got[v][0]:.0f}" for v in variants)
                      + f" | {ratios['old'][-1] * 100:+.1f} % | {ratios['new'][-1] * 100:+.1f} % |")
        med = {k: statistics.median(v) * 100 for k, v in ratios.items()}
        print(f"\nMedians of the per-round ratios: history's drain-time overhead old "
              f"{med['old']:+.1f} %, new {med['new']:+.1f} %; new vs old drain time, history "
              f"off {med['off']:+.1f} %, on {med['on']:+.1f} %.")
        print("Worker CPU µs/job (median): " + ", ".join(
            f"{code} {'on' if history else 'off'} {statistics.median(cpus[code, history]):.0f}"
            for code, history in variants))
        print("PostgreSQL backends' CPU µs/job (median): " + ", ".join(
            f"{code} {'on' if history else 'off'} {statistics.median(servers[code, history]):.0f}"
            for code, history in variants))
        print("History's CPU overhead (worker + backends, per job; medians of the per-round "
              "ratios): " + ", ".join(f"{code} {statistics.median(cpu_ratios[code]) * 100:+.1f} %"
                                      for code in ("old", "new")) + "\n")


if __name__ == "__main__":
    main()
