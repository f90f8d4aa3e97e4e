"""`conveyor enqueue`: what it stores, what it refuses, and its exit status."""

from __future__ import annotations

from .conftest import Cli


def test_enqueue_stores_the_job_with_its_options(cli: Cli) -> None:
    out = cli.json("enqueue", "send_welcome", "--payload", '{"user_id": "u1"}',
                   "--queue", "emails", "--tenant", "acme", "--idempotency-key", "welcome:u1",
                   "--correlation-id", "req-42", "--priority", "5", "--delay", "60")
    assert out["duplicate"] is False
    assert out["state"] == "scheduled"  # a delay puts it in the future
    job = cli.json("job", out["id"])
    assert job["payload"] == {"user_id": "u1"}
    assert (job["queue"], job["tenant"], job["priority"]) == ("emails", "acme", 5)
    assert (job["idempotency_key"], job["correlation_id"]) == ("welcome:u1", "req-42")
    assert job["run_at"] - job["created_at"] >= 59


def test_enqueue_prints_the_id_and_state(cli: Cli) -> None:
    out = cli.ok("enqueue", "send_welcome", "--payload", "{}")
    job_id, state = out.split()
    assert state == "queued"
    assert cli.json("job", job_id)["state"] == "queued"


def test_the_same_idempotency_key_returns_the_existing_job(cli: Cli) -> None:
    first = cli.json("enqueue", "send_welcome", "--idempotency-key", "k1")
    second = cli.json("enqueue", "send_welcome", "--idempotency-key", "k1")
    assert second == {"id": first["id"], "state": "queued", "duplicate": True, "dropped": False}
    assert len(cli.json("jobs")) == 1


def test_malformed_payload_is_an_input_error_and_stores_nothing(cli: Cli) -> None:
    result = cli("enqueue", "send_welcome", "--payload", '{"user_id": ')
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--payload is not valid JSON" in lines[0]
    assert cli.json("jobs") == []


def test_unknown_task_with_app_is_an_input_error(cli: Cli) -> None:
    result = cli("enqueue", "send_welcom", "--app", "cliapp:make_app")
    assert result.returncode == 1
    assert "unknown task 'send_welcom'" in result.stderr
    assert "send_welcome" in result.stderr  # it names the known ones
    assert cli.json("jobs") == []


def test_without_app_any_task_name_is_accepted(cli: Cli) -> None:
    """Producers need no task code: the worker's app decides what runs."""
    assert cli.json("enqueue", "some.other.service.task")["state"] == "queued"


def test_payload_is_checked_against_the_schema_with_app(cli: Cli) -> None:
    result = cli("enqueue", "signup", "--app", "cliapp:app", "--payload", '{"user_id": "u1"}')
    assert result.returncode == 1
    assert "password_hint" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert cli.json("jobs") == []


def test_sensitive_fields_are_redacted_when_shown(cli: Cli) -> None:
    app = ("--app", "cliapp:app")
    out = cli.json("enqueue", "signup", *app, "--payload",
                   '{"user_id": "u1", "password_hint": "my cat"}')
    shown = cli.json("job", out["id"], *app)
    assert shown["payload"] == {"user_id": "u1", "password_hint": "[redacted]"}
    assert "my cat" not in cli.ok("job", out["id"], *app)


def test_bad_values_are_input_errors(cli: Cli) -> None:
    negative = cli("enqueue", "send_welcome", "--delay", "-5")
    assert negative.returncode == 1 and "delay" in negative.stderr
    assert cli.json("jobs") == []


def test_usage_errors_exit_2(cli: Cli) -> None:
    assert cli("enqueue").returncode == 2                                   # no task
    assert cli("enqueue", "send_welcome", "--delay", "soon").returncode == 2
    assert cli("no-such-command").returncode == 2
    assert cli("jobs", "--app", "no_such_module:app").returncode == 2
    not_app = cli("jobs", "--app", "cliapp:not_an_app")
    assert not_app.returncode == 2 and "not a Conveyor app" in not_app.stderr


def test_a_queue_name_outside_the_rule_is_an_input_error(cli: Cli) -> None:
    for name in ("[/]", "with space", "émails"):
        result = cli("enqueue", "send_welcome", "--queue", name)
        assert result.returncode == 1, name
        assert f"queue name {name!r} is not allowed" in result.stderr
        assert "ASCII letters, digits and . - _ : /" in result.stderr
    assert cli.json("enqueue", "send_welcome", "--queue", "eu-west/slow:v2")["state"] == "queued"
    assert [job["queue"] for job in cli.json("jobs")] == ["eu-west/slow:v2"]
