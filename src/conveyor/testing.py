"""Helpers for your application's own tests.

    from conveyor.testing import temporary_store, run_until_idle, assert_enqueued

    def test_signup_sends_welcome(app):
        with temporary_store(app):
            signup("u1")                                   # your code enqueues
            assert_enqueued(app, "send_welcome", payload={"user_id": "u1"})
            run_until_idle(app)                            # runs every job to its end
            assert app.list_jobs()[0].state == "completed"
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .app import Conveyor
from .job import Job, JobFilter

__all__ = ["assert_enqueued", "enqueued", "run_until_idle", "run_until_idle_async",
           "temporary_store"]


@contextlib.contextmanager
def temporary_store(app: Conveyor) -> Iterator[Path]:
    """Point `app` at a fresh SQLite file for the duration of the block; yields its path."""
    saved = (app.settings, app._store, app._opened, app.auto_migrate)
    with tempfile.TemporaryDirectory(prefix="conveyor-test-") as folder:
        path = Path(folder) / "jobs.db"
        app.settings = app.settings.with_(url=f"sqlite:///{path}")
        app._store, app._opened, app.auto_migrate = None, False, True
        try:
            yield path
        finally:
            app.close()
            app.settings, app._store, app._opened, app.auto_migrate = saved


async def run_until_idle_async(app: Conveyor, *, queues: list[str] | None = None,
                               max_jobs: int = 100_000) -> int:
    """Run every job that is due (and every job those enqueue) to its end; the count."""
    worker = app.worker(queues=queues, concurrency=10, worker_id="conveyor-testing")
    await worker.declare_limits()
    total = 0
    while total < max_jobs:
        await worker.maintenance.run_once()
        ran = await worker.run_once()
        total += ran
        if not ran:
            break
    worker.close()
    return total


def run_until_idle(app: Conveyor, *, queues: list[str] | None = None,
                   max_jobs: int = 100_000) -> int:
    """Sync form of run_until_idle_async (for tests without an event loop)."""
    return asyncio.run(run_until_idle_async(app, queues=queues, max_jobs=max_jobs))


def enqueued(app: Conveyor, task: str | None = None, **fields: Any) -> list[Job]:
    """Jobs in the store (oldest first), of `task` and matching `fields` exactly."""
    jobs = list(reversed(app.list_jobs(JobFilter(task=task), limit=10_000)))
    return [j for j in jobs if all(getattr(j, k) == v for k, v in fields.items())]


def assert_enqueued(app: Conveyor, task: str, *, payload: dict[str, Any] | None = None,
                    count: int | None = None, **fields: Any) -> list[Job]:
    """Assert jobs of `task` were enqueued whose payload contains `payload` (a subset match)
    and whose envelope matches `fields`; returns them."""
    candidates = enqueued(app, task)
    matches = [j for j in candidates if _payload_matches(j.payload, payload)
               and all(getattr(j, k) == v for k, v in fields.items())]
    if (count is None and not matches) or (count is not None and len(matches) != count):
        want = f"{count} job(s)" if count is not None else "a job"
        seen = "\n".join(f"  - {j.task} {j.payload!r} state={j.state}" for j in candidates[:20])
        raise AssertionError(f"expected {want} of task {task!r} with payload {payload!r} "
                             f"{fields or ''}; found {len(matches)}. Jobs of that task:\n"
                             f"{seen or '  (none)'}")
    return matches


def _payload_matches(actual: Any, expected: dict[str, Any] | None) -> bool:
    if expected is None:
        return True
    if not isinstance(actual, dict):
        return False
    return all(k in actual and actual[k] == v for k, v in expected.items())
