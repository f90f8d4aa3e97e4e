"""Cron pause with real processes: two `conveyor worker` processes run the scheduler; `conveyor
cron pause` (another process) stops both from storing any slot until `conveyor cron resume`,
and no slot from the paused time runs late."""

from __future__ import annotations

import time

from syshelp import CONVEYOR, System
from tests.polling import wait_until

from conveyor.scheduler import slot_id

NAME = "every-second"


def stored_slots(system: System, since: float, until: float) -> list[float]:
    """The slots (whole seconds) of the schedule after `since`, up to `until`, stored."""
    slots = [float(s) for s in range(int(since) + 1, int(until) + 1)]
    ids = {slot_id(NAME, s): s for s in slots}
    found = {job.id for job in system.app.list_jobs(limit=1000) if job.id in ids}
    return sorted(ids[i] for i in found)


def test_a_pause_holds_on_every_worker_until_resumed(system: System) -> None:
    workers = [system.start(f"worker-{n}", [str(CONVEYOR), "worker", "--app",
                                            "cronpauseapp:app", "--concurrency", "2"])
               for n in range(2)]
    for proc in workers:
        system.wait_ready(proc)
    began = time.time()
    wait_until(lambda: len(stored_slots(system, began, time.time())) >= 2, 30,
               "two slots stored while running")

    paused = system.cli("cron", "pause", NAME, "--app", "cronpauseapp:app")
    assert paused.returncode == 0, paused.stderr
    quiet_from = time.time() + 1.5  # a pass already past its read of the pauses
    time.sleep(4.5)
    assert stored_slots(system, quiet_from, time.time()) == []
    assert all(proc.poll() is None for proc in workers)

    resumed = system.cli("cron", "resume", NAME, "--app", "cronpauseapp:app")
    assert resumed.returncode == 0, resumed.stderr
    back = time.time()
    wait_until(lambda: stored_slots(system, back, time.time()), 30, "a slot after the resume")
    # nothing from the quiet time came late: the slots stored after it are all after resume
    assert [s for s in stored_slots(system, quiet_from, time.time()) if s <= back - 1] == []
    for proc in workers:
        assert system.stop(proc)[0] == 0
