"""CPU of dashboard pages in process: the app served through httpx's ASGI transport against a
kept schema (or any CONVEYOR_URL), each page GET `--requests` times; per request the process
CPU (the event loop and the threads of the store reads; not the database server's) and the
wall time, medians. With --profile, a cProfile of the event loop's thread.

    PYTHONPATH=src .venv/bin/python bench/page_cpu.py --schema bench_reads_10m /queues /dead
    CONVEYOR_DASHBOARD_SNAPSHOT=0 ...   # every request reads (no shared copies)

Figures only: it asserts nothing; GETs only (it changes nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import time

import httpx

from conveyor import Conveyor
from conveyor.web.server import create_app

PG = os.environ.get("CONVEYOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


async def measure(url: str, paths: list[str], requests: int, profile: str | None) -> None:
    conveyor = Conveyor(url)
    app = create_app(conveyor, tokens="")  # open access: loopback requests only
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        for path in paths:
            for _ in range(3):  # warm: templates, prepared statements
                (await client.get(path)).raise_for_status()
            cpu, wall = [], []
            profiler = cProfile.Profile() if profile else None
            for _ in range(requests):
                began_cpu, began = time.process_time(), time.perf_counter()
                if profiler:
                    profiler.enable()
                response = await client.get(path)
                if profiler:
                    profiler.disable()
                cpu.append((time.process_time() - began_cpu) * 1000)
                wall.append((time.perf_counter() - began) * 1000)
            print(f"{path}: process CPU median {statistics.median(cpu):.2f} ms (min "
                  f"{min(cpu):.2f}), wall median {statistics.median(wall):.2f} ms, "
                  f"{len(response.text)} bytes")
            if profiler and profile:
                pstats.Stats(profiler).sort_stats(profile).print_stats(30)
    conveyor.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--schema", default=None, help="a kept PostgreSQL schema")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--profile", default=None, metavar="SORT",
                        help="cProfile the loop's thread, sorted by SORT (cumulative, tottime)")
    args = parser.parse_args()
    url = f"{PG}?schema={args.schema}" if args.schema else os.environ["CONVEYOR_URL"]
    asyncio.run(measure(url, args.paths, args.requests, args.profile))


if __name__ == "__main__":
    main()
