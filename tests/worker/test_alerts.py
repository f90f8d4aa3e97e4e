"""Alerts: a real local HTTP receiver that checks the signature, a worker delivering the
alert jobs (FakeClock for the retry delays), and the documented check refusing forgeries."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from conveyor import ConfigError, Conveyor, FakeClock, JobContext, JobState, Retry, Settings
from conveyor.alerts import ALERT_QUEUE, ALERT_TASK, sign, verify

pytestmark = pytest.mark.anyio
SECRET = "s3cret-for-tests"


class Receiver:
    """A real HTTP server on 127.0.0.1: answers each POST with the next status in `plan`
    (then 200), keeping the body and whether its signature checked out."""

    def __init__(self, plan: list[int]) -> None:
        self.plan = list(plan)
        self.posts: list[tuple[int, dict[str, Any], bool]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                valid = verify(body, self.headers.get("Conveyor-Timestamp", ""),
                               self.headers.get("Conveyor-Signature", ""), SECRET)
                status = receiver.plan.pop(0) if receiver.plan else 200
                if not valid:
                    status = 401
                receiver.posts.append((status, orjson.loads(body), valid))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None: ...

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/conveyor"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver([500])  # the first post fails: delivery must retry
    yield server
    server.close()


def alerting_app(tmp_path: Path, clock: FakeClock, url: str, **settings: Any) -> Conveyor:
    return Conveyor(f"sqlite:///{tmp_path / 'alerts.db'}", clock=clock, settings=Settings(
        alert_url=url, alert_secret=SECRET, **settings))


async def test_one_signed_post_per_dead_job_retried_until_delivered(
        tmp_path: Path, clock: FakeClock, receiver: Receiver) -> None:
    app = alerting_app(tmp_path, clock, receiver.url)

    @app.task(retry=Retry(attempts=1))
    async def doomed(ctx: JobContext, payload: Any) -> None:
        raise ValueError(f"cannot handle {payload['n']}")

    @app.task
    async def fine(ctx: JobContext, payload: Any) -> None: ...

    worker = app.worker(worker_id="worker-alerts")
    assert ALERT_QUEUE in (worker.queues or ())  # served by default
    try:
        dead = [doomed.enqueue({"n": n}).id for n in range(3)]
        fine.enqueue()
        await worker.run_until_idle()
        for _ in range(10):  # the failed delivery waits for its retry
            clock.advance(60)
            await worker.run_until_idle()
    finally:
        worker.close()
    statuses = [status for status, _, _ in receiver.posts]
    assert statuses == [500, 200, 200, 200]
    assert all(valid for _, _, valid in receiver.posts)
    delivered = [body for status, body, _ in receiver.posts if status == 200]
    assert sorted(b["job"]["id"] for b in delivered) == sorted(dead)
    first = delivered[0]["job"]
    assert (first["task"], first["reason"], first["error_type"]) == (
        "doomed", "failed", "ValueError")
    assert first["error_message"].startswith("cannot handle")
    alerts = app.list_jobs()
    assert {j.state for j in alerts if j.task == ALERT_TASK} == {JobState.COMPLETED}
    assert [j.attempt for j in alerts if j.task == ALERT_TASK].count(2) == 1
    app.close()


async def test_a_queue_waiting_too_long_alerts_once_per_period(
        tmp_path: Path, clock: FakeClock, receiver: Receiver) -> None:
    receiver.plan.clear()
    app = alerting_app(tmp_path, clock, receiver.url, alert_queue_wait=60.0)

    @app.task(queue="reports")
    async def report(ctx: JobContext, payload: Any) -> None: ...

    app.pause("reports")  # paused queues are not alerted on; an unserved one is
    report.enqueue(queue="reports")
    report.enqueue(queue="nobody-serves-this")
    worker = app.worker(queues=[ALERT_QUEUE], worker_id="worker-waits")
    try:
        await worker.run_until_idle()
        assert receiver.posts == []
        clock.advance(61)
        await worker.run_until_idle()
        await worker.run_until_idle()
        clock.advance(30)
        await worker.run_until_idle()
    finally:
        worker.close()
    [(status, body, valid)] = receiver.posts
    assert (status, valid, body["kind"], body["queue"]) == (
        200, True, "queue.waiting", "nobody-serves-this")
    assert body["oldest_wait"] > 60
    app.close()


def test_the_documented_check_refuses_forgeries() -> None:
    body = b'{"kind":"job.dead"}'
    now = int(time.time())
    good = sign(body, SECRET, now)
    assert verify(body, str(now), good, SECRET)
    assert not verify(body, str(now), sign(body, "guessed", now), SECRET)
    assert not verify(body + b" ", str(now), good, SECRET)  # body changed
    assert not verify(body, str(now + 1), good, SECRET)     # timestamp changed
    old = now - 3600
    assert not verify(body, str(old), sign(body, SECRET, old), SECRET)  # replayed late
    assert not verify(body, "yesterday", good, SECRET)
    assert not verify(body, str(now), "", SECRET)


def test_alert_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="CONVEYOR_ALERT_SECRET"):
        Settings(alert_url="http://127.0.0.1:9/x")
    with pytest.raises(ConfigError, match="http"):
        Settings(alert_url="ftp://x", alert_secret="s")
    with pytest.raises(ConfigError, match="CONVEYOR_ALERT_QUEUE_WAIT"):
        Settings(alert_queue_wait=-1)
