"""Issue 14 (rateflake): a rate of 50/s on SQLite, held by P processes that claim as a worker
does (settle_and_claim for 4 slots, then Store.room_at pacing) while a noise process takes the
write lock for 1-80 ms at random. Prints the busiest one-second window of the jobs' started_at
(the store's booked start times): more than 50 is an over-start. Run it beside CPU load (the
stale clock it catches needs a claim descheduled or held between reading its clock and taking
the lock): before the claim read its clock under the write lock, 2 runs in 17 showed 54.

    PYTHONPATH=src /work/main/.venv/bin/python bench/rate_contention.py /tmp/r.db 2 8

Figures only: it asserts nothing.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import sqlite3
import sys
import time

from conveyor.job import ClaimedJob, NewJob, new_id
from conveyor.limits.model import Limit
from conveyor.store.base import ClaimAsk, Complete
from conveyor.store.sqlite.store import SQLiteStore
from conveyor.worker.pacing import LEAD

RATE = 50


def worker(url: str, index: int, until: float) -> None:
    async def main() -> None:
        store = SQLiteStore(url)
        await store.open()
        done: list[ClaimedJob] = []
        rng = random.Random(index)
        while time.time() < until:
            answer = await store.settle_and_claim(
                [Complete(j.lease) for j in done], ClaimAsk(["rated"], f"w{index}", 4, 30.0))
            done = list(answer.jobs)
            if len(done) < 4:
                room = await store.room_at(["rated"])
                wait = 0.2 if room is None else max(room - LEAD - time.time(), 0.0)
                late = rng.choice([0.0, 0.0, 0.03, 0.1]) * rng.random()  # a late wake-up
                await asyncio.sleep(min(wait, 0.2) + late)
        await store.close()
    asyncio.run(main())


def noise(path: str, until: float) -> None:
    rng = random.Random(7)
    conn = sqlite3.connect(path, isolation_level=None, timeout=10)
    while time.time() < until:
        time.sleep(rng.uniform(0.005, 0.05))
        conn.execute("BEGIN IMMEDIATE")
        time.sleep(rng.uniform(0.001, 0.08))
        conn.execute("COMMIT")


def busiest(times: list[float]) -> int:
    low = most = 0
    for high, at in enumerate(times):
        while times[low] <= at - 1.0:
            low += 1
        most = max(most, high - low + 1)
    return most


async def setup(url: str, jobs: int) -> None:
    store = SQLiteStore(url)
    await store.open()
    await store.migrate()
    await store.set_limit(Limit("queue", "rated", rate=RATE, period=1.0))
    await store.enqueue_many([NewJob(id=new_id(), task="rated", queue="rated", payload=b"{}")
                              for _ in range(jobs)])
    await store.close()


def main() -> None:
    path, processes = sys.argv[1], int(sys.argv[2])
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 8.0
    url = f"sqlite:///{path}"
    asyncio.run(setup(url, int(RATE * seconds * 1.5)))
    until = time.time() + seconds
    procs = [multiprocessing.Process(target=worker, args=(url, i, until))
             for i in range(processes)]
    procs.append(multiprocessing.Process(target=noise, args=(path, until)))
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    with sqlite3.connect(path) as conn:
        times = sorted(r[0] for r in conn.execute(
            "SELECT started_at FROM conveyor_jobs WHERE started_at IS NOT NULL"))
    print(f"{len(times)} starts in {times[-1] - times[0]:.1f} s, busiest second {busiest(times)}")


if __name__ == "__main__":
    main()
