"""`conveyor stats --by task`, `conveyor errors` (and its group actions) and `conveyor
workers`: the real command against a SQLite file a real worker ran jobs on."""

from __future__ import annotations

from conveyor.testing import run_until_idle

from .conftest import Cli, Seeded


def test_stats_by_task(cli: Cli, seeded: Seeded) -> None:
    rows = {r["task"]: r for r in cli.json("stats", "--by", "task", "--range", "1h")}
    assert rows["send_welcome"]["counts"]["completed"] == 1
    assert rows["always_fails"]["counts"]["dead"] == 1
    table = cli.ok("stats", "--by", "task", env_columns=80)
    assert "send_welcome" in table and "p95" in table
    assert max(len(line) for line in table.splitlines()) <= 80


def test_errors_lists_groups_and_retries_one(cli: Cli, seeded: Seeded) -> None:
    [group] = cli.json("errors")
    assert (group["type"], group["count"], group["tasks"]) == (
        "RuntimeError", 1, ["always_fails"])
    assert group["sample_job"] == seeded.dead and group["dead_jobs"] == 1
    table = cli.ok("errors", env_columns=80)
    assert group["fingerprint"] in table and "502" in table
    assert max(len(line) for line in table.splitlines()) <= 80
    done = cli.ok("errors", "--retry", group["fingerprint"])
    assert f"requeued 1 dead jobs of group {group['fingerprint']}" in done
    assert [j["state"] for j in cli.json("jobs", "--state", "queued,dead")
            if j["id"] == seeded.dead] == ["queued"]


def test_errors_refuses_a_bad_fingerprint_or_range(cli: Cli, seeded: Seeded) -> None:
    bad = cli("errors", "--discard", "xyz")
    assert bad.returncode == 2 and "16 hex digits" in bad.stderr
    assert cli("errors", "--range", "1y").returncode == 2
    assert cli("stats", "--by", "queue").returncode == 2


def test_workers_table(cli: Cli) -> None:
    app = cli.app()
    try:
        app.enqueue("send_welcome", {"user_id": "u1"})
        run_until_idle(app)
    finally:
        app.close()
    [row] = cli.json("workers")
    assert row["attempts"] == 1 and row["failures"] == 0 and row["peak_rss"] > 0
    table = cli.ok("workers", env_columns=80)
    assert "busy" in table and "rss" in table
    assert max(len(line) for line in table.splitlines()) <= 80
