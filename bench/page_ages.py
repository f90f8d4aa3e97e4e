"""Each GET of one dashboard page while 2 workers drain, one line per request: its time, the
age its figures state (data-snapshot-age) and whether it was an older copy served while a
slow read went on (web/snapshot.py: `stale`, `wait`). Shows which requests of a page wait
for the refresh of its shared copy (issue 16).

    PYTHONPATH=$PWD/src .venv/bin/python bench/page_ages.py --schema bench_reads_10m --path /

Runs `conveyor serve` and the workers as bench/reads.py does (on a schema it loaded and
kept): give PYTHONPATH as an absolute path, as the processes run in a folder of their own.
Figures only: it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schema", default="bench_reads_10m")
    parser.add_argument("--path", default="/")
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--gap", type=float, default=0.3, help="seconds between requests")
    parser.add_argument("--port", type=int, default=8795)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from reads import PG, QUEUES, Processes, uptime, wait_up

    processes = Processes(f"{PG}?schema={args.schema}",
                          Path(tempfile.mkdtemp(prefix="conveyor-page-ages-")))
    print(f"# {args.path} while 2 workers drain, schema {args.schema}, a GET every "
          f"{args.gap} s; PYTHONPATH={os.environ.get('PYTHONPATH', '')}")
    print(f"uptime: {uptime()}")
    try:
        processes.start("serve", "serve", "--port", str(args.port))
        with httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=60) as client:
            wait_up(client)
            for _ in range(5):  # warm
                client.get(args.path)
            for n in range(2):
                processes.start(f"worker{n}", "worker", "--app", "reads_app:app", "--queues",
                                ",".join(QUEUES), "--concurrency", "20")
            time.sleep(5)
            took = []
            for _ in range(args.requests):
                began = time.perf_counter()
                html = client.get(args.path).text
                took.append((time.perf_counter() - began) * 1000)
                age = re.search(r'data-snapshot-age="([0-9.]+)"', html)
                print(f"{took[-1]:7.1f} ms  age {float(age.group(1)) if age else -1:5.2f} s"
                      f"{'  older copy, a read under way' if 'rereading' in html else ''}")
                time.sleep(args.gap)
    finally:
        processes.stop(*list(processes.procs))
    took.sort()
    print(f"uptime: {uptime()}")
    print(f"p50 {statistics.median(took):.1f} ms, p95 {took[round(0.95 * len(took)) - 1]:.1f}, "
          f"max {took[-1]:.1f}")


if __name__ == "__main__":
    main()
