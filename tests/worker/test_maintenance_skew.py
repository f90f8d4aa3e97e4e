"""A host whose clock runs ahead of the store's: promote must not turn into a busy loop.

The store's clock decides when a scheduled job is due. A worker 30 s ahead sees the next due
time as already past right after the store said it is not; it used to promote again at once,
over and over, until its own clock caught up (a query per loop turn, a core busy)."""

from __future__ import annotations

import logging
import time

import pytest

from conveyor import Conveyor
from conveyor.worker.maintenance import Maintenance

pytestmark = pytest.mark.anyio


class AheadClock:
    """This host's clock, `ahead` seconds ahead; the store keeps its own (store_now() None)."""

    def __init__(self, ahead: float = 30.0) -> None:
        self.ahead = ahead

    def now(self) -> float:
        return time.time() + self.ahead

    def store_now(self) -> float | None:
        return None


async def test_a_clock_ahead_waits_a_promote_interval_not_zero(tmp_path: object) -> None:
    app = Conveyor(f"sqlite:///{tmp_path}/jobs.db")

    @app.task
    def noop(payload: object) -> None:
        return None

    app.migrate()
    app.enqueue("noop", {}, delay=10)  # due in 10 s by the store's clock
    maintenance = Maintenance(app, AheadClock(), promote_every=1.0)
    clock = AheadClock()
    try:
        assert await maintenance.promote() == 0  # not due by the store's clock
        assert maintenance.next_due is not None
        # by this host's clock it would be due already: the claim loop would promote again
        # at once; it waits the promote interval instead
        assert maintenance.next_due - clock.now() == pytest.approx(1.0, abs=0.2)
    finally:
        app.close()


async def test_a_clock_a_little_ahead_waits_that_little_and_says_nothing(
        tmp_path: object, caplog: pytest.LogCaptureFixture) -> None:
    app = Conveyor(f"sqlite:///{tmp_path}/jobs.db")

    @app.task
    def noop(payload: object) -> None:
        return None

    app.migrate()
    app.enqueue("noop", {}, delay=0.2)
    clock = AheadClock(0.5)
    maintenance = Maintenance(app, clock, promote_every=1.0)
    try:
        with caplog.at_level(logging.WARNING, "conveyor.maintenance"):
            assert await maintenance.promote() == 0
        assert maintenance.next_due is not None
        assert 0.0 < maintenance.next_due - clock.now() < 0.4  # about 0.3 s, not a second
        assert "ahead" not in caplog.text  # within a second: not worth a warning
    finally:
        app.close()
