"""`conveyor queues`, `conveyor queue set` and `conveyor task set`: limits from the command
line, stored for every worker."""

from __future__ import annotations

from .conftest import Cli


def test_queue_set_stores_a_limit_and_queues_shows_it(cli: Cli) -> None:
    said = cli.ok("queue", "set", "ai", "--concurrency", "3", "--rate", "20/min")
    assert "queue ai: concurrency 3, rate 20/min (set by operator)" in said
    cli.ok("queue", "set", "ai", "--concurrency", "4")  # the rate stays
    table = cli.ok("queues")
    assert "ai" in table and "0 / 4" in table and "0 / 20/min" in table
    shown = cli.json("queues")
    [limit] = shown["limits"]
    assert (limit["name"], limit["concurrency"], limit["rate"]) == ("ai", 4, "20/min")
    assert (limit["running"], limit["started_in_window"], limit["source"]) == (0, 0, "operator")


def test_task_set_and_removing_every_cap_removes_the_limit(cli: Cli) -> None:
    cli.ok("task", "set", "send_welcome", "--rate", "100/10s")
    assert cli.json("queues")["limits"][0]["rate"] == "100/10s"
    assert "no limit" in cli.ok("task", "set", "send_welcome", "--rate", "none")
    assert cli.json("queues")["limits"] == []


def test_bad_limits_are_one_line_errors_and_store_nothing(cli: Cli) -> None:
    for args in (["--concurrency", "many"], ["--rate", "10"], ["--rate", "5/fortnight"], []):
        result = cli("queue", "set", "ai", *args)
        assert result.returncode == 1, args
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert cli("queue", "set", "bad name!", "--concurrency", "1").returncode == 1
    assert cli.json("queues")["limits"] == []
