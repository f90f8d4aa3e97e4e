"""CLI tests: the real `conveyor` command in subprocesses, against a temporary SQLite file."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from conveyor import Conveyor, FakeClock
from conveyor.testing import run_until_idle

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # cliapp, for seeding from this process
    sys.path.insert(0, str(HERE))

from cliapp import make_app  # noqa: E402


def conveyor_command() -> list[str]:
    """The installed console script beside this interpreter, else `python -m conveyor`."""
    script = Path(sys.executable).with_name("conveyor")
    return [str(script)] if script.exists() else [sys.executable, "-m", "conveyor"]


@dataclass
class Cli:
    """Runs `conveyor ARGS` with CONVEYOR_URL pointing at this test's database."""

    cwd: Path
    url: str
    env: dict[str, str]

    def __call__(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*conveyor_command(), *args], cwd=self.cwd, env=self.env,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def ok(self, *args: str, env_columns: int | None = None) -> str:
        """stdout of a command that must succeed (in a terminal `env_columns` wide)."""
        result = self(*args) if env_columns is None else self.wide(env_columns, *args)
        assert result.returncode == 0, (args, result.returncode, result.stdout, result.stderr)
        return result.stdout

    def wide(self, columns: int, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "COLUMNS": str(columns)}
        return subprocess.run([*conveyor_command(), *args], cwd=self.cwd, env=env,
                              capture_output=True, text=True, timeout=30, check=False)

    def json(self, *args: str) -> Any:
        return orjson.loads(self.ok(*args, "--json"))

    def app(self, clock: FakeClock | None = None) -> Conveyor:
        """An app on the same database, in this process, for seeding and checking."""
        return make_app(self.url, clock)


def clean_env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CONVEYOR_") and k not in ("COLUMNS", "LINES")}
    env["CONVEYOR_URL"] = url
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    return env


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    return Cli(cwd=tmp_path, url=url, env=clean_env(url))


@dataclass(frozen=True)
class Seeded:
    completed: str
    dead: str
    queued: str


@pytest.fixture
def seeded(cli: Cli) -> Seeded:
    """One completed, one dead (its only attempt failed) and one queued job."""
    app = cli.app()
    try:
        completed = app.enqueue("send_welcome", {"user_id": "u1"}).id
        dead = app.enqueue("always_fails", {"url": "https://hooks.example.com"}).id
        run_until_idle(app)
        queued = app.enqueue("send_welcome", {"user_id": "u2"}, tenant="acme").id
    finally:
        app.close()  # the commands run alone on the file, as they would in real life
    return Seeded(completed=completed, dead=dead, queued=queued)
