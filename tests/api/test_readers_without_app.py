"""Sensitive values stay hidden from readers that do not know the task: a real `conveyor
serve` started without any app, and the `conveyor` command without --app, on SQLite and
PostgreSQL. The task puts the value into an exception message (so its traceback too) and
returns it in its result; a second one puts it into its progress step and dies with it."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from pydantic import BaseModel
from tests.stores import BOTH, store_url_for

from conveyor import Conveyor, JobContext, Retry, Sensitive
from conveyor.testing import run_until_idle

from .harness import close_app, free_port

CONVEYOR = str(Path(sys.executable).with_name("conveyor"))
SECRET = "hunter2-" + secrets.token_hex(4)


class Login(BaseModel):
    user: str
    password: Annotated[str, Sensitive]


def seed(url: str) -> dict[str, str]:
    """Run the jobs with an app that knows their task (a worker), then close it."""
    app = Conveyor(url, auto_migrate=True)

    @app.task(name="log_in", schema=Login, retry=Retry(attempts=2, backoff="fixed", base=0))
    def log_in(ctx: JobContext, payload: Login) -> dict[str, Any]:
        if ctx.attempt == 1:
            raise PermissionError(f"refused {payload.password!r} for {payload.user}")
        return {"token_for": payload.password, "note": f"logged in with {payload.password}",
                payload.password: 1}

    @app.task(name="always_leaks", schema=Login, retry=Retry(attempts=1))
    def always_leaks(ctx: JobContext, payload: Login) -> None:
        ctx.progress(50, f"trying {payload.password}")
        raise ValueError(f"bad password {payload.password}")

    try:
        ids = {"completed": app.enqueue("log_in", {"user": "ann", "password": SECRET}).id,
               "dead": app.enqueue("always_leaks", {"user": "bob", "password": SECRET}).id}
        run_until_idle(app)
        completed, dead = app.get(ids["completed"]), app.get(ids["dead"])
        assert completed.state == "completed" and len(completed.errors) == 1
        assert SECRET in str(completed.result) and SECRET in str(completed.errors[0].traceback)
        assert dead.state == "dead" and SECRET in dead.errors[0].message
    finally:
        close_app(app)
    return ids


@pytest.fixture(params=BOTH)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with store_url_for(request.param, tmp_path, "readers") as url:
        yield url


def bare_env(url: str) -> dict[str, str]:
    """No app anywhere: neither CONVEYOR_APP nor a module of tasks on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    return {**env, "CONVEYOR_URL": url, "COLUMNS": "200"}


def serve_without_app(url: str, cwd: Path) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    process = subprocess.Popen([CONVEYOR, "serve", "--port", str(port)], cwd=cwd,
                               env=bare_env(url), text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(base + "/healthz").status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"conveyor serve did not start: {process.communicate()[1]}")
        time.sleep(0.05)


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()


def test_a_server_without_an_app_never_shows_a_sensitive_value(store_url: str,
                                                               tmp_path: Path) -> None:
    ids = seed(store_url)
    process, base = serve_without_app(store_url, tmp_path)
    try:
        with httpx.Client(base_url=base, timeout=10) as client:
            completed = client.get(f"/api/v1/jobs/{ids['completed']}").json()
            dead = client.get(f"/api/v1/jobs/{ids['dead']}").json()
            pages = [client.get(path).text for path in (
                f"/api/v1/jobs/{ids['completed']}", f"/api/v1/jobs/{ids['dead']}",
                "/api/v1/jobs", "/api/v1/jobs?state=dead", f"/jobs/{ids['completed']}",
                f"/jobs/{ids['dead']}", "/jobs", "/dead", "/")]
    finally:
        stop(process)
    assert completed["payload"] == {"user": "ann", "password": "[redacted]"}
    assert completed["result"] == {"token_for": "[redacted]",
                                   "note": "logged in with [redacted]", "[redacted]": 1}
    [error] = completed["errors"]
    assert error["message"] == "refused '[redacted]' for ann"
    assert "PermissionError: refused '[redacted]' for ann" in error["traceback"]
    assert dead["errors"][0]["message"] == "bad password [redacted]"
    assert dead["progress_step"] == "trying [redacted]"
    for page in pages:
        assert SECRET not in page


def test_the_cli_without_an_app_never_shows_a_sensitive_value(store_url: str,
                                                              tmp_path: Path) -> None:
    ids = seed(store_url)
    outputs = []
    for args in (["job", ids["completed"]], ["job", ids["completed"], "--json"],
                 ["job", ids["dead"]], ["job", ids["dead"], "--json"], ["jobs"],
                 ["jobs", "--json"]):
        done = subprocess.run([CONVEYOR, *args], cwd=tmp_path, env=bare_env(store_url),
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    for output in outputs:
        assert SECRET not in output
    shown = outputs[0]
    assert '"password":"[redacted]"' in shown and '"token_for":"[redacted]"' in shown
    assert "refused '[redacted]' for ann" in shown
    assert "bad password [redacted]" in outputs[2] and "trying [redacted]" in outputs[2]
