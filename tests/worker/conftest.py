"""Worker tests: a real SQLite file, a FakeClock, and Worker.run_once / run_until_idle."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from conveyor import Conveyor, FakeClock, Settings
from conveyor.worker.worker import Worker

T0 = 1_700_000_000.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'jobs.db'}"


@pytest.fixture
def app(db_url: str, clock: FakeClock) -> Iterator[Conveyor]:
    application = Conveyor(db_url, settings=Settings(), clock=clock)
    yield application
    application.close()


@pytest.fixture
async def worker(app: Conveyor) -> AsyncIterator[Worker]:
    runner = app.worker(concurrency=4, worker_id="worker-test")
    yield runner
    runner.threads.shutdown(wait=True)  # let sync tasks end before the store closes
    runner.close()
