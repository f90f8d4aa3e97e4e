"""`conveyor jobs`, `job` and `stats`: reading the store, as tables and as JSON."""

from __future__ import annotations

from typing import Any

from conveyor import FakeClock, JobContext, Retry
from conveyor.testing import run_until_idle

from .conftest import Cli, Seeded


def test_jobs_json_lists_every_job_newest_first(cli: Cli, seeded: Seeded) -> None:
    jobs = cli.json("jobs")
    assert [j["id"] for j in jobs] == [seeded.queued, seeded.dead, seeded.completed]
    assert {j["state"] for j in jobs} == {"queued", "dead", "completed"}


def test_jobs_filters_by_state_queue_task_and_limit(cli: Cli, seeded: Seeded) -> None:
    assert [j["id"] for j in cli.json("jobs", "--state", "dead")] == [seeded.dead]
    both = cli.json("jobs", "--state", "completed,queued")
    assert {j["id"] for j in both} == {seeded.completed, seeded.queued}
    welcome = cli.json("jobs", "--task", "send_welcome", "--queue", "emails", "--limit", "1")
    assert [j["id"] for j in welcome] == [seeded.queued]
    assert cli.json("jobs", "--state", "cancelled") == []


def test_jobs_rejects_an_unknown_state_as_a_usage_error(cli: Cli) -> None:
    result = cli("jobs", "--state", "finished")
    assert result.returncode == 2
    assert "--state must be among" in result.stderr


def test_jobs_table_shows_whole_ids(cli: Cli, seeded: Seeded) -> None:
    out = cli.ok("jobs")
    assert "3 jobs" in out
    for job_id in (seeded.completed, seeded.dead, seeded.queued):
        line = next(line for line in out.splitlines() if job_id in line)
        assert "…" not in line


def test_job_json_is_the_envelope(cli: Cli, seeded: Seeded) -> None:
    job = cli.json("job", seeded.dead)
    assert job["id"] == seeded.dead
    assert (job["task"], job["state"], job["attempt"], job["max_attempts"]) == \
        ("always_fails", "dead", 1, 1)
    assert job["dead_reason"] == "failed"
    [error] = job["errors"]
    assert (error["type"], error["message"]) == ("RuntimeError", "the endpoint answered 502")
    done = cli.json("job", seeded.completed)
    assert done["result"] == {"sent_to": "u1"} and done["finished_at"] >= done["created_at"]


def test_job_table_shows_state_and_errors(cli: Cli, seeded: Seeded) -> None:
    out = cli.ok("job", seeded.dead)
    assert seeded.dead in out and "dead (failed)" in out
    assert "RuntimeError: the endpoint answered 502" in out


def test_unknown_job_id_is_an_input_error(cli: Cli, seeded: Seeded) -> None:
    for args in (("job", "no-such-id"), ("job", "no-such-id", "--json")):
        result = cli(*args)
        assert result.returncode == 1
        assert result.stdout == ""
        assert result.stderr.strip() == "error: no job with id 'no-such-id'"


def test_stats_json_counts_by_state_queue_and_task(cli: Cli, seeded: Seeded) -> None:
    stats = cli.json("stats")
    assert stats["by_state"] == {"scheduled": 0, "queued": 1, "running": 0, "completed": 1,
                                 "dead": 1, "cancelled": 0}
    assert stats["by_queue"]["hooks"] == {"dead": 1}
    assert stats["by_task"]["send_welcome"] == {"completed": 1, "queued": 1}
    assert stats["completed_last_minute"] == 1
    assert stats["failure_rate"] == 0.5


def test_stats_table(cli: Cli, seeded: Seeded) -> None:
    out = cli.ok("stats")
    assert "jobs by queue" in out and "hooks" in out and "emails" in out
    assert "failure rate 50.0%" in out


