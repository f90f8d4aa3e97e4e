"""Cron schedules: checked when registered; slot ids the same on every node; slot times."""

import uuid
from datetime import UTC, datetime
from itertools import pairwise

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
    with pytest.raises(ConfigError, match="names no time that ever comes"):
        app.cron("0 0 31 4 *", "report", name="april 31")  # croniter calls it valid
    with pytest.raises(ConfigError, match="random field"):
        app.cron("R 7 * * *", "report", name="random")  # another minute on every node
    assert app.cron("0 7 * * FRI", "report", name="fridays").expression == "0 7 * * FRI"
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


def test_a_fixed_hour_runs_once_when_the_clock_falls_back() -> None:
    """New York falls back on 2026-11-01: 01:30 comes twice. A daily 01:30 runs at the
    first; a half-hourly schedule runs through the repeated hour by real time."""
    zone = "America/New_York"
    start = datetime(2026, 10, 31, 12, tzinfo=UTC).timestamp()
    daily = Schedule("daily", "30 1 * * *", "report", timezone=zone)
    assert [datetime.fromtimestamp(t, UTC).strftime("%m-%d %H:%M")
            for t in daily.slots(start, start + 3 * 86400)] == [
        "11-01 05:30", "11-02 06:30", "11-03 06:30"]
    half_hourly = Schedule("half", "*/30 * * * *", "report", timezone=zone)
    fold_start = datetime(2026, 11, 1, 4, 59, tzinfo=UTC).timestamp()  # 00:59 EDT
    slots = list(half_hourly.slots(fold_start, fold_start + 3 * 3600))
    assert len(slots) == 6 and all(b - a == 1800 for a, b in pairwise(slots))
