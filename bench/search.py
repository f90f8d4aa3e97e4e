"""Finding jobs (issue 16): what each search costs on a filled table.

Fills a store with `--jobs` jobs (20 queues, 50 tenants, every 50th job failed once with an
error message), optionally sealed (`--keys`: CONVEYOR_ENCRYPTION_KEYS on, so every payload
and error is opened one by one), then times each read 20 times: p50 and p95 in ms.

- names: GET /api/v1/names's read (store job_names), admin and one tenant
- task_contains: a name fragment resolved to names, then a page of 50 (an ordinary list)
- payload: a field search whose value no job holds, so it reads its whole scan (1,000
  candidates, the default), admin and one tenant
- error: an error search whose text no job holds: 1,000 candidates from the index of failed
  jobs

    .venv/bin/python bench/search.py --jobs 200000
    .venv/bin/python bench/search.py --jobs 200000 --url postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/search.py --jobs 200000 --keys

Figures only: it asserts nothing.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from conveyor import Conveyor, Settings
from conveyor.job import ErrorInfo, JobFilter
from conveyor.search import Search
from conveyor.store.base import Fail


def fill(app: Conveyor, jobs: int) -> None:
    for start in range(0, jobs, 1000):
        app.enqueue_many([{"task": f"task-{n % 40}", "queue": f"queue-{n % 20}",
                           "tenant": f"tenant-{n % 50}", "delay": 3600 * 24,
                           "payload": {"order_id": f"ord-{n}", "n": n}}
                          for n in range(start, min(jobs, start + 1000))])
    failing = [{"task": "flaky", "queue": "flaky", "tenant": f"tenant-{n % 50}",
                "payload": {"order_id": f"flaky-{n}"}} for n in range(jobs // 50)]
    for start in range(0, len(failing), 1000):
        app.enqueue_many(failing[start:start + 1000])
    while True:
        claimed = app.call(lambda s: s.claim(["flaky"], "bench", 500, 60.0))
        if not claimed:
            return
        app.call(lambda s, c=claimed: s.settle([Fail(j.lease, ErrorInfo(
            attempt=1, type="RuntimeError", message=f"upstream answered 502 for {j.id}",
            traceback=None, worker="bench", host="bench", at=time.time()), retry_in=3600)
            for j in c]))


def timed(read: Callable[[], Any], rounds: int = 20) -> tuple[float, float]:
    read()  # warm
    took = []
    for _ in range(rounds):
        began = time.perf_counter()
        read()
        took.append((time.perf_counter() - began) * 1000)
    took.sort()
    return statistics.median(took), took[int(len(took) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=200_000)
    parser.add_argument("--url", default=None)
    parser.add_argument("--keys", action="store_true")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="conveyor-search-")
    url = args.url or f"sqlite:///{folder}/search.db"
    if url.startswith("postgres"):
        url += f"?schema=bench_search_{secrets.token_hex(4)}"
    keys = "k1:" + base64.b64encode(os.urandom(32)).decode() if args.keys else None
    app = Conveyor(settings=Settings.load(url=url, encryption_keys=keys, log_level="CRITICAL"),
                   auto_migrate=True)
    began = time.perf_counter()
    fill(app, args.jobs)
    print(f"store {url.split('?')[0]}, {args.jobs:,} jobs + {args.jobs // 50:,} failed once, "
          f"sealed: {bool(keys)}; filled in {time.perf_counter() - began:.0f} s")
    tenant = JobFilter(tenant="tenant-7")
    reads: dict[str, Callable[[], Any]] = {
        "names (admin)": lambda: app.job_names(),
        "names (tenant)": lambda: app.job_names("tenant-7"),
        "task_contains=task-1 (page of 50)": lambda: app.search_jobs(
            JobFilter(), Search.parse(task_contains="task-1")),
        "payload=order_id:none, scan 1,000 (admin)": lambda: app.search_jobs(
            JobFilter(), Search.parse(field="order_id:none")),
        "payload=order_id:none, scan 1,000 (tenant)": lambda: app.search_jobs(
            tenant, Search.parse(field="order_id:none")),
        "error=none, scan 1,000 failed jobs": lambda: app.search_jobs(
            JobFilter(), Search.parse(error="no such text")),
    }
    print(f"{'read':48} {'p50 ms':>8} {'p95 ms':>8}")
    for name, read in reads.items():
        p50, p95 = timed(read)
        print(f"{name:48} {p50:8.1f} {p95:8.1f}")
    app.close()


if __name__ == "__main__":
    main()
