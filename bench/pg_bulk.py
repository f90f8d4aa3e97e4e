"""Bulk enqueue on PostgreSQL, variants measured side by side in one process.

    .venv/bin/python bench/pg_bulk.py [--url postgresql://postgres@127.0.0.1/postgres]
                                      [--rounds 16] [--batch 1000]

Creates a scratch database, then alternates the variants below (10 batches each per round,
the table truncated before each turn, as the peer harness does) and prints the median time
per batch with the rate, next to the raw `INSERT ... unnest` of the harness's baseline table.
The machine here is noisy: only ratios within one run mean much.

- `copy`: the shipped COPY path (rows padded, envelopes built while the server inserts);
- `copy, rows not padded`: the same without the padding in postgres/copy.py (_PAD);
- `insert`: the INSERT ... unnest fallback a batch with options of its own takes.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import psycopg

from conveyor import Conveyor, Settings
from conveyor.store.postgres import copy as copy_module

SCRATCH = "conveyor_bench_bulk"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    with psycopg.connect(args.url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {SCRATCH}")
        admin.execute(f"CREATE DATABASE {SCRATCH}")
    url = psycopg.conninfo.make_conninfo(args.url, dbname=SCRATCH)
    try:
        run(url, args.rounds, args.batch)
    finally:
        with psycopg.connect(args.url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")


def run(conninfo: str, rounds: int, size: int) -> None:
    url = "postgresql://" + conninfo_to_url(conninfo)
    app = Conveyor(settings=Settings.load(url=url, log_level="WARNING"))

    @app.task()
    async def job(ctx: Any, payload: Any) -> None:
        return None

    app.migrate()
    conn = psycopg.connect(conninfo, autocommit=True)
    conn.execute("CREATE TABLE raw_jobs (id bigserial PRIMARY KEY, state text NOT NULL "
                 "DEFAULT 'available', payload jsonb NOT NULL DEFAULT '{}', attempts integer "
                 "NOT NULL DEFAULT 0, created_at timestamptz NOT NULL DEFAULT now(), "
                 "finished_at timestamptz)")
    conn.execute("CREATE INDEX ON raw_jobs (id) WHERE state = 'available'")
    items = [{"task": "job", "payload": {"ms": 0}}] * size
    keyed = [{"task": "job", "payload": {"ms": 0}, "correlation_id": "c"}] * size
    pad = copy_module._PAD

    def unpadded() -> None:
        copy_module._PAD = ""
        try:
            app.enqueue_many(items)
        finally:
            copy_module._PAD = pad

    variants: dict[str, tuple[str, Callable[[], Any]]] = {
        "copy": ("conveyor_jobs", lambda: app.enqueue_many(items)),
        "copy, rows not padded": ("conveyor_jobs", unpadded),
        "insert (a batch with options)": ("conveyor_jobs", lambda: app.enqueue_many(keyed)),
        "raw INSERT ... unnest": ("raw_jobs", lambda: conn.execute(
            "INSERT INTO raw_jobs (payload) SELECT unnest(%s::jsonb[])",
            (['{"ms": 0}'] * size,))),
    }
    for _, run_one in variants.values():  # warm up: pools, prepared statements, caches
        run_one()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, (table, run_one) in variants.items():
            conn.execute(f"TRUNCATE {table}")
            for _ in range(10):
                started = time.perf_counter()
                run_one()
                times[name].append(time.perf_counter() - started)
    app.close()
    conn.close()
    raw = statistics.median(times["raw INSERT ... unnest"])
    print(f"batches of {size}, {rounds} rounds of 10 per variant, medians:")
    for name, spent in times.items():
        median = statistics.median(spent)
        print(f"  {name:32s} {median * 1000:7.2f} ms  {size / median:9,.0f} jobs/s"
              f"  {raw / median:5.2f} of raw")


def conninfo_to_url(conninfo: str) -> str:
    parts = psycopg.conninfo.conninfo_to_dict(conninfo)
    user = parts.get("user", "postgres")
    return f"{user}@{parts.get('host', '127.0.0.1')}:{parts.get('port', 5432)}/{SCRATCH}"


if __name__ == "__main__":
    main()
