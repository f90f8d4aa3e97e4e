"""Conveyor's own benchmark: the store seam alone, without workers or the harness.

    .venv/bin/python bench/store_bench.py                      # SQLite, NORMAL and FULL
    .venv/bin/python bench/store_bench.py --url postgresql://postgres@127.0.0.1:5432/test

Prints jobs/s for: enqueue one at a time (with p50/p95), enqueue_many in batches of 1,000,
claim + settle in batches of 20 (one worker's loop without the jobs), and the claim latency with
100,000 finished jobs in the table. Figures only: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time

from conveyor.job import NewJob, new_id
from conveyor.store.base import Complete, Retention, open_store

PAYLOAD = b'{"ms":0}'


def new_jobs(n: int) -> list[NewJob]:
    return [NewJob(new_id(), "job", "default", PAYLOAD) for _ in range(n)]


async def enqueue_one(store, n: int) -> dict:
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        await store.enqueue_many(new_jobs(1))
        lat.append(time.perf_counter() - t)
    lat.sort()
    return {"rate": n / sum(lat), "p50_ms": lat[n // 2] * 1000,
            "p95_ms": lat[int(n * 0.95)] * 1000}


async def enqueue_bulk(store, n: int) -> dict:
    t = time.perf_counter()
    for _ in range(n // 1000):
        await store.enqueue_many(new_jobs(1000))
    return {"rate": n / (time.perf_counter() - t)}


async def claim_settle(store, n: int, batch: int = 20) -> dict:
    done, t = 0, time.perf_counter()
    while done < n:
        jobs = await store.claim(None, "bench", batch, 30)
        if not jobs:
            break
        await store.settle([Complete(j.lease) for j in jobs])
        done += len(jobs)
    return {"rate": done / (time.perf_counter() - t)}


async def claim_latency(store, samples: int = 200) -> dict:
    lat = []
    for _ in range(samples):
        await store.enqueue_many(new_jobs(1))
        t = time.perf_counter()
        jobs = await store.claim(None, "bench", 1, 30)
        lat.append(time.perf_counter() - t)
        await store.settle([Complete(j.lease) for j in jobs])
    return {"p50_ms": statistics.median(lat) * 1000}


async def run(url: str, label: str, synchronous: str = "NORMAL") -> None:
    store = open_store(url, synchronous=synchronous)
    await store.open()
    await store.migrate()
    figures = {"enqueue one at a time": await enqueue_one(store, 3000),
               "enqueue_many (1,000 a batch)": await enqueue_bulk(store, 20000),
               "claim + complete, batches of 20": await claim_settle(store, 23000)}
    await store.enqueue_many(new_jobs(100_000 - 23000))
    await claim_settle(store, 100_000)
    figures["claim latency, 100k finished rows"] = await claim_latency(store)
    await store.prune(Retention(0, 0, 0), limit=1_000_000)
    await store.close()
    print(f"\n{label}")
    for name, values in figures.items():
        cells = ", ".join(f"{k} {v:,.3f}" if "ms" in k else f"{k} {v:,.0f}/s"
                          for k, v in values.items())
        print(f"  {name:36} {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a store URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    if args.url:
        asyncio.run(run(args.url, args.url))
        return
    with tempfile.TemporaryDirectory() as folder:
        for sync in ("NORMAL", "FULL"):
            path = os.path.join(folder, f"bench-{sync}.db")
            asyncio.run(run(f"sqlite:///{path}", f"SQLite WAL synchronous={sync}", sync))


if __name__ == "__main__":
    main()
