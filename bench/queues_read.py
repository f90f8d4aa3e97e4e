"""The queues page's store reads, one by one and together, with the CPU each costs: the
client's (this process) and on PostgreSQL the server's (its backends' utime + stime from
/proc/<pid>/stat: the server runs on this machine; every backend this process opened is
found by its application_name). Issue 16: the queues page was the heaviest idle read at
10M jobs and over 50 ms p95 while 2 workers drain.

The page (web/dashboard.queues_page) gathers four store reads: queues() (the per-queue
counts, oldest queued job, flags, last minute's throughput, claimed-ahead jobs), workers(),
queue_analytics(last hour) (the sparklines) and limits() (every limit and its use).
PYTHONPATH selects the tree: run an old and a new tree alternately on one store.

    PYTHONPATH=src .venv/bin/python bench/queues_read.py \
        'postgresql://postgres@127.0.0.1:5432/test?schema=q16_reads_2m' --reads 40
    PYTHONPATH=src .venv/bin/python bench/queues_read.py URL --explain   # plans, PostgreSQL
    PYTHONPATH=src .venv/bin/python bench/queues_read.py 'sqlite:////tmp/x/reads.db'

Prints one JSON line per run (per read: wall p50/p95 ms, client CPU ms and server CPU ms per
read, and the round trips the read made on PostgreSQL). Figures only: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from conveyor.history.records import TimeRange


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """The CPU of the PostgreSQL backends named `name` (none on SQLite)."""

    def __init__(self, url: str, name: str) -> None:
        self.name, self.conn = name, None
        if url.startswith("postgres"):
            import psycopg

            self.conn = psycopg.connect(url.split("?")[0], autocommit=True)

    def cpu(self) -> float:
        if self.conn is None:
            return 0.0
        pids = [r[0] for r in self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (self.name,))]
        total = 0.0
        for pid in pids:
            with contextlib.suppress(FileNotFoundError):  # a backend that just ended
                total += cpu_seconds(pid)
        return total


def reads(store: Any) -> dict[str, Callable[[], Awaitable[Any]]]:
    def hour() -> TimeRange:
        now = time.time()
        return TimeRange(now - 3600, now + 60)

    async def page() -> Any:
        return await asyncio.gather(store.queues(), store.workers(),
                                    store.queue_analytics(hour(), 61), store.limits())

    return {"queues()": store.queues, "workers()": store.workers,
            "queue_analytics(1h)": lambda: store.queue_analytics(hour(), 61),
            "limits()": store.limits, "page (the four at once)": page}


class Trips:
    """Counts the statements a PostgreSQL read sends and the round trips it waits for
    (each fetch after a send that was not yet read: pipelined statements share one)."""

    def __init__(self) -> None:
        self.statements = 0

    def install(self) -> None:
        import psycopg

        original = psycopg.AsyncConnection.execute
        trips = self

        async def execute(conn: Any, *args: Any, **kwargs: Any) -> Any:
            trips.statements += 1
            return await original(conn, *args, **kwargs)

        psycopg.AsyncConnection.execute = execute  # type: ignore[method-assign]


async def measure(store: Any, server: Server, count: int, trips: Trips | None
                  ) -> dict[str, dict[str, float]]:
    out = {}
    for label, read in reads(store).items():
        for _ in range(3):  # warm: prepared statements, pools
            await read()
        walls = []
        before_statements = trips.statements if trips else 0
        server_before, client_before = server.cpu(), time.process_time()
        for _ in range(count):
            began = time.perf_counter()
            await read()
            walls.append((time.perf_counter() - began) * 1000)
        client = (time.process_time() - client_before) / count * 1000
        served = (server.cpu() - server_before) / count * 1000
        walls.sort()
        out[label] = {"wall_p50_ms": round(statistics.median(walls), 2),
                      "wall_p95_ms": round(walls[max(0, round(0.95 * count) - 1)], 2),
                      "client_cpu_ms": round(client, 2), "server_cpu_ms": round(served, 2)}
        if trips:
            out[label]["statements"] = (trips.statements - before_statements) / count
    return out


def explain(url: str) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of each statement queues() sends, as the store sends it."""
    import psycopg

    from conveyor.store.postgres.store import PostgresStore

    store = PostgresStore(url)
    original = psycopg.AsyncConnection.execute
    seen: list[tuple[str, Any]] = []

    async def execute(conn: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        seen.append((str(query), params))
        return await original(conn, query, params, **kwargs)

    async def run() -> None:
        await store.open()
        psycopg.AsyncConnection.execute = execute  # type: ignore[method-assign]
        for label, read in reads(store).items():
            if label.startswith("page"):
                continue
            seen.clear()
            await read()
            print(f"\n## {label}: {len(seen)} statements")
            statements = list(seen)
            psycopg.AsyncConnection.execute = original  # type: ignore[method-assign]
            async with await psycopg.AsyncConnection.connect(
                    url.split("?")[0], autocommit=True) as conn:
                for sql, params in statements:
                    if "set_config" in sql:
                        await conn.execute("SET jit = off")
                        continue
                    if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
                        continue  # BEGIN, COMMIT
                    plan = await (await conn.execute(
                        "EXPLAIN (ANALYZE, BUFFERS) " + sql, params)).fetchall()
                    print("\n" + sql.strip()[:300] + "\n" + "\n".join(r[0] for r in plan))
            psycopg.AsyncConnection.execute = execute  # type: ignore[method-assign]
        psycopg.AsyncConnection.execute = original  # type: ignore[method-assign]
        await store.close()

    asyncio.run(run())


def http_reads(url: str, count: int, port: int) -> dict[str, dict[str, float]]:
    """GET /queues and GET / of a `conveyor serve` of this tree (the overview's snapshot off:
    each request reads the store), with the serve process's CPU and its backends' per page."""
    import subprocess
    import tempfile

    import httpx

    name = f"q16serve{os.getpid()}"  # the backends of the serve process (PostgreSQL)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env.update({"CONVEYOR_URL": url.replace(f"application_name=q16read{os.getpid()}",
                                            f"application_name={name}"),
                "CONVEYOR_LOG_LEVEL": "WARNING", "CONVEYOR_DASHBOARD_SNAPSHOT": "0",
                "CONVEYOR_CONFIG": os.path.join(tempfile.gettempdir(), "q16-none.toml")})
    conveyor = os.path.join(os.path.dirname(sys.executable), "conveyor")
    serve = subprocess.Popen([conveyor, "serve", "--port", str(port)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = {}
    try:
        server = Server(url, name)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for _ in range(300):
                with contextlib.suppress(httpx.HTTPError):
                    if client.get("/healthz").status_code == 200:
                        break
                time.sleep(0.1)
            for label, path in (("GET /queues", "/queues"), ("GET / (no snapshot)", "/")):
                for _ in range(3):
                    client.get(path).raise_for_status()
                walls = []
                served, own = server.cpu(), cpu_seconds(serve.pid)
                for _ in range(count):
                    began = time.perf_counter()
                    client.get(path).raise_for_status()
                    walls.append((time.perf_counter() - began) * 1000)
                walls.sort()
                out[label] = {
                    "wall_p50_ms": round(statistics.median(walls), 2),
                    "wall_p95_ms": round(walls[max(0, round(0.95 * count) - 1)], 2),
                    "serve_cpu_ms": round((cpu_seconds(serve.pid) - own) / count * 1000, 2),
                    "server_cpu_ms": round((server.cpu() - served) / count * 1000, 2)}
    finally:
        serve.terminate()
        serve.wait(30)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the store's URL (PostgreSQL: with ?schema=)")
    parser.add_argument("--reads", type=int, default=40, help="timed reads of each")
    parser.add_argument("--label", default="", help="a name for the tree, in the output")
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--http", type=int, default=0, metavar="PORT",
                        help="also time the pages over HTTP from a `conveyor serve` on PORT")
    args = parser.parse_args()
    name = f"q16read{os.getpid()}"
    url = args.url
    if url.startswith("postgres"):
        url += ("&" if "?" in url else "?") + f"application_name={name}"
    if args.explain:
        explain(url)
        return
    trips = None
    if url.startswith("postgres"):
        from conveyor.store.postgres.store import PostgresStore

        store: Any = PostgresStore(url)
        trips = Trips()
        trips.install()
    else:
        from conveyor.store.sqlite.store import SQLiteStore

        store = SQLiteStore(url)
    server = Server(url, name)

    async def run() -> dict[str, dict[str, float]]:
        await store.open()
        try:
            return await measure(store, server, args.reads, trips)
        finally:
            await store.close()

    figures = asyncio.run(run())
    if args.http:
        figures |= http_reads(url, args.reads, args.http)
    print(json.dumps({"label": args.label, "tree": sys.path[0] if sys.path else "",
                      "time": time.strftime("%H:%M:%S"), "load": os.getloadavg()[0],
                      "reads": figures}), flush=True)


if __name__ == "__main__":
    main()
