"""Cron schedules: checked when registered; slot ids the same on every node; slot times."""

import uuid
from datetime import UTC, datetime

import pytest

from conveyor import Conveyor
from conveyor.errors import ConfigError
from conveyor.scheduler import Schedule, slot_id

T0 = datetime(2026, 3, 28, 23, 0, tzinfo=UTC).timestamp()


def test_a_slot_id_is_a_uuid7_of_the_slot_the_same_on_every_node() -> None:
    one = slot_id("nightly", T0)
    parsed = uuid.UUID(one)
    assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
    assert int(one.replace("-", "")[:12], 16) == int(T0 * 1000)  # its clock is the slot's
    assert slot_id("nightly", T0) == one
    assert slot_id("nightly", T0 + 60) != one and slot_id("hourly", T0) != one
    assert sorted([slot_id("z", T0 + 1), slot_id("a", T0)]) == [slot_id("a", T0),
                                                                  slot_id("z", T0 + 1)]


def test_schedules_are_checked_when_registered(tmp_path) -> None:
    app = Conveyor(f"sqlite:///{tmp_path}/c.db")
    with pytest.raises(ConfigError, match="not a cron expression"):
        app.cron("61 * * * *", "report")
    with pytest.raises(ConfigError, match="time zone"):
        app.cron("0 * * * *", "report", timezone="Mars/Olympus")
    with pytest.raises(ConfigError, match="cannot take: delay, idempotency_key"):
        app.cron("0 * * * *", "report", delay=5, idempotency_key="k")
    entry = app.cron("0 7 * * mon-fri", "report", {"kind": "sales"}, queue="reports")
    assert entry.name == "report 0 7 * * mon-fri" and app.schedules == {entry.name: entry}
    with pytest.raises(ConfigError, match="exists already"):
        app.cron("0 7 * * mon-fri", "report")
    assert app.cron("0 7 * * mon-fri", "report", name="second").name == "second"
    app.close()


def test_slots_follow_the_time_zone_across_a_clock_change() -> None:
    """Europe/Paris springs forward on 2026-03-29: 07:00 local is 06:00 UTC before, 05:00
    after; six fields put seconds last."""
    daily = Schedule("daily", "0 7 * * *", "report", timezone="Europe/Paris")
    hours = [datetime.fromtimestamp(t, UTC).hour
             for t in daily.slots(T0 - 86400, T0 + 2 * 86400)]
    assert hours == [6, 5, 5]
    fast = Schedule("fast", "* * * * * */20", "tick")
    assert list(fast.slots(T0, T0 + 60)) == [T0 + 20, T0 + 40, T0 + 60]
    assert list(fast.slots(T0 + 1, T0 + 20)) == [T0 + 20]
    assert fast.next_slot(T0 + 20) == T0 + 40
