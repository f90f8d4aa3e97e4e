"""The store reads behind the overview and the dead page, each timed on its own, idle and while
2 workers drain: which of them makes a page's shared copy slow to refresh (issue 16).

Runs against a store bench/reads.py loaded and kept (PostgreSQL --schema), calling the app's
methods as the pages do (web/overview.py, web/dead_view.py), one after another.

    .venv/bin/python bench/page_reads.py --schema bench_reads_10m --requests 20

Figures only: it asserts nothing. The workers drain queued jobs of the schema (as reads.py's
own drain does).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def store_reads(app: Any) -> list[tuple[str, Callable[[], Any]]]:
    from conveyor.job import JobFilter, JobState

    dead = JobFilter(states=(JobState.DEAD,))
    return [
        ("overview: stats", lambda: app.stats(tenant=None)),
        ("overview: queues", lambda: app.queues(tenant=None)),
        ("overview: 5 latest dead", lambda: app.list_jobs(dead, limit=5, redacted=True)),
        ("overview: workers", app.workers),
        ("overview: rollups 24h (30 points)",
         lambda: app.analytics.queues(app.analytics.window("24h"), 30)),
        ("overview: rollups last hour (per minute)",
         lambda: app.analytics.queues(app.analytics.window(3600.0), 61)),
        ("dead page: 51 dead letters",
         lambda: app.call(lambda store: store.dead_letters(None, None, None, 51))),
        ("dead page: dead queues", lambda: app.call(lambda store: store.dead_queues(None))),
    ]


def time_each(app: Any, requests: int) -> dict[str, tuple[float, float, float]]:
    timed = {}
    for label, read in store_reads(app):
        took = []
        for _ in range(requests):
            began = time.perf_counter()
            read()
            took.append((time.perf_counter() - began) * 1000)
        took.sort()
        timed[label] = (statistics.median(took), took[max(0, round(0.95 * len(took)) - 1)],
                        took[-1])
    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schema", default="bench_reads_10m")
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    import os

    from reads import PG, QUEUES, Processes, uptime

    url = f"{PG}?schema={args.schema}"
    os.environ["CONVEYOR_URL"] = url
    from reads_app import app

    print(f"# store reads of the overview and the dead page, schema {args.schema}")
    print(f"uptime: {uptime()}")
    time_each(app, 2)  # warm
    idle = time_each(app, args.requests)
    processes = Processes(url, Path(tempfile.mkdtemp(prefix="conveyor-page-reads-")))
    try:
        for n in range(2):
            processes.start(f"worker{n}", "worker", "--app", "reads_app:app", "--queues",
                            ",".join(QUEUES), "--concurrency", "20")
        time.sleep(5)
        busy = time_each(app, args.requests)
    finally:
        processes.stop(*list(processes.procs))
        app.close()
    print(f"uptime: {uptime()}")
    print(f"\n{args.requests} calls each, one after another\n")
    print("| store read | idle p50 ms | idle p95 | idle max | draining p50 | draining p95 "
          "| draining max |")
    print("| --- | --: | --: | --: | --: | --: | --: |")
    for label, (p50, p95, top) in idle.items():
        b50, b95, btop = busy[label]
        print(f"| {label} | {p50:.1f} | {p95:.1f} | {top:.1f} | {b50:.1f} | {b95:.1f} "
              f"| {btop:.1f} |")


if __name__ == "__main__":
    main()
