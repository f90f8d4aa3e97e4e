"""Claim latency under per-key limits (issue 14): does a claim stay flat when 10,000 keys are
at their limit? Figures only: it asserts nothing.

    .venv/bin/python bench/key_limits.py                                   # SQLite
    .venv/bin/python bench/key_limits.py --url postgresql://postgres@127.0.0.1:5432/test

Through the store seam (no workers), a task limited to 1 running job per key. Each scenario
times CLAIMS claims of up to 10 jobs (each claimed batch completed at once, so free keys
cycle) from 100 free keys with 60 waiting jobs each, beside:

- "no keys at their limit": nothing else;
- "10,000 keys at their limit": 10,000 more keys, each with one job running (a live lease)
  and one waiting, so every one of them is at its limit with work to do.

And, for reference, the same claims with no limit at all (unkeyed jobs). Medians and p95 of
the claim call alone, in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import tempfile
import time
from pathlib import Path

from conveyor.job import NewJob, new_id
from conveyor.limits.model import Limit
from conveyor.store.base import Complete, Store, open_store

PAYLOAD = b"{}"
CLAIMS = 300
FREE_KEYS, FREE_JOBS = 100, 60
FULL_KEYS = 10_000
TASK, QUEUE = "keyed", "work"


async def enqueue(store: Store, jobs: list[NewJob]) -> None:
    for start in range(0, len(jobs), 1000):
        await store.enqueue_many(jobs[start:start + 1000])


async def fill_keys(store: Store, count: int) -> None:
    """`count` keys, each with one job running (held, never completed) and one waiting."""
    await enqueue(store, [NewJob(new_id(), TASK, QUEUE, PAYLOAD, limit_key=f"full-{n}")
                          for n in range(count) for _ in range(2)])
    held = 0
    while held < count:
        held += len(await store.claim([QUEUE], "holder", 500, 3600))


async def time_claims(store: Store, keyed: bool) -> list[float]:
    jobs = [NewJob(new_id(), TASK, QUEUE, PAYLOAD,
                   limit_key=f"free-{n % FREE_KEYS}" if keyed else None)
            for n in range(FREE_KEYS * FREE_JOBS)]
    await enqueue(store, jobs)
    times = []
    for _ in range(CLAIMS):
        began = time.perf_counter()
        claimed = await store.claim([QUEUE], "bench", 10, 30)
        times.append((time.perf_counter() - began) * 1000)
        await store.settle([Complete(j.lease) for j in claimed])
    return times


async def scenario(url: str, full: int, keyed: bool, vacuumed: bool) -> list[float]:
    store = open_store(url)
    await store.open()
    await store.migrate()
    try:
        if keyed:
            await store.set_limit(Limit("key", TASK, concurrency=1))
        if full:
            await fill_keys(store, full)
            if vacuumed and url.startswith("postgres"):
                vacuum(url)
        return await time_claims(store, keyed)
    finally:
        await store.close()


def vacuum(url: str) -> None:
    """VACUUM ANALYZE the bench's schema: the steady state autovacuum keeps, without the
    dead index entries that filling 10,000 keys leaves behind for a while."""
    import psycopg

    schema = url.rsplit("schema=", 1)[1]
    with psycopg.connect(url.split("?")[0], autocommit=True) as conn:
        for table in ("conveyor_jobs", "conveyor_limit_keys"):
            conn.execute(f'VACUUM ANALYZE "{schema}".{table}')


def fresh_url(base: str | None, folder: Path, name: str) -> str:
    if base is None:
        return f"sqlite:///{folder / (name + '.db')}"
    return f"{base}{'&' if '?' in base else '?'}schema=bench_keys_{secrets.token_hex(4)}"


def drop_schemas(base: str, urls: list[str]) -> None:
    import psycopg

    with psycopg.connect(base.split("?")[0], autocommit=True) as conn:
        for url in urls:
            conn.execute(f'DROP SCHEMA IF EXISTS "{url.rsplit("schema=", 1)[1]}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a PostgreSQL URL (default: SQLite in a temp folder)")
    parser.add_argument("--vacuum", action="store_true",
                        help="PostgreSQL: VACUUM ANALYZE after filling the 10,000 keys")
    args = parser.parse_args()
    print(f"store: {'postgresql' if args.url else 'sqlite'}; {CLAIMS} claims of up to 10 "
          f"from {FREE_KEYS} free keys ({FREE_JOBS} jobs each); 1 running per key")
    rows = [("no limit at all (unkeyed jobs)", 0, False),
            ("per-key limit, no keys at their limit", 0, True),
            (f"per-key limit, {FULL_KEYS:,} keys at their limit", FULL_KEYS, True)]
    urls: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        for index, (name, full, keyed) in enumerate(rows):
            url = fresh_url(args.url, Path(folder), f"s{index}")
            urls.append(url)
            began = time.perf_counter()
            times = sorted(asyncio.run(scenario(url, full, keyed, args.vacuum)))
            p95 = times[int(len(times) * 0.95)]
            print(f"{name:48s} claim median {statistics.median(times):6.2f} ms   "
                  f"p95 {p95:6.2f} ms   max {times[-1]:6.2f} ms   "
                  f"(scenario {time.perf_counter() - began:5.1f} s)")
    if args.url:
        drop_schemas(args.url, urls)


if __name__ == "__main__":
    main()
