"""Settle throughput, A/B between source trees: a worker in one process drains a backlog of
no-op jobs (nine in ten return a small result, one in ten raises and goes dead), claim to
settle, and the drain is timed. Each block runs one source tree (PYTHONPATH) in a child, with
and without CONVEYOR_ENCRYPTION_KEYS (--no-keys: without only), and with the settings a variant
names after `@`, blocks interleaved in rotating order, so the machine's slow and quiet spells
fall on every variant alike.

    .venv/bin/python bench/settle_ab.py --variants /work/main/src,src
    .venv/bin/python bench/settle_ab.py --no-keys --variants old/src,src,src@CONVEYOR_HISTORY=0
    .venv/bin/python bench/settle_ab.py --variants /work/main/src,src \
        --url postgresql://postgres@127.0.0.1:5432/test --jobs 5000

Prints jobs/s per block and the median per variant. Figures only: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KEYS = "v1:" + base64.b64encode(b"k" * 32).decode()


def child(url: str, jobs: int, keys: bool) -> float:
    """Enqueue `jobs`, then drain them with one worker; jobs/s of the drain."""
    from conveyor import Conveyor, Retry, Settings

    settings = Settings.load(url=url, encryption_keys=KEYS if keys else "",
                             log_level="CRITICAL")
    app = Conveyor(settings=settings, auto_migrate=True)

    @app.task(name="work", retry=Retry(attempts=1))
    async def work(ctx: object, payload: dict[str, int]) -> dict[str, object]:
        if payload["n"] % 10 == 0:
            raise ValueError(f"job {payload['n']} failed on purpose")
        return {"n": payload["n"], "ok": True}

    for start in range(0, jobs, 1000):
        app.enqueue_many([("work", {"n": n}) for n in range(start, min(jobs, start + 1000))])

    async def drain() -> float:
        worker = app.worker(concurrency=50, worker_id=f"bench-{secrets.token_hex(3)}")
        began = time.perf_counter()
        ran = await worker.run_until_idle()
        elapsed = time.perf_counter() - began
        worker.close()
        assert ran == jobs, (ran, jobs)
        return jobs / elapsed

    try:
        return asyncio.run(drain())
    finally:
        app.close()


def fresh_url(base: str, folder: str, name: str) -> str:
    if base.startswith("sqlite"):
        return f"sqlite:///{folder}/{name}.db"
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}schema=settle_ab_{name}"


def drop_schema(base: str, name: str) -> None:
    if base.startswith("sqlite"):
        return
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "settle_ab_{name}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="", help="comma-separated src folders, each "
                        "optionally with settings: src@CONVEYOR_HISTORY=0@CONVEYOR_X=1")
    parser.add_argument("--url", default="sqlite")
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--keys", action="store_true")
    parser.add_argument("--no-keys", action="store_true",
                        help="leave out the runs with encryption keys")
    args = parser.parse_args()
    if args.child:
        print(child(args.url, args.jobs, args.keys))
        return
    variants = [v for v in args.variants.split(",") if v] or [""]
    cases = [(v, keys) for v in variants for keys in ((False,) if args.no_keys else (False, True))]
    results: dict[tuple[str, bool], list[float]] = {case: [] for case in cases}
    with tempfile.TemporaryDirectory() as folder:
        for block in range(args.blocks):
            order = cases[block % len(cases):] + cases[:block % len(cases)]
            for variant, keys in order:
                name = secrets.token_hex(4)
                env = dict(os.environ)
                source, *settings = variant.split("@")
                env.update(setting.split("=", 1) for setting in settings)
                if source:
                    env["PYTHONPATH"] = str(Path(source).resolve())
                command = [sys.executable, __file__, "--child", "--jobs", str(args.jobs),
                           "--url", fresh_url(args.url, folder, name)] + (
                               ["--keys"] if keys else [])
                try:
                    done = subprocess.run(command, env=env, capture_output=True, text=True,
                                          check=True)
                finally:
                    drop_schema(args.url, name)
                rate = float(done.stdout.strip().splitlines()[-1])
                results[variant, keys].append(rate)
                label = f"{variant or 'installed'}{' +keys' if keys else ''}"
                print(f"block {block + 1} {label:40} {rate:8.0f} jobs/s", flush=True)
    print("medians:")
    for (variant, keys), rates in results.items():
        label = f"{variant or 'installed'}{' +keys' if keys else ''}"
        print(f"  {label:40} {statistics.median(rates):8.0f} jobs/s  "
              f"(min {min(rates):.0f}, max {max(rates):.0f}, n={len(rates)})")


if __name__ == "__main__":
    main()
