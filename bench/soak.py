"""Soak: a mixed load on 4 real `conveyor worker` processes for a given time.

    .venv/bin/python bench/soak.py --store sqlite --minutes 10 --json bench/results/soak.json
    .venv/bin/python bench/soak.py --store pg --minutes 1

The producer (this process) enqueues fast jobs, slow ones (some cancelled while they run or
before they start), ones that fail once and then succeed, ones that always fail (dead after 2
attempts), and a cron schedule ticks every 5 s (bench/soak_app.py). Every 5 s it samples each
worker's RSS and open file descriptors (/proc). At the end it stops producing, lets the
workers drain, stops them and reports:

- RSS slope (MB/h, least squares over the samples after the first fifth: warm-up excluded),
- open file descriptors over time (and whether they grew),
- throughput per minute (successful ends, from the ledger the tasks write),
- errors (ERROR lines and tracebacks in the workers' logs, producer exceptions, jobs of tasks
  that should succeed ending dead),
- lost jobs (not terminal after the drain, or completed with no ledger line) and duplicated
  ones (more than one successful end in the ledger).

--store pg uses a schema of its own on CONVEYOR_TEST_POSTGRES (default the shared server),
dropped afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CONVEYOR = Path(sys.executable).with_name("conveyor")
PG_BASE = os.environ.get("CONVEYOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
SAMPLE_EVERY = 5.0
WORKERS = 4
ERROR_LINE = re.compile(r"\bERROR\b|\bCRITICAL\b|^Traceback")
SHOULD_SUCCEED = ("fast", "slow", "flaky", "tick")


def proc_rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def proc_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) in value per hour; 0 for fewer than 3 points."""
    if len(points) < 3:
        return 0.0
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return sum((t - mx) * (v - my) for t, v in points) / var * 3600


