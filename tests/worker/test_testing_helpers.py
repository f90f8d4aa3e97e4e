"""conveyor.testing: temporary_store, run_until_idle, assert_enqueued (sync tests, as users
write them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor, JobContext, JobState, Settings
from conveyor.testing import (
    assert_enqueued,
    enqueued,
    run_until_idle,
    run_until_idle_async,
    temporary_store,
)


def _app_with_tasks(url: str) -> tuple[Conveyor, list[str]]:
    app = Conveyor(url, settings=Settings())
    sent: list[str] = []

    @app.task
    def send_welcome(ctx: JobContext, payload: dict[str, Any]) -> None:
        sent.append(payload["user_id"])
        if payload.get("follow_up"):
            ctx.enqueue("send_welcome", {"user_id": payload["user_id"] + "-again"})

    return app, sent


def test_temporary_store_isolates_and_run_until_idle_drains(tmp_path: Path) -> None:
    main = tmp_path / "main.db"
    app, sent = _app_with_tasks(f"sqlite:///{main}")
    try:
        with temporary_store(app) as path:
            assert path != main
            app.enqueue("send_welcome", {"user_id": "u1", "follow_up": True})
            assert_enqueued(app, "send_welcome", payload={"user_id": "u1"})
            assert run_until_idle(app) == 2   # the job and the one it enqueued
            assert sent == ["u1", "u1-again"]
            assert {j.state for j in app.list_jobs()} == {JobState.COMPLETED}
        assert not path.exists()
        assert app.list_jobs() == []   # the app's own store never saw those jobs
    finally:
        app.close()


def test_temporary_store_works_for_an_app_configured_for_postgres() -> None:
    # a user's production app points at PostgreSQL; its tests swap in a temporary store
    app = Conveyor("postgresql://nobody@127.0.0.1:1/prod", settings=Settings())

    @app.task
    def ping(ctx: JobContext, payload: dict[str, Any]) -> str:
        return "pong"

    with temporary_store(app):
        job = ping.enqueue({})
        assert run_until_idle(app) == 1
        assert app.get(job.id).result == "pong"


def test_assert_enqueued_matches_payload_subsets_and_fields(tmp_path: Path) -> None:
    app, _ = _app_with_tasks(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        app.enqueue("send_welcome", {"user_id": "u1", "lang": "en"}, tenant="org-1")
        app.enqueue("send_welcome", {"user_id": "u2"})
        [job] = assert_enqueued(app, "send_welcome", payload={"user_id": "u1"}, tenant="org-1")
        assert job.payload == {"user_id": "u1", "lang": "en"}
        assert len(assert_enqueued(app, "send_welcome", count=2)) == 2
        assert [j.payload["user_id"] for j in enqueued(app, "send_welcome")] == ["u1", "u2"]
    finally:
        app.close()


def test_assert_enqueued_fails_with_a_helpful_message(tmp_path: Path) -> None:
    app, _ = _app_with_tasks(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        app.enqueue("send_welcome", {"user_id": "u2"})
        with pytest.raises(AssertionError) as caught:
            assert_enqueued(app, "send_welcome", payload={"user_id": "u1"})
        text = str(caught.value)
        assert "'send_welcome'" in text
        assert "{'user_id': 'u1'}" in text      # what was expected
        assert "{'user_id': 'u2'}" in text      # what is there instead
        assert "found 0" in text

        with pytest.raises(AssertionError, match=r"expected 3 job\(s\)"):
            assert_enqueued(app, "send_welcome", count=3)
    finally:
        app.close()


def test_assert_enqueued_with_no_jobs_at_all(tmp_path: Path) -> None:
    app, _ = _app_with_tasks(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        with pytest.raises(AssertionError, match=r"\(none\)"):
            assert_enqueued(app, "send_welcome")
    finally:
        app.close()


@pytest.mark.anyio
async def test_run_until_idle_async(tmp_path: Path) -> None:
    app, sent = _app_with_tasks(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        for n in range(12):
            app.enqueue("send_welcome", {"user_id": f"u{n}"})
        assert await run_until_idle_async(app) == 12
        assert sorted(sent) == sorted(f"u{n}" for n in range(12))
    finally:
        app.close()
