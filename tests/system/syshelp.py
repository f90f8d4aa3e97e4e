"""Helpers for the system tests: real `conveyor worker` subprocesses on one SQLite file.

A `System` owns a temporary folder with the database, the execution log every task appends
to, and one stdout/stderr file pair per process it starts. Every process is started in its
own session, and `close()` kills each session (SIGKILL to the process group), so nothing
outlives a test, not even the children of a supervisor.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import sysapp

from conveyor import Conveyor, Job
from polling import wait_until

HERE = Path(__file__).resolve().parent
CONVEYOR = Path(sys.executable).with_name("conveyor")
TERMINAL = ("completed", "dead", "cancelled")


@dataclass(frozen=True)
class Execution:
    event: str
    job_id: str
    attempt: int
    pid: int
    at: float


class System:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.db = folder / "jobs.db"
        self.url = f"sqlite:///{self.db}"
        self.exec_log = folder / "executions.log"
        self.exec_log.touch()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._files: list[IO[bytes]] = []
        self.app: Conveyor = sysapp.make_app(self.url)
        self.app.migrate()
        self.host = socket.gethostname()

    # --- processes ------------------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("CONVEYOR_", "SYS_", "PYTEST_"))}
        env.update({
            "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")])),
            "CONVEYOR_URL": self.url,
            "CONVEYOR_CONFIG": str(self.folder / "no-such-conveyor.toml"),
            "CONVEYOR_LEASE": "2",
            "CONVEYOR_HEARTBEAT": "0.5",
            "CONVEYOR_LOG_LEVEL": "INFO",
            "SYS_EXEC_LOG": str(self.exec_log),
            "PYTHONUNBUFFERED": "1",
        })
        env.update(extra)
        return env

    def start(self, name: str, argv: list[str], **env: str) -> subprocess.Popen[bytes]:
        out = open(self.folder / f"{name}.out", "wb")  # noqa: SIM115 - closed in close()
        err = open(self.folder / f"{name}.err", "wb")  # noqa: SIM115
        self._files += [out, err]
        proc = subprocess.Popen(argv, cwd=self.folder, env=self.env(**env), stdout=out,
                                stderr=err, start_new_session=True)
        self.procs[name] = proc
        return proc

    def worker(self, name: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        return self.start(name, [str(CONVEYOR), "worker", "--app", "sysapp:app", *args], **env)

    def cli(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run `conveyor ARGS` against this system's database and wait for it."""
        return subprocess.run([str(CONVEYOR), *args], cwd=self.folder, env=self.env(),
                              capture_output=True, text=True, timeout=timeout,
                              start_new_session=True, check=False)

    def wait_ready(self, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> str:
        """Wait until the worker in `proc` heartbeats; returns its worker id."""
        def registered() -> str | None:
            assert proc.poll() is None, f"worker exited early:\n{self.tail_of(proc)}"
            return next((w.id for w in self.app.workers() if w.pid == proc.pid), None)

        return wait_until(registered, timeout, f"worker pid {proc.pid} to register")

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> tuple[int, float]:
        """SIGTERM and wait: (exit status, seconds it took)."""
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"pid {proc.pid} still running {timeout:g}s after SIGTERM:"
                                 f"\n{self.tail_of(proc)}") from None
        return code, time.monotonic() - began

    def kill_group(self, proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)

    def tail(self, name: str, lines: int = 40) -> str:
        text = (self.folder / f"{name}.err").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def tail_of(self, proc: subprocess.Popen[bytes]) -> str:
        name = next(n for n, p in self.procs.items() if p is proc)
        return f"--- {name} stderr ---\n{self.tail(name)}"

    def close(self) -> None:
        for proc in self.procs.values():
            self.kill_group(proc)
        for file in self._files:
            file.close()
        self.app.close()

    # --- what happened --------------------------------------------------------------------

    def executions(self) -> list[Execution]:
        out = []
        for line in self.exec_log.read_text().splitlines():
            event, job_id, attempt, pid, at = line.split()
            out.append(Execution(event, job_id, int(attempt), int(pid), float(at)))
        return out

    def count(self, event: str) -> Counter[str]:
        return Counter(e.job_id for e in self.executions() if e.event == event)

    def most_at_once(self, pid: int) -> int:
        """The most jobs process `pid` was running at the same time (start to done)."""
        edges = sorted((e.at, 1 if e.event == "start" else -1) for e in self.executions()
                       if e.pid == pid)
        most = running = 0
        for _, step in edges:
            running += step
            most = max(most, running)
        return most

    def jobs(self) -> list[Job]:
        return self.app.list_jobs(limit=100_000)

    def states(self, ids: Iterable[str] | None = None) -> Counter[str]:
        wanted = None if ids is None else set(ids)
        return Counter(str(j.state) for j in self.jobs() if wanted is None or j.id in wanted)

    def wait_terminal(self, ids: Iterable[str], timeout: float) -> dict[str, Job]:
        wanted = set(ids)

        def done() -> dict[str, Job] | None:
            jobs = {j.id: j for j in self.jobs() if j.id in wanted}
            if len(jobs) == len(wanted) and all(j.terminal for j in jobs.values()):
                return jobs
            return None

        try:
            return wait_until(done, timeout, f"{len(wanted)} jobs to finish")
        except AssertionError as exc:
            logs = "\n".join(self.tail_of(p) for p in self.procs.values())
            raise AssertionError(f"{exc}; states now {dict(self.states(wanted))}\n{logs}") from None

    def sql(self, statement: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the database directly (a separate connection, as an operator would)."""
        conn = sqlite3.connect(self.db, timeout=10)
        try:
            return conn.execute(statement, params).fetchall()
        finally:
            conn.close()


def parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
