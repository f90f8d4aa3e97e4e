"""Drain and enqueue rates of several source trees (commits), the peer harness's way, outside
the harness: for each tree, a fresh SQLite file or a fresh PostgreSQL database; `--jobs` no-op
jobs enqueued in bulk (batches of 1,000), then one real `python -m conveyor worker --app ...
--concurrency 10` process drains them, timed from the first job's start to the last job's
start (each job appends its start time to a marks file, as the harness's jobs do); then, in
another fresh store, `--singles` enqueues one call at a time. Trees run round by round in a
rotated order (A B C, B C A, ...), so the machine's slow and quiet spells fall on all alike;
medians per tree.

A tree is a commit of /work/main (extracted once to /tmp/pt-<sha>) or a directory holding
src/conveyor; `@NAME=VALUE&...` after it sets environment variables for that variant's
processes (CONVEYOR_HISTORY=false: the history's share; DRAIN_SQL="DROP INDEX x; ...": SQL run
on the fresh store after its migrations, to knock out an index or a trigger and see its
share; write `;` as `%3B` and `,` as `%2C` inside a variant).

    .venv/bin/python bench/drain_points.py --stores sqlite --trees \
        "a5440a8,a5440a8@CONVEYOR_HISTORY=false&DRAIN_SQL=DROP INDEX conveyor_jobs_id_tail"

    /work/main/.venv/bin/python bench/drain_points.py --trees 0303058,a5440a8 --rounds 3
    .venv/bin/python bench/drain_points.py --trees a5440a8,a5440a8@CONVEYOR_HISTORY=false \
        --stores postgres --jobs 20000 --singles 3000 --json /tmp/points.json
    .venv/bin/python bench/drain_points.py --trees . --rounds 1 --profile /tmp/prof

DRAIN_PG_DATABASE=name in the environment: the PostgreSQL database to use (dropped and made
anew; default bench_drain_points), so that two runs at once do not drop each other's.

Besides the rates: the worker process's CPU per job over the drain (from /proc) and, on
PostgreSQL, the CPU of the server backends of the drain's database (what bounds the drain on a
two-core machine, and far steadier than wall time). Figures only: it asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PYTHON = sys.executable
HERE = Path(__file__).resolve()
REPO = Path("/work/main")
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DATABASE = os.environ.get("DRAIN_PG_DATABASE", "bench_drain_points")  # one per concurrent run
MARK = 18  # bytes per job start in the marks file: b"%.6f\n"

APP = '''
import os, time
from conveyor import Conveyor, Settings

_fd = None
url = os.environ["DRAIN_URL"]
extra = {"sqlite_synchronous": "NORMAL"} if url.startswith("sqlite") else {}
app = Conveyor(settings=Settings.load(url=url, log_level="WARNING", **extra))


@app.task()
async def job(ctx, payload):
    global _fd
    t0 = time.time()
    if _fd is None:
        _fd = os.open(os.environ["DRAIN_MARKS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_fd, b"%.6f\\n" % t0)
'''


# --- the child: runs with PYTHONPATH=<tree>/src ----------------------------------------------

def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fresh_store(store: str, workdir: Path, name: str) -> str:
    if store == "sqlite":
        return f"sqlite:///{workdir / name}.db"
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_DATABASE}")
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + PG_DATABASE


def backend_pids(url: str) -> list[int]:
    if not url.startswith("postgres"):
        return []
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s",
                            (PG_DATABASE,)).fetchall()
    return [r[0] for r in rows]


def backends_cpu(pids: list[int]) -> dict[int, float]:
    found = {}
    for pid in pids:
        with contextlib.suppress(OSError):  # a backend that has gone
            found[pid] = cpu_seconds(pid)
    return found


def load_app(url: str, workdir: Path):  # type: ignore[no-untyped-def]
    os.environ["DRAIN_URL"] = url
    sys.modules.pop("drain_points_app", None)
    import drain_points_app  # written to workdir, which is on sys.path

    app = drain_points_app.app
    app.migrate()
    if os.environ.get("DRAIN_SQL"):  # a knock-out: drop an index or a trigger, say
        run_sql(url, os.environ["DRAIN_SQL"])
    return app


def run_sql(url: str, script: str) -> None:
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.executescript(script)
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for statement in filter(str.strip, script.split(";")):
            conn.execute(statement)


def fold_rest(url: str) -> float:
    """Fold what the drain left pending (as the workers' maintenance would next), by the
    tree's own store, on a connection of its own: that backend's CPU seconds (0 on SQLite).
    A tree that folds less often during the drain leaves more here, so the drain's figures
    count every attempt's fold either way."""
    if not url.startswith("postgres"):
        return 0.0
    import asyncio

    from conveyor.store.base import open_store

    async def run() -> float:
        store = open_store(url)
        await store.open()
        try:
            [(pid,)] = await store._one("SELECT pg_backend_pid()")
            before = cpu_seconds(pid)
            while await store.fold_history(10_000) >= 10_000:
                pass
            return cpu_seconds(pid) - before
        finally:
            await store.close()

    return asyncio.run(run())


def drain(store: str, workdir: Path, jobs: int, profile: str | None,
          workers: int = 1) -> dict[str, float]:
    url = fresh_store(store, workdir, "drain")
    app = load_app(url, workdir)
    t0 = time.perf_counter()
    for start in range(0, jobs, 1000):
        app.enqueue_many([{"task": "job", "payload": {"ms": 0}}] * min(1000, jobs - start))
    bulk = jobs / (time.perf_counter() - t0)
    app.close()
    marks = workdir / "marks"
    marks.write_bytes(b"")
    env = {**os.environ, "DRAIN_MARKS": str(marks)}
    command = [PYTHON, "-m", "conveyor", "worker", "--app", "drain_points_app:app",
               "--concurrency", "10"]
    if profile:
        command[1:1] = ["-m", "cProfile", "-o", profile]
    procs = [subprocess.Popen(command, env=env, cwd=workdir, stderr=subprocess.PIPE)
             for _ in range(workers)]
    try:
        worker_cpu0: float | None = None
        server0: dict[int, float] = {}
        deadline = time.time() + 300
        while (size := marks.stat().st_size) < jobs * MARK:
            for worker in procs:
                if worker.poll() is not None:
                    raise RuntimeError(
                        f"a worker exited: {worker.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            if time.time() > deadline:
                raise RuntimeError(f"drain stuck at {size // MARK} of {jobs}")
            if size and worker_cpu0 is None:
                worker_cpu0 = sum(cpu_seconds(w.pid) for w in procs)
                server0 = backends_cpu(backend_pids(url))
            time.sleep(0.002)
        t_end = time.time()
        worker_cpu = sum(cpu_seconds(w.pid) for w in procs) - (worker_cpu0 or 0.0)
        # backends opened during the drain count from zero
        server1 = backends_cpu(backend_pids(url))
        server_cpu = sum(cpu - server0.get(p, 0.0) for p, cpu in server1.items())
    finally:
        for worker in procs:
            worker.send_signal(signal.SIGTERM)
        for worker in procs:
            try:
                worker.wait(60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
    rest = fold_rest(url)
    first = min(float(line) for line in marks.read_bytes().split())
    return {"drain": jobs / (t_end - first), "bulk": bulk,
            "worker_us": worker_cpu / jobs * 1e6, "server_us": server_cpu / jobs * 1e6,
            "rest_us": rest / jobs * 1e6, "total_us": (worker_cpu + server_cpu + rest) / jobs * 1e6}


def singles(store: str, workdir: Path, count: int) -> dict[str, float]:
    url = fresh_store(store, workdir, "singles")
    app = load_app(url, workdir)
    payload = {"ms": 0}
    for _ in range(20):  # warm-up: connections, prepared statements
        app.enqueue("job", payload)
    t0 = time.perf_counter()
    for _ in range(count):
        app.enqueue("job", payload)
    rate = count / (time.perf_counter() - t0)
    app.close()
    return {"enqueue": rate}


def child(args: argparse.Namespace) -> None:
    workdir = Path(args.workdir)
    sys.path.insert(0, str(workdir))
    result: dict[str, float] = {}
    if args.jobs:
        result.update(drain(args.store, workdir, args.jobs, args.profile_file, args.workers))
    if args.singles:
        result.update(singles(args.store, workdir, args.singles))
    print(json.dumps(result))


# --- the parent ------------------------------------------------------------------------------

def tree_root(spec: str) -> Path:
    path = Path(spec)
    if (path / "src" / "conveyor").is_dir():
        return path.resolve()
    root = Path(f"/tmp/pt-{spec}")
    if not (root / "src" / "conveyor").is_dir():
        root.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", spec], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    return root


def run_variant(variant: str, store: str, args: argparse.Namespace, index: int
                ) -> dict[str, float]:
    spec, _, extra = variant.partition("@")
    root = tree_root(spec)
    with tempfile.TemporaryDirectory(prefix="drain-points-") as workdir:
        (Path(workdir) / "drain_points_app.py").write_text(APP)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
        env.update((name, value.replace("%3B", ";").replace("%2C", ","))
                   for name, value in (pair.split("=", 1) for pair in extra.split("&") if pair))
        env["PYTHONPATH"] = f"{root / 'src'}:{workdir}"
        profile = None
        if args.profile:
            Path(args.profile).mkdir(parents=True, exist_ok=True)
            name = variant.replace("/", "_").replace("@", "+")
            profile = str(Path(args.profile).resolve() / f"{name}-{store}-{index}.prof")
        command = [PYTHON, str(HERE), "--child", "--store", store, "--workdir", workdir,
                   "--jobs", str(args.jobs), "--singles", str(args.singles),
                   "--workers", str(args.workers)]
        if profile:
            command += ["--profile-file", profile]
        done = subprocess.run(command, env=env, cwd=workdir, capture_output=True, text=True,
                              timeout=900)
        if done.returncode:
            raise RuntimeError(f"{variant} on {store}: {done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])


KEYS = (("drain", "drain jobs/s", 0), ("worker_us", "worker CPU µs/job", 0),
        ("server_us", "backends CPU µs/job", 0),
        ("rest_us", "fold of the rest µs/job", 0), ("total_us", "all CPU µs/job", 0),
        ("enqueue", "enqueue 1 by 1 /s", 0),
        ("bulk", "bulk /s", 0))


def report(results: dict[tuple[str, str], list[dict[str, float]]], variants: list[str],
           stores: list[str]) -> str:
    lines = []
    for store in stores:
        lines.append(f"\n{store}: medians (each round's figure in brackets)\n")
        keys = [k for k in KEYS if any(k[0] in r for v in variants
                                       for r in results.get((v, store), []))]
        if store == "sqlite":
            keys = [k for k in keys if k[0] != "server_us"]
        lines.append("| tree | " + " | ".join(k[1] for k in keys) + " |")
        lines.append("|---" * (len(keys) + 1) + "|")
        for variant in variants:
            runs = results.get((variant, store), [])
            cells = []
            for key, _, _ in keys:
                values = [r[key] for r in runs if key in r]
                if not values:
                    cells.append("")
                    continue
                each = ", ".join(f"{v:,.0f}" for v in values)
                cells.append(f"{statistics.median(values):,.0f} ({each})")
            lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trees", default="0303058,a5440a8",
                        help="commits or directories, comma-separated; @ENV=VALUE per variant")
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs drained (0: no drain)")
    parser.add_argument("--singles", type=int, default=3_000,
                        help="single enqueues timed (0: none)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes draining at once (concurrency 10 each)")
    parser.add_argument("--json", help="write every run's figures here")
    parser.add_argument("--profile", help="directory: cProfile each worker into it")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--profile-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    variants = args.trees.split(",")
    stores = args.stores.split(",")
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    print(f"# drain points {time.strftime('%Y-%m-%d %H:%M:%S')} UTC, jobs={args.jobs}, "
          f"singles={args.singles}, rounds={args.rounds}; load {os.getloadavg()}", flush=True)
    for round_ in range(args.rounds):
        order = variants[round_ % len(variants):] + variants[:round_ % len(variants)]
        for store in stores:
            for variant in order:
                figures = run_variant(variant, store, args, round_)
                results.setdefault((variant, store), []).append(figures)
                shown = ", ".join(f"{k} {v:,.0f}" for k, v in figures.items())
                print(f"round {round_ + 1} {store} {variant}: {shown}; "
                      f"load {os.getloadavg()[0]:.2f}", flush=True)
    print(report(results, variants, stores))
    print(f"\nload at the end {os.getloadavg()}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {f"{v} {s}": runs for (v, s), runs in results.items()}, indent=1))


if __name__ == "__main__":
    main()