class Soak:
    def __init__(self, store: str, minutes: float, folder: Path) -> None:
        self.store_kind = store
        self.minutes = minutes
        self.folder = folder
        self.ledger = folder / "ledger.log"
        self.ledger.touch()
        self.schema = f"conveyor_soak_{secrets.token_hex(4)}"
        if store == "sqlite":
            self.url = f"sqlite:///{folder / 'soak.db'}"
        else:
            self.url = f"{PG_BASE}?schema={self.schema}&application_name={self.schema}"
        sys.path.insert(0, str(HERE))
        os.environ["CONVEYOR_URL"] = self.url
        from soak_app import app

        self.app = app
        self.app.migrate()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ids: dict[str, str] = {}  # job id -> task
        self.cancels = Counter[str]()
        self.producer_errors: list[str] = []
        self.samples: list[dict[str, Any]] = []

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
        env.update({"CONVEYOR_URL": self.url, "SOAK_LEDGER": str(self.ledger),
                    "CONVEYOR_CONFIG": str(self.folder / "none.toml"),
                    "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE),
                                                                env.get("PYTHONPATH")])),
                    "CONVEYOR_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"})
        return env

    def start_workers(self) -> None:
        for n in range(WORKERS):
            err = open(self.folder / f"worker{n}.err", "wb")  # noqa: SIM115 - lives with it
            self.procs.append(subprocess.Popen(
                [str(CONVEYOR), "worker", "--app", "soak_app:app", "--concurrency", "8"],
                cwd=self.folder, env=self.env(), stdout=err, stderr=err,
                start_new_session=True))

    def stop_workers(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def enqueue(self, task: str, payload: Any = None, **options: Any) -> str | None:
        try:
            job = self.app.enqueue(task, payload, **options)
        except Exception as exc:  # counted: a producer error is a soak error
            self.producer_errors.append(f"{type(exc).__name__}: {exc}")
            return None
        self.ids[job.id] = task
        return job.id

    def cancel(self, job_id: str | None, why: str) -> None:
        if job_id is None:
            return
        try:
            self.app.cancel(job_id)
            self.cancels[why] += 1
        except Exception as exc:
            self.producer_errors.append(f"cancel: {type(exc).__name__}: {exc}")

    def sample(self, began: float) -> None:
        rss = [proc_rss_mb(p.pid) for p in self.procs]
        fds = [proc_fds(p.pid) for p in self.procs]
        self.samples.append({"t": round(time.monotonic() - began, 1),
                             "rss_mb": round(sum(rss), 2), "fds": sum(fds),
                             "alive": sum(p.poll() is None for p in self.procs)})

    def produce(self) -> None:
        began = time.monotonic()
        end = began + self.minutes * 60
        tick = 0
        next_sample = began
        running_slow: list[tuple[float, str | None]] = []
        while (now := time.monotonic()) < end:
            if now >= next_sample:
                self.sample(began)
                next_sample += SAMPLE_EVERY
            for n in range(4):  # 40 fast jobs a second
                self.enqueue("fast", {"n": tick * 4 + n})
            if tick % 10 == 0:  # once a second: slow, flaky, failing
                self.enqueue("slow", {"sleep": 1.0 + (tick // 10 % 3)})
                self.enqueue("flaky", {})
                self.enqueue("failing", {})
            if tick % 20 == 5:  # every 2 s: a slow job cancelled while it (likely) runs ...
                running_slow.append((now + 0.8, self.enqueue("slow", {"sleep": 5.0})))
                # ... and a delayed one cancelled before it starts
                self.cancel(self.enqueue("slow", {"sleep": 1.0}, delay=30), "before start")
            while running_slow and running_slow[0][0] <= now:
                self.cancel(running_slow.pop(0)[1], "while running")
            tick += 1
            time.sleep(max(0.0, began + tick * 0.1 - time.monotonic()))
        self.sample(began)

    def drain(self, timeout: float = 90.0) -> list[str]:
        """Wait until every produced job is terminal; the ids still not terminal."""
        from conveyor.job import JobFilter, JobState

        open_states = (JobState.QUEUED, JobState.SCHEDULED, JobState.RUNNING)
        deadline = time.monotonic() + timeout
        while True:
            pending = [j.id for j in self.app.list_jobs(JobFilter(states=open_states),
                                                        limit=1000) if j.id in self.ids]
            if not pending or time.monotonic() > deadline:
                return pending
            time.sleep(1.0)

    def all_jobs(self) -> dict[str, Any]:
        jobs: dict[str, Any] = {}
        after: str | None = None
        while True:
            page = self.app.list_jobs(after=after, limit=500)
            if not page:
                return jobs
            for job in page:
                jobs[job.id] = job
            after = page[-1].id

    def report(self, began: float, pending: list[str]) -> dict[str, Any]:
        ends = Counter[str]()
        end_times: list[float] = []
        for line in self.ledger.read_text().splitlines():
            parts = line.split()
            ends[parts[1]] += 1
            end_times.append(float(parts[4]))
        jobs = self.all_jobs()
        states = Counter(f"{j.task}:{j.state}" for j in jobs.values())
        lost = set(pending) | {i for i in self.ids if i not in jobs}
        lost |= {i for i, j in jobs.items() if str(j.state) == "completed"
                 and j.task in SHOULD_SUCCEED and ends[i] == 0}
        duplicated = sorted(i for i, n in ends.items() if n > 1)
        unexpected_dead = sorted(i for i, j in jobs.items() if str(j.state) == "dead"
                                 and j.task in ("fast", "flaky", "tick"))
        log_errors: list[str] = []
        warnings = Counter[str]()
        for n in range(WORKERS):
            for line in (self.folder / f"worker{n}.err").read_text(errors="replace").splitlines():
                if ERROR_LINE.search(line):
                    log_errors.append(line[:300])
                elif "WARNING" in line and "fails on purpose" not in line:
                    text = line.split("WARNING", 1)[1]
                    warnings[re.sub(r"[0-9a-f]{8,}|\d+", "N", text)[:80]] += 1
        per_minute = Counter(int((t - self.wall_began) // 60) for t in end_times)
        warm = [s for s in self.samples if s["t"] >= self.samples[-1]["t"] / 5]
        fds = [s["fds"] for s in warm] or [0]
        quarter = max(1, len(fds) // 4)
        ticks = sum(1 for j in jobs.values() if j.task == "tick")
        return {
            "store": self.store_kind, "minutes": self.minutes, "workers": WORKERS,
            "jobs_enqueued": len(self.ids), "jobs_by_task_state": dict(sorted(states.items())),
            "cron_ticks": ticks, "cancel_requests": dict(self.cancels),
            "successful_ends": sum(ends.values()),
            "throughput_per_minute": [per_minute[m] for m in range(int(self.minutes + 0.999))],
            "rss_mb_start": warm[0]["rss_mb"] if warm else None,
            "rss_mb_end": self.samples[-1]["rss_mb"],
            "rss_slope_mb_per_hour": round(slope_per_hour([(s["t"], s["rss_mb"])
                                                           for s in warm]), 2),
            "fds_start": fds[0], "fds_end": fds[-1],
            "fds_growing": max(fds[-quarter:]) > max(fds[:quarter]) + 4,
            "samples": self.samples,
            "lost": len(lost), "lost_ids": sorted(lost)[:20],
            "duplicated": len(duplicated), "duplicated_ids": duplicated[:20],
            "unexpected_dead": len(unexpected_dead),
            "errors": len(log_errors) + len(self.producer_errors) + len(unexpected_dead),
            "error_lines": (log_errors + self.producer_errors)[:20],
            "warnings": dict(warnings.most_common(10)),
            "workers_exited_early": sum(s["alive"] < WORKERS for s in self.samples),
            "seconds": round(time.monotonic() - began, 1),
        }

    def run(self) -> dict[str, Any]:
        began = time.monotonic()
        self.wall_began = time.time()
        self.start_workers()
        try:
            self.produce()
            pending = self.drain()
        finally:
            self.stop_workers()
        return self.report(began, pending)

    def close(self) -> None:
        self.app.close()
        if self.store_kind == "pg":
            import psycopg

            with psycopg.connect(PG_BASE, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=("sqlite", "pg"), default="sqlite")
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--json", metavar="PATH", help="write the report here as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="conveyor-soak-"))
    soak = Soak(args.store, args.minutes, folder)
    try:
        result = soak.run()
    finally:
        soak.close()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    summary = {k: v for k, v in result.items() if k not in ("samples", "lost_ids",
                                                            "duplicated_ids")}
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
