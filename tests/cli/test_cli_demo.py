"""`conveyor demo`: the first impression, run for a few seconds in a subprocess."""

from __future__ import annotations

import re
import subprocess

from .conftest import Cli, conveyor_command


def run_demo(cli: Cli, seconds: int) -> subprocess.CompletedProcess[str]:
    result = cli("demo", "--seconds", str(seconds), "--db", "demo.db", timeout=40)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


def test_demo_runs_jobs_stops_by_itself_and_leaves_them_for_the_cli(cli: Cli) -> None:
    demo_db = {**cli.env, "CONVEYOR_URL": f"sqlite:///{cli.cwd / 'demo.db'}"}
    cli.env, saved = demo_db, cli.env
    old = cli.json("enqueue", "left.over.from.an.earlier.demo")["id"]
    cli.env = saved  # the demo takes --db, whatever CONVEYOR_URL says
    out = run_demo(cli, 4).stdout
    assert "Conveyor demo" in out and "queues" in out and "recent failures" in out
    summary = re.search(r"(\d+) jobs? enqueued in \d+s.*?now (.*?)\.\n", out, re.S)
    assert summary is not None, out
    completed = re.search(r"(\d+)\s+completed", summary[2])
    assert completed is not None and int(completed[1]) > 0, summary[0]
    assert "--app conveyor.demo:create_app" in out  # how to look around afterwards

    cli.env = demo_db
    jobs = cli.json("jobs", "--app", "conveyor.demo:create_app", "--limit", "1000")
    assert len(jobs) == int(summary[1])  # this run's jobs only: it started from a clean file
    assert old not in {j["id"] for j in jobs}
    assert "completed" in {j["state"] for j in jobs}
    assert len({j["task"] for j in jobs}) >= 3
    assert {j["tenant"] for j in jobs} <= {"acme", "globex", "initech"}
    charges = [j for j in jobs if j["task"] == "charge_card"]
    assert all(j["payload"]["card_token"] == "[redacted]" for j in charges)


def test_demo_never_deletes_a_file_that_is_not_its_store(cli: Cli) -> None:
    precious = cli.cwd / "notes.db"
    precious.write_text("my notes")
    result = cli("demo", "--seconds", "1", "--db", "notes.db")
    assert result.returncode == 1
    assert "is not a Conveyor store" in result.stderr
    assert precious.read_text() == "my notes"


def test_demo_rejects_a_non_positive_duration(cli: Cli) -> None:
    assert cli("demo", "--seconds", "0").returncode == 2


def test_demo_serves_the_dashboard_while_it_runs(cli: Cli) -> None:
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    demo = subprocess.Popen([*conveyor_command(), "demo", "--seconds", "6", "--db", "d.db",
                             "--port", str(port)], cwd=cli.cwd, env=cli.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        page, deadline = "", time.monotonic() + 20
        while time.monotonic() < deadline and "Overview" not in page:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as reply:
                    page = reply.read().decode()
            except OSError:
                time.sleep(0.2)
        assert "Overview" in page, "the dashboard did not answer while the demo ran"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/stats") as reply:
            assert b"by_state" in reply.read()
        out, err = demo.communicate(timeout=40)
    finally:
        demo.kill()
    assert demo.returncode == 0, err
    assert f"dashboard and API: http://127.0.0.1:{port}/" in out
