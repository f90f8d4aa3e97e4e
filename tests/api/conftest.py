"""Fixtures of the API tests: a live server per module (SQLite; PostgreSQL too when asked
with CONVEYOR_TEST_POSTGRES=1 or CI=true), a worker, and one client per token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conveyor.web.server import build_server

from .harness import (
    TOKENS,
    Live,
    ServerThread,
    WorkerThread,
    close_app,
    free_port,
    make_url,
    store_urls,
)
from .webapp import build_app


@pytest.fixture(params=store_urls(), scope="module")
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Live]:
    url = make_url(request.param, tmp_path_factory.mktemp("api"))
    app, flags = build_app(url)
    if request.param == "postgres":
        app.migrate()
    server = build_server(app, "127.0.0.1", free_port(), tokens=TOKENS, sample_every=0.5,
                          log_level="warning")
    with ServerThread(server):
        yield Live(app, f"http://127.0.0.1:{server.config.port}", flags, server)
    close_app(app)


@pytest.fixture(scope="module")
def worker(live: Live) -> Iterator[Any]:
    with WorkerThread(live.app) as w:
        yield w


@pytest.fixture
def admin(live: Live) -> Iterator[httpx.Client]:
    with live.client("admin-token") as client:
        yield client


@pytest.fixture
def tenant_a(live: Live) -> Iterator[httpx.Client]:
    with live.client("token-a") as client:
        yield client


@pytest.fixture
def tenant_b(live: Live) -> Iterator[httpx.Client]:
    with live.client("token-b") as client:
        yield client
