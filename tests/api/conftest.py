"""Fixtures of the API tests: a live server per module (SQLite; PostgreSQL too when asked
with CONVEYOR_TEST_POSTGRES=1 or CI=true), a worker, and one client per token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .harness import (
    Live,
    WorkerThread,
    drop_made_schemas,
    make_url,
    serving,
    store_urls,
)


@pytest.fixture(scope="session", autouse=True)
def _drop_schemas_at_the_end() -> Iterator[None]:
    """The PostgreSQL schemas the API tests made, dropped once they are done with them."""
    yield
    drop_made_schemas()


@pytest.fixture(params=store_urls(), scope="module")
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Live]:
    with serving(make_url(request.param, tmp_path_factory.mktemp("api")), sample_every=0.5) as live:
        yield live


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
