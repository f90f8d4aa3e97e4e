"""`conveyor jobs` searches: --task-contains / --queue-contains, --payload field:value,
--error, and a bounded --scan that says how far it read and where to go on (--after). A
Sensitive field is refused in one line; an unreadable search is a usage error (2)."""

from __future__ import annotations

from .conftest import Cli, Seeded


def test_name_fragments(cli: Cli, seeded: Seeded) -> None:
    welcome = cli.json("jobs", "--task-contains", "WELC")
    assert [j["id"] for j in welcome] == [seeded.queued, seeded.completed]
    hooks = cli.json("jobs", "--queue-contains", "ook")
    assert [j["id"] for j in hooks] == [seeded.dead]
    assert cli.json("jobs", "--task-contains", "nothing-like-it") == []
    table = cli.ok("jobs", "--task-contains", "welc", "--limit", "1")
    assert "1 of 2 jobs" in table


def test_payload_and_error_search(cli: Cli, seeded: Seeded) -> None:
    assert [j["id"] for j in cli.json("jobs", "--payload", "user_id:u2")] == [seeded.queued]
    assert [j["id"] for j in cli.json("jobs", "--payload", "url:https://hooks.example.com")
            ] == [seeded.dead]
    assert cli.json("jobs", "--payload", "user_id:u9") == []
    failed = cli.json("jobs", "--error", "ANSWERED 502")
    assert [j["id"] for j in failed] == [seeded.dead]
    table = cli.ok("jobs", "--error", "502")
    assert "1 job found" in table and "searched all 1 candidate jobs" in table


def test_a_bounded_scan_says_where_to_go_on(cli: Cli, seeded: Seeded) -> None:
    first = cli("jobs", "--payload", "user_id:u1", "--scan", "1", "--json")
    assert first.returncode == 0 and first.stdout.strip() == "[]"
    assert f"go on with --after {seeded.queued}" in " ".join(first.stderr.split())
    table = cli.ok("jobs", "--payload", "user_id:u1", "--scan", "1")
    assert "newest 1 candidate jobs" in " ".join(table.split())
    rest = cli.json("jobs", "--payload", "user_id:u1", "--after", seeded.queued)
    assert [j["id"] for j in rest] == [seeded.completed]


def test_sensitive_and_unreadable_searches_are_refused(cli: Cli, seeded: Seeded) -> None:
    app = cli.app()
    try:
        app.enqueue("signup", {"user_id": "u3", "password_hint": "blue"})
    finally:
        app.close()
    refused = cli("jobs", "--payload", "password_hint:blue", "--app", "cliapp:make_app")
    assert refused.returncode == 1, refused.stderr
    assert "'password_hint' is marked Sensitive" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    # without the app, the paths stored with the job refuse it too
    assert cli("jobs", "--payload", "password_hint:blue").returncode == 1
    usage = cli("jobs", "--payload", "no-colon")
    assert usage.returncode == 2 and "--payload: payload search must be field:value" in \
        " ".join(usage.stderr.split())
