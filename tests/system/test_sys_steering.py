"""Steering claimed work from outside the worker: a cancel request for a job the worker
claimed ahead (prefetched) but has not started.

This file sorts after the others on purpose: it shows a core bug, and `-x` should not hide
the rest behind it.
"""

from __future__ import annotations

import pytest
from syshelp import System, wait_until

pytestmark = pytest.mark.system


def test_cancel_of_a_claimed_but_unstarted_job_keeps_it_from_running(system: System) -> None:
    worker = system.worker("worker", "--concurrency", "1")
    warm = [j.id for j in system.app.enqueue_many([("work", {"n": n}) for n in range(3)])]
    system.wait_terminal(warm, 20)  # recent jobs are short: the worker now claims ahead
    busy, waiting = system.app.enqueue_many([("work", {"sleep": 2}), ("work", {"n": "wait"})])
    wait_until(lambda: system.count("start")[busy.id], 20, "the first job to start")
    try:
        wait_until(lambda: system.app.get(waiting.id).state == "running", 1.5, "a claim ahead")
    except AssertionError:
        pytest.skip("the worker did not claim the second job ahead: nothing to cancel early")
    assert not system.count("start")[waiting.id]

    system.app.cancel(waiting.id)
    final = system.wait_terminal([busy.id, waiting.id], 20)
    assert final[busy.id].state == "completed"
    assert not system.count("start")[waiting.id], "a cancelled job ran anyway"
    assert final[waiting.id].state == "cancelled", final[waiting.id]
    assert system.stop(worker)[0] == 0
