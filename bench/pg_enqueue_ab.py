"""Single enqueue on PostgreSQL, interleaved: figures, no asserts.

    .venv/bin/python bench/pg_enqueue_ab.py                  # ~1 minute
    .venv/bin/python bench/pg_enqueue_ab.py --n 500 --rounds 20

The peer harness measures one library after another, so on a machine whose commit latency
drifts from minute to minute, the library measured in a slow spell loses (on 2026-11-27 the
library measured first after the harness's baselines was the slow one, whichever it was).
Here the contenders take turns in blocks of --n calls, the order rotating every round, all
durable commits (fsync and synchronous_commit as the server has them), one at a time:

- raw: one `INSERT` per commit, the storage limit;
- raw + 2 NOTIFY: the same insert sending the two notifications a Conveyor enqueue sends (the
  wake-up and the event feed), which a queue with wake-ups cannot avoid;
- conveyor: `task.enqueue(payload)` from sync code, as the harness's adapter does;
- pgqueuer: `Queries.enqueue` over asyncpg, as the harness's adapter does, when pgqueuer and
  asyncpg are importable (`pip install pgqueuer==1.6.0 asyncpg==0.32.0` into this
  interpreter's environment; bench/run_peers.sh's .venv-conveyor is a good place).

Each contender gets a database of its own, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import psycopg

from conveyor import Conveyor, Settings

PAYLOAD = json.dumps({"ms": 0})
DATABASES = {"raw": "conveyor_ab_raw", "conveyor": "conveyor_ab_conveyor",
             "pgqueuer": "conveyor_ab_pgqueuer"}


def recreate(base: str, name: str, drop_only: bool = False) -> None:
    with psycopg.connect(base + "postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if not drop_only:
            conn.execute(f"CREATE DATABASE {name}")


def timed(n: int, call: Callable[[], object]) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        out.append(time.perf_counter() - start)
    return out


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[round(p * (len(ordered) - 1))] * 1000


class Contenders:
    def __init__(self, base: str) -> None:
        self.base = base
        recreate(base, DATABASES["raw"])
        self.raw = psycopg.connect(base + DATABASES["raw"], autocommit=True)
        self.raw.execute("CREATE TABLE raw_jobs (id bigserial PRIMARY KEY, payload jsonb NOT "
                         "NULL, created_at timestamptz NOT NULL DEFAULT now())")
        recreate(base, DATABASES["conveyor"])
        self.app = Conveyor(settings=Settings.load(url=base + DATABASES["conveyor"],
                                                   log_level="WARNING"))

        @self.app.task(name="job")
        async def job(ctx: Any, payload: dict[str, int]) -> None:
            return None

        self.job = job
        self.app.migrate()
        self.loop = asyncio.new_event_loop()
        self.pgqueuer: Any = None
        try:
            import asyncpg
            from pgqueuer.db import AsyncpgDriver
            from pgqueuer.queries import Queries
        except ImportError:
            print("pgqueuer or asyncpg is not installed here: measuring without it")
            return
        recreate(base, DATABASES["pgqueuer"])
        self.pg_conn = self.loop.run_until_complete(asyncpg.connect(base + DATABASES["pgqueuer"]))
        self.pgqueuer = Queries(AsyncpgDriver(self.pg_conn))
        self.loop.run_until_complete(self.pgqueuer.install())

    def runs(self) -> dict[str, Callable[[int], list[float]]]:
        raw = self.raw
        notify = ("WITH i AS (INSERT INTO raw_jobs (payload) VALUES (%s) RETURNING id) "
                  "SELECT pg_notify('wake', id::text), pg_notify('feed', id::text) FROM i")
        out: dict[str, Callable[[int], list[float]]] = {
            "raw": lambda n: timed(n, lambda: raw.execute(
                "INSERT INTO raw_jobs (payload) VALUES (%s)", (PAYLOAD,))),
            "raw + 2 NOTIFY": lambda n: timed(n, lambda: raw.execute(notify, (PAYLOAD,))),
            "conveyor": lambda n: timed(n, lambda: self.job.enqueue({"ms": 0})),
        }
        if self.pgqueuer is not None:
            out["pgqueuer"] = lambda n: self.loop.run_until_complete(self._pgqueuer(n))
        return out

    async def _pgqueuer(self, n: int) -> list[float]:
        out = []
        for _ in range(n):
            start = time.perf_counter()
            await self.pgqueuer.enqueue("job", b"0")
            out.append(time.perf_counter() - start)
        return out

    def close(self) -> None:
        self.app.close()
        self.raw.close()
        if self.pgqueuer is not None:
            self.loop.run_until_complete(self.pg_conn.close())
        self.loop.close()
        for name in DATABASES.values():
            recreate(self.base, name, drop_only=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="postgresql://postgres@127.0.0.1:5432/",
                        help="server URL ending in '/': databases are made under it")
    parser.add_argument("--n", type=int, default=300, help="calls per block")
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args()
    contenders = Contenders(args.base)
    try:
        runs = contenders.runs()
        for run in runs.values():
            run(50)  # warm: connections, prepared statements
        names = list(runs)
        latencies: dict[str, list[float]] = {name: [] for name in names}
        for round_ in range(args.rounds):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                latencies[name].extend(runs[name](args.n))
    finally:
        contenders.close()
    rates = {name: len(values) / sum(values) for name, values in latencies.items()}
    print(f"{args.rounds} rounds of {args.n} calls each, order rotating\n")
    print("| contender | jobs/s | p50 ms | p95 ms | p99 ms |")
    print("| --- | --: | --: | --: | --: |")
    for name, values in latencies.items():
        print(f"| {name} | {rates[name]:,.0f} | {percentile(values, 0.5):.3f} | "
              f"{percentile(values, 0.95):.3f} | {percentile(values, 0.99):.3f} |")
    ours = latencies["conveyor"]
    print(f"\nconveyor / raw: {rates['conveyor'] / rates['raw']:.2f}x the rate")
    if "pgqueuer" in latencies:
        theirs = latencies["pgqueuer"]
        print(f"conveyor / pgqueuer: {rates['conveyor'] / rates['pgqueuer']:.2f}x the rate, "
              f"p95 {percentile(ours, 0.95) / percentile(theirs, 0.95):.2f}x")


if __name__ == "__main__":
    main()