def test_a_bad_setting_or_store_is_one_line_and_exit_1(cli: Cli) -> None:
    cli.env["CONVEYOR_LEASE"] = "soon"
    lease = cli("jobs")
    assert lease.returncode == 1
    assert lease.stderr.strip().splitlines() == [
        "error: setting lease='soon' is not a valid float"]
    del cli.env["CONVEYOR_LEASE"]
    (cli.cwd / "notes.txt").write_text("not a database")
    cli.env["CONVEYOR_URL"] = f"sqlite:///{cli.cwd / 'notes.txt'}"
    broken = cli("stats")
    assert broken.returncode == 1
    assert len(broken.stderr.strip().splitlines()) == 1 and "not a database" in broken.stderr


LONG_TASK = "reports.generate_quarterly_revenue_summary"


def test_jobs_table_fits_80_and_120_columns_without_breaking_names(cli: Cli,
                                                                   seeded: Seeded) -> None:
    long_id = cli.json("enqueue", LONG_TASK)["id"]  # no app: any task name
    for width in (80, 120, 160):
        cli.env["COLUMNS"] = str(width)
        out = cli.ok("jobs")
        assert max(len(line) for line in out.splitlines()) <= width, out
        assert "4 jobs" in out
        lines = out.splitlines()
        for job_id, task in ((long_id, LONG_TASK), (seeded.dead, "always_fails")):
            at = next(n for n, line in enumerate(lines) if job_id in line)
            # whole, on the job's line or (a long name at 80 columns) on the line under it
            assert task in lines[at] or task in lines[at + 1], (width, out)
        dead = next(line for line in out.splitlines() if seeded.dead in line)
        assert "RuntimeError" in dead, out  # the last error of a dead job
        assert ("hooks" in out) is (width >= 160)  # the queue only when it fits


def test_jobs_table_says_how_many_of_how_many(cli: Cli, seeded: Seeded) -> None:
    out = cli.ok("jobs", "--limit", "2")
    assert "2 of 3 jobs" in out
    assert "1 of 2 jobs" in cli.ok("jobs", "--limit", "1", "--task", "send_welcome")
    assert "1 job" in cli.ok("jobs", "--state", "dead")


def test_job_prints_each_distinct_traceback_once(cli: Cli) -> None:
    app = cli.app(FakeClock())

    @app.task(name="flaky", retry=Retry(attempts=3, backoff="fixed", base=0, jitter=0))
    def flaky(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise RuntimeError(f"upstream answered 503 on attempt {ctx.attempt}")

    try:
        job_id = app.enqueue("flaky", {}).id
        run_until_idle(app)
        assert app.get(job_id).state == "dead"
    finally:
        app.close()
    out = cli.ok("job", job_id)
    for attempt in (1, 2, 3):
        assert f"RuntimeError: upstream answered 503 on attempt {attempt}" in out
    assert out.count("Traceback (most recent call last)") == 1, out
    assert out.count("(same traceback as error 1 above)") == 2, out


def test_jobs_waiting_to_retry_show_as_retrying_with_a_filter(cli: Cli, seeded: Seeded) -> None:
    app = cli.app()
    try:
        waiting = app.enqueue("call_partner", {}).id
        run_until_idle(app)
    finally:
        app.close()
    assert [j["id"] for j in cli.json("jobs", "--state", "retrying")] == [waiting]
    both = cli.json("jobs", "--state", "dead,retrying")
    assert {j["id"] for j in both} == {waiting, seeded.dead}
    cli.env["COLUMNS"] = "120"
    table = cli.ok("jobs", "--state", "retrying")
    assert "retrying" in table and "scheduled" not in table
    shown = cli.ok("job", waiting)
    assert "retrying (next try" in shown


def test_job_and_cancel_take_any_unique_start_or_end_of_an_id(cli: Cli, seeded: Seeded) -> None:
    assert cli.json("job", seeded.dead[-8:])["id"] == seeded.dead
    assert cli.json("job", "…" + seeded.queued[-10:])["id"] == seeded.queued
    shared = cli("job", seeded.dead[:4])  # the time prefix every job of this test shares
    assert shared.returncode == 1 and "give more of the id" in shared.stderr
    missing = cli("job", "ffffffff")
    assert missing.returncode == 1 and "no job with id" in missing.stderr
    assert "cancelled" in cli.ok("cancel", seeded.queued[-8:])
