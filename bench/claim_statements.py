"""Which statements a claim runs, and which of them do rate work, per kind of limit.
Evidence only: it asserts nothing.

    PYTHONPATH=src .venv/bin/python bench/claim_statements.py            # SQLite
    PYTHONPATH=src .venv/bin/python bench/claim_statements.py --url postgresql://postgres@127.0.0.1:5432/test

For each scenario (no limit; a queue limited by concurrency alone; a task limited by
concurrency alone, which sends every claim the general limited way; a queue with a rate),
it claims and completes one job at a time, then traces CLAIMS claims: SQLite through the
connection's trace callback; PostgreSQL with log_statement=all for its own sessions, read
back from the server log, and each claim statement run again under EXPLAIN ANALYZE in a
rolled-back transaction, to show which nodes on conveyor_limit_starts (the rate's start
log) were executed. Also a Store.room_at after each claim, as a worker's pacing asks after a
short claim.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import tempfile
from collections import Counter
from pathlib import Path

from conveyor.job import NewJob, new_id
from conveyor.limits.model import Limit
from conveyor.store.base import Complete, Store, open_store

CLAIMS = 10
SCENARIOS = {
    "no limit": [],
    "queue concurrency 20": [Limit("queue", "work", concurrency=20)],
    "task concurrency 5 (general limited path)": [Limit("task", "job", concurrency=5)],
    "queue rate 100000/s": [Limit("queue", "work", rate=100000, period=1.0)],
}
PG_LOG = Path("/var/log/postgresql/postgresql-15-main.log")


def short(statement: str) -> str:
    text = re.sub(r"\s+", " ", statement).strip()
    starts = " [limit_starts]" if "conveyor_limit_starts" in text else ""
    ctes = re.findall(r"(?:WITH|,)\s*(\w+)(?:\([^)]*\))? AS \(", text)
    head = text[:60] + (f" ... CTEs {','.join(ctes)}" if ctes else "")
    return head + starts


async def claims(store: Store, limits: list[Limit]) -> None:
    for limit in limits:
        await store.set_limit(limit)
    await store.enqueue_many([NewJob(new_id(), "job", "work", b"{}") for _ in range(40)])
    for _ in range(5):  # warm: the limited names read, statements prepared
        jobs = await store.claim(["work"], "bench", 1, 30)
        await store.settle([Complete(j.lease) for j in jobs])


async def traced(store: Store) -> None:
    for _ in range(CLAIMS):
        jobs = await store.claim(["work"], "bench", 1, 30)
        await store.room_at(["work"])
        await store.settle([Complete(j.lease) for j in jobs])


async def sqlite(scenario: str, limits: list[Limit]) -> None:
    folder = Path(tempfile.mkdtemp(prefix="claim-statements-"))
    store = open_store(f"sqlite:///{folder / 'jobs.db'}")
    await store.open()
    await store.migrate()
    await claims(store, limits)
    seen: list[str] = []
    with store.db.read() as conn:  # type: ignore[attr-defined]
        conn.set_trace_callback(seen.append)
        await traced(store)
        conn.set_trace_callback(None)
    report(scenario, [s for s in seen if "conveyor_workers" not in s])
    await store.close()


async def postgres(url: str, scenario: str, limits: list[Limit]) -> None:
    schema = f"claim_statements_{secrets.token_hex(4)}"
    store = open_store(f"{url}?schema={schema}")
    await store.open()
    await store.migrate()
    await claims(store, limits)
    size = PG_LOG.stat().st_size
    os.environ["PGOPTIONS"] = "-c log_statement=all"
    traced_store = open_store(f"{url}?schema={schema}")
    await traced_store.open()
    try:
        await traced(traced_store)
    finally:
        del os.environ["PGOPTIONS"]
        await traced_store.close()
    await asyncio.sleep(0.3)
    with PG_LOG.open(errors="replace") as log:
        log.seek(size)
        records = re.split(r"\n(?=\d{4}-\d\d-\d\d )", log.read())
    mine = [re.sub(r"^.*?LOG:\s+(statement|execute [^:]*):\s*", "", r, flags=re.S)
            for r in records if schema in r and ("statement:" in r or "execute" in r)]
    report(scenario, mine)
    await explain(store)
    await store.close()
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def explain(store: Store) -> None:
    """The limited claim's statements under EXPLAIN ANALYZE (rolled back): which nodes on
    the start log ran (loops) and which were never executed."""
    import psycopg

    from conveyor.limits.claiming import BOOK_AHEAD
    from conveyor.store.postgres import limits

    params = {"events": None, "token": 1, "now": None, "lease_for": 30.0, "worker_id": "x",
              "host": "h", "queue": "work", "queues": ["work"], "limit": 1,
              "ahead": BOOK_AHEAD}
    url = store.url
    for name in ("CLAIM_ROOM", "CLAIM_ROOM_AT_WALL", "USAGE_AT_CLOCK", "USAGE_AT_WALL"):
        if not hasattr(limits, name):  # an older checkout
            continue
        statement = store.statement(getattr(limits, name))  # type: ignore[attr-defined]
        with psycopg.connect(url.split("?")[0]) as conn:
            plan = conn.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + statement,
                                params).fetchall()
            conn.rollback()
        lines = [line.strip() for (line,) in plan]
        ran = [line for line in lines if "conveyor_limit_starts" in line]
        print(f"  {name}: " + "; ".join(ran) + f"; {lines[-1]}")


def report(scenario: str, statements: list[str]) -> None:
    counts = Counter(short(s) for s in statements)
    rate_work = sum(n for s, n in counts.items() if "[limit_starts]" in s)
    print(f"== {scenario}: {len(statements) / CLAIMS:.1f} statements per claim "
          f"(+settle, +room_at), {rate_work / CLAIMS:.1f} touching conveyor_limit_starts")
    for statement, count in counts.most_common():
        print(f"  {count:3d} x {statement}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url")
    args = parser.parse_args()
    for scenario, limits in SCENARIOS.items():
        if args.url:
            await postgres(args.url, scenario, limits)
        else:
            await sqlite(scenario, limits)


if __name__ == "__main__":
    asyncio.run(main())
