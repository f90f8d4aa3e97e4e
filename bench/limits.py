"""Flow control's cost and accuracy (issue 14). Figures only: it asserts nothing.

    .venv/bin/python bench/limits.py                                   # SQLite
    .venv/bin/python bench/limits.py --url postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/limits.py --rate-run 60 [--url ...]         # + the 50/s ledger run

Drain: N no-op jobs claimed in batches of 20 and completed, through the store seam (no
workers), with (a) no limits at all, (b) the queue limited to 20 concurrent, (c) the queue
limited to 20 concurrent and 1,000,000 starts a minute (a rate logs every start), (d) an
unrelated task limited (every claim then takes the limited way). Medians of three rounds,
the order rotated each round. Then, with --rate-run S: real `conveyor worker` processes (2 on
SQLite, 4 on PostgreSQL) drain a backlog through a queue limited to 50 starts a second for S
seconds. The jobs' claim times (the store's clock: what the limit counts) give the total in
S seconds (target S x 50) and the most claims in any one-second window (the limit: 50); the
ledger of task starts (limitapp.py) shows how prefetching and scheduling in the worker can
bunch the starts themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from conveyor.job import JobFilter, NewJob, new_id
from conveyor.limits.model import Limit
from conveyor.store.base import Complete, Store, open_store

PAYLOAD = b'{"ms":0}'
JOBS = 6000
SCENARIOS = {
    "no limits": [],
    "queue concurrency 20": [Limit("queue", "work", concurrency=20)],
    "queue concurrency 20 + rate 1,000,000/min": [
        Limit("queue", "work", concurrency=20, rate=1_000_000, period=60.0)],
    "another task limited (limited claim path)": [Limit("task", "other", concurrency=5)],
}


async def drain(store: Store, limits: list[Limit]) -> float:
    """jobs/s draining JOBS no-op jobs with these limits set."""
    for limit in limits:
        await store.set_limit(limit)
    await store.enqueue_many([NewJob(new_id(), "job", "work", PAYLOAD) for _ in range(JOBS)])
    done, began = 0, time.perf_counter()
    while done < JOBS:
        jobs = await store.claim(["work"], "bench", 20, 30)
        await store.settle([Complete(j.lease) for j in jobs])
        done += len(jobs)
    rate = JOBS / (time.perf_counter() - began)
    for limit in limits:
        await store.set_limit(Limit(limit.kind, limit.name))
    return rate


async def drains(url: str) -> dict[str, list[float]]:
    store = open_store(url)
    await store.open()
    await store.migrate()
    names = list(SCENARIOS)
    figures: dict[str, list[float]] = {name: [] for name in names}
    await drain(store, [])  # warm up
    for round_ in range(3):
        for name in names[round_:] + names[:round_]:
            figures[name].append(await drain(store, SCENARIOS[name]))
    await store.close()
    return figures


def rate_run(url: str, seconds: float, workers: int, folder: Path) -> dict[str, float]:
    """Real workers through a queue limited to 50/s: total starts and the busiest second."""
    ledger = folder / "ledger.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env.update({"CONVEYOR_URL": url, "LIMITS_LEDGER": str(ledger),
                "CONVEYOR_POLL_INTERVAL": "0.05", "CONVEYOR_CONFIG": str(folder / "none"),
                # the app, then this checkout's sources (the installed package may be another)
                "PYTHONPATH": os.pathsep.join(filter(None, [
                    str(Path(__file__).resolve().parents[1] / "tests" / "system"),
                    os.environ.get("PYTHONPATH")]))})
    store = open_store(url)

    async def prepare() -> None:
        await store.open()
        await store.migrate()
        await store.set_limit(Limit("queue", "rated", rate=50, period=1.0))
        await store.enqueue_many([NewJob(new_id(), "rated", "rated", b'{"ms": 5}')
                                  for _ in range(int(seconds * 50 * 1.5))])
        await store.close()

    asyncio.run(prepare())
    conveyor = str(Path(sys.executable).with_name("conveyor"))
    procs = [subprocess.Popen([conveyor, "worker", "--app", "limitapp:app", "--queues", "rated",
                               "--concurrency", "20"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for _ in range(workers)]
    time.sleep(seconds + 3)
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(30)
    ran = sorted(float(line.split()[3]) for line in ledger.read_text().splitlines()
                 if line.startswith("start"))

    async def claimed_at() -> list[float]:  # what the limit counts: claims, store clock
        await store.open()
        jobs = await store.list_jobs(JobFilter(), limit=100_000)
        await store.close()
        return sorted(j.started_at for j in jobs if j.started_at is not None)

    claims = asyncio.run(claimed_at())
    in_run = [t for t in claims if t < claims[0] + seconds]
    return {f"claims in the first {seconds:g} s": len(in_run), "target": seconds * 50,
            "error %": 100 * (len(in_run) / (seconds * 50) - 1),
            "most claims in any 1 s window": busiest(claims),
            "most task starts in any 1 s window (ledger)": busiest(ran)}


def busiest(times: list[float], window: float = 1.0) -> int:
    """The most of `times` (sorted) in any window (t - window, t]."""
    most, low = 0, 0
    for high, at in enumerate(times):
        while times[low] <= at - window:
            low += 1
        most = max(most, high - low + 1)
    return most


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default=None)
    parser.add_argument("--rate-run", type=float, default=0.0, help="seconds of the 50/s run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        base = args.url
        schema = f"bench_limits_{secrets.token_hex(4)}"
        url = (f"{base}?schema={schema}" if base else f"sqlite:///{folder}/limits.db")
        label = "PostgreSQL" if base else "SQLite"
        print(f"# {label}: drain of {JOBS} no-op jobs, claims of 20 (jobs/s, median of 3)")
        for name, rates in asyncio.run(drains(url)).items():
            print(f"{name:45} {statistics.median(rates):9.0f}   "
                  f"runs: {', '.join(f'{r:.0f}' for r in rates)}")
        if args.rate_run:
            rate_url = (f"{base}?schema={schema}_rate" if base
                        else f"sqlite:///{folder}/rate.db")
            workers = 4 if base else 2
            print(f"# {label}: {workers} worker processes, queue rate 50/s, "
                  f"{args.rate_run:g} s")
            for name, value in rate_run(rate_url, args.rate_run, workers,
                                        Path(folder)).items():
                print(f"{name:45} {value:9.1f}")
        if base:
            import psycopg

            with psycopg.connect(base, autocommit=True) as conn:
                for name in (schema, f"{schema}_rate"):
                    conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


if __name__ == "__main__":
    main()
