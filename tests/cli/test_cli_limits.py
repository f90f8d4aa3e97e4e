"""`conveyor queues`, `conveyor queue set` and `conveyor task set`: limits from the command
line, stored for every worker."""

from __future__ import annotations

import re
import signal
import subprocess
import time

import pytest

from .conftest import Cli, conveyor_command


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


def test_task_set_changes_each_keys_limit_and_queues_shows_it(cli: Cli) -> None:
    said = cli.ok("task", "set", "sync", "--key-concurrency", "1", "--key-rate", "10/min",
                  "--key-strategy", "drop")
    assert "key sync: per key: concurrency 1, rate 10/min, strategy drop (set by operator)" \
        in " ".join(said.split())
    [limit] = cli.json("queues")["limits"]
    assert (limit["kind"], limit["name"], limit["concurrency"], limit["rate"],
            limit["strategy"], limit["keys_at_limit"]) == ("key", "sync", 1, "10/min", "drop", 0)
    cli.ok("task", "set", "sync", "--concurrency", "5")
    table = cli.ok("queues", env_columns=200)
    [row] = [line for line in table.splitlines() if line.strip("│ ").startswith("sync ")]
    cells = [cell.strip() for cell in row.strip().strip("│").split("│")]
    assert cells[:6] == ["sync", "0 / 5", "", "1", "10/min", "drop"]  # each in its column
    for header in ("per key: concurrency", "per key: rate", "key strategy"):
        assert header in table
    assert cli("task", "set", "sync", "--key-strategy", "newest").returncode == 1
    cli.ok("task", "set", "sync", "--concurrency", "none")
    both = cli.json("task", "set", "sync", "--reset")
    assert both == [None, None]  # nothing declared in code for it: the task's and its keys'


def test_enqueue_says_when_a_keys_drop_strategy_left_the_job_out(cli: Cli) -> None:
    cli.ok("task", "set", "sync_customer", "--key-concurrency", "1", "--key-strategy", "drop")
    payload, knows = '{"customer": "acme"}', ("--app", "cliapp:make_app")  # computes the key
    kept = cli.json("enqueue", "sync_customer", "--payload", payload, *knows)
    assert (kept["state"], kept["dropped"], kept["duplicate"]) == ("queued", False, False)
    dropped = cli.json("enqueue", "sync_customer", "--payload", payload, *knows)
    assert (dropped["state"], dropped["dropped"]) == ("cancelled", True)
    said = " ".join(cli.ok("enqueue", "sync_customer", "--payload", payload, *knows).split())
    assert "dropped: its key is at its limit; nothing was stored" in said
    other = cli.json("enqueue", "sync_customer", "--payload", '{"customer": "globex"}', *knows)
    assert other["dropped"] is False


def test_task_set_help_documents_key_limits_with_an_example(cli: Cli) -> None:
    said = " ".join(cli.ok("task", "set", "--help").split())
    for words in ("--key-concurrency", "--key-rate", "--key-strategy", "debounce",
                  "conveyor task set sync --key-concurrency 1 --key-rate 10/min"):
        assert words in said, words


def test_bad_limits_are_one_line_errors_and_store_nothing(cli: Cli) -> None:
    for args in (["--concurrency", "many"], ["--rate", "10"], ["--rate", "5/fortnight"], []):
        result = cli("queue", "set", "ai", *args)
        assert result.returncode == 1, args
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert cli("queue", "set", "bad name!", "--concurrency", "1").returncode == 1
    assert cli.json("queues")["limits"] == []


def _run_worker(cli: Cli, *args: str, env: dict[str, str] | None = None
                ) -> subprocess.Popen[str]:
    return subprocess.Popen([*conveyor_command(), "worker", "--app", "cliapp:make_app", *args],
                            cwd=cli.cwd, env={**cli.env, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _workers_seen(cli: Cli, count: int) -> list[tuple[tuple[str, ...], int]]:
    app = cli.app()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = sorted((w.queues, w.concurrency) for w in app.workers())
            if len(found) >= count:
                return found
            time.sleep(0.1)
        return sorted((w.queues, w.concurrency) for w in app.workers())
    finally:
        app.close()


@pytest.mark.parametrize("how", ["option", "environment"])
def test_queue_slots_give_each_queue_its_own_worker_in_one_process(cli: Cli, how: str) -> None:
    app = cli.app()
    welcome = app.enqueue("send_welcome", {"user_id": "u1"}).id
    failing = app.enqueue("always_fails", {}).id
    app.close()
    spec = "emails:1,hooks:2"
    worker = (_run_worker(cli, "--queues", spec) if how == "option"
              else _run_worker(cli, env={"CONVEYOR_QUEUES": spec}))
    try:
        assert _workers_seen(cli, 2) == [(("emails",), 1), (("hooks",), 2)]
        app = cli.app()
        assert app.wait(welcome, timeout=20).state == "completed"
        assert app.wait(failing, timeout=20).state == "dead"
        pids = {w.pid for w in app.workers()}
        app.close()
        assert pids == {worker.pid}  # one process
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=20)
    assert worker.returncode == 0, stderr


def test_bad_queue_slots_are_one_line_errors(cli: Cli) -> None:
    for spec in ("emails:0", "emails,emails", "bad name:2"):
        result = cli("worker", "--app", "cliapp:make_app", "--queues", spec)
        assert result.returncode == 1, spec
        assert result.stderr.startswith("error: queues") and result.stderr.count("\n") == 1


def test_worker_help_says_what_queues_defaults_to(cli: Cli) -> None:
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", cli.ok("worker", "--help")).split())
    assert "default: all" not in text
    assert "CONVEYOR_QUEUES" in text and "the queues of the app's tasks" in text
    assert "critical:10,emails:5,ai:2" in text
    assert "Priority between queues is by reserved slots, not by order" in text
    assert "no queue borrows another's idle slots" in text
    assert "jobs start by job priority (higher first), then oldest first" in text


def test_conveyor_job_says_which_limit_holds_a_job_back(cli: Cli) -> None:
    app = cli.app()
    job_id = app.enqueue("send_welcome", {"user_id": "u1"}).id
    app.close()
    cli.ok("queue", "set", "emails", "--rate", "0/min")
    assert cli.json("job", job_id)["held_back_by"] == [
        "queue 'emails' rate 0/min (0 started in the window)"]
    assert "held back by queue 'emails' rate 0/min" in " ".join(cli.ok("job", job_id).split())
    cli.ok("queue", "set", "emails", "--rate", "none")
    assert cli.json("job", job_id)["held_back_by"] == []
