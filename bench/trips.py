"""Round trips and pace of the PostgreSQL store's unlimited path (no limits configured):
one settle of 20 jobs and one claim of 20, counted in libpq's trace (each run of messages
the client sent that the server then answered), then claims of 20 each completed before
the next, 3,000 jobs. Figures only.

    .venv/bin/python bench/trips.py [--url postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import secrets
import tempfile
import time

from conveyor.job import NewJob, new_id
from conveyor.store.base import Complete
from conveyor.store.postgres.store import PostgresStore


def trips(path: str) -> int:
    with open(path) as trace:
        parts = [line.split("\t") for line in trace]
    sides = [part[1] for part in parts if len(part) > 2 and part[1] in ("F", "B")]
    return sum(1 for pair in itertools.pairwise(sides) if pair == ("F", "B"))


async def main(base: str) -> None:
    schema = f"bench_trips_{secrets.token_hex(3)}"
    store = PostgresStore(f"{base}?schema={schema}&pool_size=1")  # the traced connection
    await store.open()
    await store.migrate()
    await store.enqueue_many([NewJob(new_id(), "t", "work", b"{}") for _ in range(4000)])
    jobs = await store.claim(["work"], "w", 20, 30)
    async with store.pools.connection() as conn:
        pass
    for name in ("settle", "claim"):
        descriptor, path = tempfile.mkstemp()
        conn.pgconn.trace(descriptor)
        if name == "settle":
            await store.settle([Complete(j.lease) for j in jobs])
        else:
            jobs = await store.claim(["work"], "w", 20, 30)
        conn.pgconn.untrace()
        os.close(descriptor)
        print(f"{name} trips {trips(path)}", end=" ")
        os.unlink(path)
    began, done = time.perf_counter(), 0
    while done < 3000:
        jobs = await store.claim(["work"], "w", 20, 30)
        await store.settle([Complete(j.lease) for j in jobs])
        done += len(jobs)
    print(f"rate {done / (time.perf_counter() - began):.0f} jobs/s")
    async with store.pools.connection() as conn:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    asyncio.run(main(parser.parse_args().url))
