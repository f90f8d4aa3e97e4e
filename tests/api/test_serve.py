"""`conveyor serve` as a real subprocess: loopback without tokens, --with-worker, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .harness import free_port

TESTS = Path(__file__).resolve().parent.parent
CONVEYOR = str(Path(sys.executable).parent / "conveyor")


def start(tmp_path: Path, *args: str, tokens: str = "",
          environ: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    env = {**os.environ, "CONVEYOR_URL": f"sqlite:///{tmp_path / 'serve.db'}",
           "CONVEYOR_API_TOKENS": tokens, **(environ or {})}
    process = subprocess.Popen([CONVEYOR, "serve", "--app", "api.serveapp:app", "--port",
                                str(port), *args], cwd=TESTS, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            _, err = process.communicate()
            pytest.fail(f"conveyor serve did not start: {err}")
        time.sleep(0.05)


def stop(process: subprocess.Popen[str], timeout: float = 10.0) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        pytest.fail(f"conveyor serve did not stop on SIGTERM: {err}")
    return process.returncode, err


def test_serve_with_worker_runs_jobs_and_stops_with_a_stream_open(tmp_path: Path) -> None:
    process, url = start(tmp_path, "--with-worker")
    with httpx.Client(base_url=url, timeout=10) as client:
        job = client.post("/api/v1/jobs", json={"task": "echo", "payload": {"a": 1}}).json()
        deadline = time.monotonic() + 10
        while client.get(job["status_url"]).json()["state"] != "completed":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert client.get("/").status_code == 200
        with client.stream("GET", "/api/v1/events") as events:
            next(events.iter_lines())
            started = time.monotonic()
            code, err = stop(process)
    assert time.monotonic() - started < 8
    assert code == 0, err
    assert "loopback" in err  # says why it listens on 127.0.0.1 only


def test_serve_refuses_other_hosts_without_tokens(tmp_path: Path) -> None:
    env = {**os.environ, "CONVEYOR_URL": f"sqlite:///{tmp_path / 'x.db'}",
           "CONVEYOR_API_TOKENS": ""}
    done = subprocess.run([CONVEYOR, "serve", "--app", "api.serveapp:app", "--host", "0.0.0.0",
                           "--port", str(free_port())], cwd=TESTS, env=env, text=True,
                          capture_output=True, timeout=20)
    assert done.returncode == 1
    assert "CONVEYOR_API_TOKENS" in done.stderr


def test_serve_with_tokens_requires_them(tmp_path: Path) -> None:
    process, url = start(tmp_path, tokens="secret=ops:admin")
    try:
        assert httpx.get(url + "/api/v1/stats").status_code == 401
        ok = httpx.get(url + "/api/v1/stats", headers={"Authorization": "Bearer secret"})
        assert ok.status_code == 200
        assert httpx.get(url + "/", follow_redirects=False).headers["location"] == "/login"
    finally:
        stop(process)


@pytest.mark.parametrize("how", ["--behind-tls", "CONVEYOR_BEHIND_TLS=1"])
def test_serve_behind_tls_sets_secure_cookies(tmp_path: Path, how: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    args = [how] if how.startswith("--") else []
    if not args:
        monkeypatch.setenv(*how.split("="))
    process, url = start(tmp_path, *args, tokens="secret=ops:admin")
    try:
        signed = httpx.post(url + "/login", data={"token": "secret"})
        assert signed.status_code == 303
        assert "Secure" in signed.headers["set-cookie"]
    finally:
        stop(process)
    plain, url = start(tmp_path, tokens="secret=ops:admin", environ={"CONVEYOR_BEHIND_TLS": ""})
    try:
        assert "Secure" not in httpx.post(url + "/login", data={"token": "secret"}).headers[
            "set-cookie"]
    finally:
        stop(plain)


def test_embedded_server_leaves_signals_alone(tmp_path: Path) -> None:
    import asyncio

    from conveyor import Conveyor
    from conveyor.web.server import build_server

    from .harness import close_app

    app = Conveyor(f"sqlite:///{tmp_path / 'embedded.db'}")

    async def main() -> int:
        before = signal.getsignal(signal.SIGTERM)
        server = build_server(app, "127.0.0.1", 0, tokens="", log_level="error",
                              install_signals=False)
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        assert signal.getsignal(signal.SIGTERM) is before
        async with httpx.AsyncClient(base_url=server.url) as client:
            status = (await client.get("/healthz")).status_code
        server.should_exit = True
        await task
        return status

    try:
        assert asyncio.run(main()) == 200
    finally:
        close_app(app)
