"""`conveyor retry`, `cancel` and `worker`: steering jobs from the command line."""

from __future__ import annotations

import signal
import subprocess

from conveyor.testing import run_until_idle

from .conftest import Cli, Seeded, conveyor_command


def test_retry_runs_a_dead_job_again(cli: Cli, seeded: Seeded) -> None:
    out = cli.ok("retry", seeded.dead)
    assert out.split() == [seeded.dead, "queued"]
    job = cli.json("job", seeded.dead)
    assert job["state"] == "queued"
    assert len(job["errors"]) == 1  # the history stays


def test_retry_dead_requeues_every_dead_job(cli: Cli, seeded: Seeded) -> None:
    app = cli.app()
    more = app.enqueue("always_fails", {}).id
    run_until_idle(app, queues=["hooks"])
    app.close()
    assert "requeued 0 dead jobs" in cli.ok("retry", "--dead", "--queue", "emails")
    assert "requeued 2 dead jobs" in cli.ok("retry", "--dead")
    assert {j["id"] for j in cli.json("jobs", "--state", "queued")} == \
        {seeded.queued, seeded.dead, more}
    assert cli.json("jobs", "--state", "dead") == []


def test_retry_errors(cli: Cli, seeded: Seeded) -> None:
    completed = cli("retry", seeded.completed)
    assert completed.returncode == 1
    assert f"cannot retry job {seeded.completed}: it is" in completed.stderr
    assert cli("retry", "no-such-id").returncode == 1
    assert cli("retry").returncode == 2                              # neither an id nor --dead
    assert cli("retry", seeded.dead, "--dead").returncode == 2       # both


def test_cancel_a_waiting_job(cli: Cli, seeded: Seeded) -> None:
    assert cli.ok("cancel", seeded.queued).split() == [seeded.queued, "cancelled"]
    assert cli.json("job", seeded.queued)["state"] == "cancelled"


def test_cancel_errors(cli: Cli, seeded: Seeded) -> None:
    finished = cli("cancel", seeded.completed)
    assert finished.returncode == 1
    assert len(finished.stderr.strip().splitlines()) == 1
    assert cli.json("job", seeded.completed)["state"] == "completed"
    missing = cli("cancel", "no-such-id")
    assert missing.returncode == 1 and "no job with id" in missing.stderr


def test_worker_runs_enqueued_jobs_and_stops_on_sigterm(cli: Cli) -> None:
    app_option = ("--app", "cliapp:make_app")
    job_id = cli.json("enqueue", "send_welcome", *app_option, "--payload",
                      '{"user_id": "u9"}')["id"]
    worker = subprocess.Popen([*conveyor_command(), "worker", *app_option, "--concurrency", "2"],
                              cwd=cli.cwd, env=cli.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        app = cli.app()
        job = app.wait(job_id, timeout=20)
        app.close()
        assert (job.state, job.result) == ("completed", {"sent_to": "u9"})
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=20)
    assert worker.returncode == 0, stderr
