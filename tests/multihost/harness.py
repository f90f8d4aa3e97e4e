"""The multi-host system: PostgreSQL on a host, workers and producers on others, a ledger.

    mh.url()                         # the schema of this test, at the database host's address
    host = mh.network.host("w1")
    proc = mh.worker(host, lease=3)  # `conveyor worker --app mhapp:app` inside that host
    mh.ledger()                      # [(event, job id, attempt, host, pid)] the tasks wrote
    mh.log(host)                     # what the processes on that host logged
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from conveyor import Conveyor
from polling import wait_until
from postgres.cluster import PrivateCluster

from .netns import Host, Network

HERE = Path(__file__).resolve().parent
CONVEYOR = Path(sys.executable).with_name("conveyor")
REPORTS: list[str] = []  # the counts each test saw, printed at the end of the run


def report(line: str) -> None:
    """Print `line` now (with -s) and in the run's summary (always)."""
    print("\n" + line)
    REPORTS.append(line)


class NamespacedCluster(PrivateCluster):
    """The tests' private PostgreSQL server, started inside `host`'s namespace and listening
    on its address (and nowhere else)."""

    def __init__(self, binaries: Path, host: Host) -> None:
        self.host = host
        super().__init__(binaries)
        self.port = 5432  # the namespace is ours: no other server listens in it
        subnet = ipaddress.ip_network(f"{host.address}/24", strict=False)
        with open(self.data / "pg_hba.conf", "a") as hba:  # the test network's hosts
            hba.write(f"host all all {subnet} trust\n")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{self.host.address}:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.binaries / tool), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(self.host.argv(command), check=True, timeout=120,
                       stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def _options(self) -> str:
        return (f"-p {self.port} -k {self.root} -c listen_addresses={self.host.address} "
                "-c max_connections=200 -c shared_buffers=64MB -c fsync=off")


class MultiHost:
    def __init__(self, network: Network, database: NamespacedCluster, folder: Path,
                 schema: str) -> None:
        self.network = network
        self.database = database
        self.folder = folder
        self.schema = schema
        self.ledger_path = folder / "ledger.log"
        self.ledger_path.touch()
        self.app = Conveyor(self.url())
        self.app.migrate()
        self.procs: list[subprocess.Popen[bytes]] = []

    def url(self, host: str | None = None, port: int | None = None, **options: str) -> str:
        """This test's schema, at the database (or a proxy at host:port)."""
        where = f"{host or self.database.host.address}:{port or self.database.port}"
        query = "&".join([f"schema={self.schema}", f"application_name={self.schema}",
                          *(f"{k}={v}" for k, v in options.items())])
        return f"postgresql://postgres@{where}/postgres?{query}"

    def env(self, host: Host, url: str, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("CONVEYOR_", "MH_", "PYTEST_", "FAKETIME"))}
        env.update({
            "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")])),
            "CONVEYOR_URL": url, "CONVEYOR_CONFIG": str(self.folder / "none.toml"),
            "CONVEYOR_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1",
            "MH_LEDGER": str(self.ledger_path), "MH_HOST": host.name,
        })
        env.update(extra)
        return env

    def worker(self, host: Host, *, url: str | None = None, lease: float = 3.0,
               heartbeat: float = 0.5, concurrency: int = 8, prefix: tuple[str, ...] = (),
               **env: str) -> subprocess.Popen[bytes]:
        """A real `conveyor worker` in `host`'s namespace (under `prefix`, e.g. faketime)."""
        argv = [*prefix, str(CONVEYOR), "worker", "--app", "mhapp:app",
                "--concurrency", str(concurrency)]
        extra = {"CONVEYOR_LEASE": f"{lease:g}", "CONVEYOR_HEARTBEAT": f"{heartbeat:g}", **env}
        proc = host.popen(argv, env=self.env(host, url or self.url(), **extra),
                          log=self.log_path(host), cwd=self.folder)
        self.procs.append(proc)
        return proc

    def python(self, host: Host, script: str, *args: str, url: str | None = None,
               **env: str) -> subprocess.Popen[bytes]:
        proc = host.popen([sys.executable, str(HERE / script), *args],
                          env=self.env(host, url or self.url(), **env),
                          log=self.log_path(host), cwd=self.folder)
        self.procs.append(proc)
        return proc

    def log_path(self, host: Host) -> Path:
        return self.folder / f"{host.name}.log"

    def log(self, host: Host) -> str:
        path = self.log_path(host)
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_ready(self, proc: subprocess.Popen[bytes], host: Host,
                   timeout: float = 20.0) -> str:
        def registered() -> str | None:
            assert proc.poll() is None, f"worker exited early:\n{self.log(host)[-3000:]}"
            return next((w.id for w in self.app.workers() if w.pid == proc.pid), None)

        return wait_until(registered, timeout, f"the worker on {host.name} to register", 0.1)

    def ledger(self) -> list[tuple[str, str, int, str, int]]:
        out = []
        for line in self.ledger_path.read_text().splitlines():
            event, job_id, attempt, host, pid = line.split()
            out.append((event, job_id, int(attempt), host, int(pid)))
        return out

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database.url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'SET search_path TO "{self.schema}"')
            return conn.execute(query, params).fetchall()  # type: ignore[arg-type]

    def states(self) -> dict[str, int]:
        return dict(self.sql("SELECT state, count(*) FROM conveyor_jobs GROUP BY state"))

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
        self.app.close()
        with contextlib.suppress(psycopg.Error), psycopg.connect(
                self.database.url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
