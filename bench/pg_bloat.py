"""Claim latency on PostgreSQL as the table grows and as bloat builds: figures, no asserts.

    .venv/bin/python bench/pg_bloat.py                    # ~3 minutes
    .venv/bin/python bench/pg_bloat.py --hold 60 --rate 2000
    .venv/bin/python bench/pg_bloat.py --queues default,other   # a worker on two queues
    .venv/bin/python bench/pg_bloat.py --queues '*'             # a worker on every queue

1. Empty table: the latency of one claim (enqueue one job, claim it, complete it), many times.
2. The same with 1,000,000 finished jobs in the table (completed rows, as before pruning).
3. The bloat case: another session opens a transaction and holds it (`BEGIN; SELECT
   txid_current()`, then idle for --hold seconds), which stops vacuum from removing any row
   version that died after it began. Meanwhile a worker-like loop churns jobs at --rate per
   second (enqueue, claim, complete in batches), and every 100 ms one claim is timed. The
   latency is reported per 10-second window, then again after the transaction ends.

It uses its own schema in the database of --url and drops it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import secrets
import time

import psycopg

from conveyor.job import NewJob, new_id
from conveyor.store.base import Complete
from conveyor.store.postgres.store import PostgresStore

PAYLOAD = b'{"ms":0}'
QUEUES = ["default"]  # what the probe and the churn claim from (--queues; "*": every queue)


def claiming() -> list[str] | None:
    return None if QUEUES == ["*"] else QUEUES


def jobs(n: int) -> list[NewJob]:
    return [NewJob(new_id(), "job", "default", PAYLOAD) for _ in range(n)]


async def one_claim(store: PostgresStore) -> float:
    """Enqueue one job, then time the claim that takes it; complete it."""
    await store.enqueue_many(jobs(1))
    began = time.perf_counter()
    claimed = await store.claim(claiming(), "probe", 1, 30)
    took = time.perf_counter() - began
    await store.settle([Complete(job.lease) for job in claimed])
    return took


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = ordered[len(ordered) // 2] * 1000
    p95 = ordered[int(len(ordered) * 0.95)] * 1000
    return f"p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  (n={len(ordered)})"


async def latency(store: PostgresStore, count: int) -> str:
    return summary([await one_claim(store) for _ in range(count)])


def fill_finished(base: str, schema: str, count: int) -> None:
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"""
            INSERT INTO "{schema}".conveyor_jobs (id, task, queue, state, payload, created_at,
                run_at, started_at, finished_at, attempt)
            SELECT lpad(n::text, 36, '0'), 'job', 'default', 'completed', '\\x7b7d',
                   1.7e9 + n / 1000.0, 1.7e9 + n / 1000.0, 1.7e9 + n / 1000.0,
                   1.7e9 + n / 1000.0, 1
            FROM generate_series(1, %s) AS n""", (count,))
        conn.execute(f'VACUUM ANALYZE "{schema}".conveyor_jobs')


def churn_process(url: str, rate: int, seconds: float) -> multiprocessing.Process:
    """The churn in a process of its own, so it does not share the probe's event loop."""

    def run() -> None:
        async def main() -> None:
            store = PostgresStore(url)
            await store.listen(lambda queue: None)  # as a worker does: claim cursors need it
            try:
                done = await churn(store, rate, time.monotonic() + seconds)
                print(f"  ({done:,} jobs churned)", flush=True)
            finally:
                await store.close()

        asyncio.run(main())

    process = multiprocessing.get_context("fork").Process(target=run, daemon=True)
    process.start()
    return process


async def churn(store: PostgresStore, rate: int, until: float) -> int:
    """A worker's work at `rate` jobs/s: enqueue a batch, claim and complete it, 10 times a
    second."""
    done, batch = 0, max(rate // 10, 1)
    while time.monotonic() < until:
        tick = time.monotonic()
        await store.enqueue_many(jobs(batch))
        while True:
            claimed = await store.claim(claiming(), "churn", 100, 30)
            if not claimed:
                break
            await store.settle([Complete(job.lease) for job in claimed])
            done += len(claimed)
        await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - tick)))
    return done


async def probe(store: PostgresStore, until: float, window: float,
                label: str) -> None:
    began, samples = time.monotonic(), []
    next_report = began + window
    while time.monotonic() < until:
        samples.append(await one_claim(store))
        if time.monotonic() >= next_report:
            print(f"  {label} {next_report - began:4.0f}s  {summary(samples)}", flush=True)
            samples, next_report = [], next_report + window
        await asyncio.sleep(0.1)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--finished", type=int, default=1_000_000)
    parser.add_argument("--hold", type=float, default=60.0)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--queues", default="default",
                        help="claim from these (comma-separated; '*': every queue); "
                             "jobs go to 'default'")
    args = parser.parse_args()
    QUEUES[:] = args.queues.split(",")
    schema = f"conveyor_bloat_{secrets.token_hex(4)}"
    store = PostgresStore(f"{args.url}?schema={schema}")
    await store.migrate()
    await store.listen(lambda queue: None)  # as a worker does: claim cursors need it
    try:
        print(f"1. empty table:               {await latency(store, 500)}", flush=True)
        fill_finished(args.url, schema, args.finished)
        print(f"2. {args.finished:,} finished rows: {await latency(store, 500)}", flush=True)

        print(f"3. a transaction held open {args.hold:.0f}s, churning {args.rate} jobs/s:")
        holder = psycopg.connect(args.url)
        holder.execute("SELECT txid_current()")  # idle in transaction, holding the horizon
        churner = churn_process(f"{args.url}?schema={schema}", args.rate, args.hold)
        await probe(store, time.monotonic() + args.hold, 10.0, "held")
        churner.join()
        holder.rollback()
        holder.close()
        print("  the transaction ended")
        churner = churn_process(f"{args.url}?schema={schema}", args.rate, 30)
        await probe(store, time.monotonic() + 30, 10.0, "after")
        churner.join()
    finally:
        await store.close()
        with psycopg.connect(args.url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    asyncio.run(main())
