"""Pickup latency on PostgreSQL, A/B: source trees measured in interleaved blocks.

The peer harness's pickup scenario, reproduced so that two versions of Conveyor can be compared
side by side in one run: one idle worker process; enqueue one job, wait until it has started,
with random gaps of up to twice the recent median; latency = the job's start time minus the
time just before the enqueue call. Each block runs the producer and the worker from one source
tree (PYTHONPATH), so the machine's slow and quiet spells fall on every variant alike.

    .venv/bin/python bench/pg_pickup.py                                 # this checkout
    .venv/bin/python bench/pg_pickup.py --variants ../base/src,src --blocks 6 --rounds 100
    .venv/bin/python bench/pg_pickup.py --correlation-id req-1   # jobs as ctx.enqueue's children

Prints p50 / p95 per block and per variant (over all its samples). Needs PostgreSQL on
CONVEYOR_URL (default postgresql://postgres@127.0.0.1:5432/test); uses its own schema.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

URL = os.environ.get("CONVEYOR_URL", "postgresql://postgres@127.0.0.1:5432/test")
SCHEMA = os.environ.get("PICKUP_SCHEMA", "conveyor_pickup_bench")
HERE = Path(__file__).resolve().parent


def build_app():  # type: ignore[no-untyped-def]
    """The worker's and the producer's app (imported as pg_pickup:app by the worker)."""
    from conveyor import Conveyor, Settings

    sep = "&" if "?" in URL else "?"
    app = Conveyor(settings=Settings.load(url=f"{URL}{sep}schema={SCHEMA}",
                                          log_level="WARNING"))
    marks = os.environ.get("PICKUP_MARKS", "/dev/null")
    fd: list[int] = []

    @app.task()
    async def mark(ctx, payload):  # type: ignore[no-untyped-def]
        t0 = time.time()
        if not fd:
            fd.append(os.open(marks, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
        os.write(fd[0], b"%.6f\n" % t0)

    return app, mark


if os.environ.get("PICKUP_ROLE") == "worker":
    app, _ = build_app()


def starts(marks: Path) -> list[float]:
    return [float(line) for line in marks.read_text().split()] if marks.exists() else []


def measure(rounds: int) -> list[float]:
    """One block: a fresh worker process, `rounds` pickups. Runs in a child (its PYTHONPATH
    picks the source tree)."""
    marks = Path(tempfile.mkdtemp()) / "marks"
    correlation = os.environ.get("PICKUP_CORRELATION") or None
    options = {} if correlation is None else {"correlation_id": correlation}
    app, mark = build_app()
    app.migrate()
    with psycopg.connect(URL, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {SCHEMA}.conveyor_jobs")
    env = {**os.environ, "PICKUP_ROLE": "worker", "PICKUP_MARKS": str(marks),
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    worker = subprocess.Popen([sys.executable, "-m", "conveyor", "worker", "--app",
                               "pg_pickup:app", "--concurrency", "10"], env=env)
    try:
        mark.enqueue({}, **options)
        wait_for(marks, 1, 60)
        latencies: list[float] = []
        while len(latencies) < rounds:
            recent = sorted(latencies[-20:])
            time.sleep(random.uniform(0, max(0.02, 2 * recent[len(recent) // 2])
                                      if recent else 0.02))
            t0 = time.time()
            mark.enqueue({}, **options)
            latencies.append(wait_for(marks, len(latencies) + 2, 10)[-1] - t0)
        return latencies
    finally:
        worker.terminate()
        worker.wait(30)
        app.close()


def wait_for(marks: Path, count: int, timeout: float) -> list[float]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        seen = starts(marks)
        if len(seen) >= count:
            return seen
        time.sleep(0.001)
    raise RuntimeError(f"job {count} did not start within {timeout} s")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)]  # nearest rank


def row(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (f"{name:<40} n={len(ms):>4}  p50 {percentile(ms, 50):6.2f} ms  "
            f"p95 {percentile(ms, 95):6.2f} ms  mean {statistics.fmean(ms):6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default="",
                        help="comma-separated source trees (src folders); default: installed")
    parser.add_argument("--blocks", type=int, default=4, help="blocks per variant")
    parser.add_argument("--rounds", type=int, default=100, help="pickups per block")
    parser.add_argument("--correlation-id", default="",
                        help="enqueue every job with this correlation id (a child job's shape)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.correlation_id:
        os.environ["PICKUP_CORRELATION"] = args.correlation_id
    if args.child:
        import conveyor

        print(conveyor.__file__, file=sys.stderr)
        print(json.dumps(measure(args.rounds)))
        return
    variants = [v for v in args.variants.split(",") if v] or [""]
    results: dict[str, list[float]] = {v: [] for v in variants}
    for block in range(args.blocks):
        order = variants if block % 2 == 0 else variants[::-1]
        for variant in order:
            env = {**os.environ, "PICKUP_SCHEMA": f"{SCHEMA}_{variants.index(variant)}"}
            if variant:
                env["PYTHONPATH"] = str(Path(variant).resolve())
            out = subprocess.run([sys.executable, __file__, "--child", "--rounds",
                                  str(args.rounds)], env=env, check=True, capture_output=True,
                                 text=True)
            values = json.loads(out.stdout.strip().splitlines()[-1])
            if block == 0:
                print(f"  {variant or 'installed'}: {out.stderr.strip().splitlines()[0]}")
            results[variant].extend(values)
            print(row(f"block {block + 1} {variant or 'installed'}", values), flush=True)
    print()
    for variant, values in results.items():
        print(row(variant or "installed", values))


if __name__ == "__main__":
    main()
