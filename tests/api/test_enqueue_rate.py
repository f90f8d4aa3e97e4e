"""CONVEYOR_API_ENQUEUE_RATE: a token that enqueues over its rate gets 429 with Retry-After
and nothing is stored; each tenant counts apart; a batch counts its jobs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conveyor import ConfigError, Conveyor, JobFilter, Settings
from conveyor.limits.window import SlidingWindow
from conveyor.web.server import build_server

from .harness import TOKENS, ServerThread, assert_error, close_app, free_port


@pytest.fixture
def rated(tmp_path: Path) -> Iterator[tuple[Conveyor, str]]:
    settings = Settings.load(env={}, url=f"sqlite:///{tmp_path / 'rate.db'}",
                             api_enqueue_rate="3/min")
    app = Conveyor(settings=settings)

    @app.task(queue="default")
    def echo(ctx: object, payload: object) -> object:
        return payload

    server = build_server(app, "127.0.0.1", free_port(), tokens=TOKENS, log_level="warning")
    with ServerThread(server):
        yield app, f"http://127.0.0.1:{server.config.port}"
    close_app(app)


def _client(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})


def test_over_the_rate_is_429_with_retry_after_and_stores_nothing(
        rated: tuple[Conveyor, str]) -> None:
    app, url = rated
    with _client(url, "token-a") as acme, _client(url, "token-b") as globex:
        for _ in range(3):
            assert acme.post("/api/v1/jobs", json={"task": "echo"}).status_code == 202
        refused = acme.post("/api/v1/jobs", json={"task": "echo"})
        body = assert_error(refused, 429, "rate_limited")
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert body["details"]["rate"] == "3/min"
        assert globex.post("/api/v1/jobs", json={"task": "echo"}).status_code == 202
        batch = globex.post("/api/v1/batches", json={"jobs": [{"task": "echo"}] * 3})
        assert_error(batch, 429, "rate_limited")  # 1 + 3 > 3: the batch is refused whole
        too_big = globex.post("/api/v1/batches", json={"jobs": [{"task": "echo"}] * 4})
        assert_error(too_big, 413, "batch_over_rate")
    assert len(app.list_jobs(JobFilter(), limit=100)) == 4


def test_a_sliding_window_lets_jobs_in_as_old_ones_leave() -> None:
    now = [0.0]
    window = SlidingWindow(3, 10.0, clock=lambda: now[0])
    assert [window.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    now[0] = 4.0
    assert window.take("k") == pytest.approx(6.0)
    assert window.take("k", 2) == pytest.approx(6.0)
    now[0] = 10.0  # the three of t=0 have left (0, 10]
    assert window.take("k", 2) == 0.0
    assert window.take("k") == 0.0
    assert window.take("k") == pytest.approx(10.0)
    assert window.take("other") == 0.0
    assert window.take("k", 4) == float("inf")


def test_a_bad_setting_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="CONVEYOR_API_ENQUEUE_RATE"):
        Settings.load(env={"CONVEYOR_API_ENQUEUE_RATE": "fast"})
