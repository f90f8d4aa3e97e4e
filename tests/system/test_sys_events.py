"""The event feed across processes (issue 13, edges 1 and 2): a subscriber in its own
process sees every state of every job, in order, whoever produced or ran it."""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import pytest
from syshelp import CONVEYOR, HERE, System, wait_until

pytestmark = pytest.mark.system

ORDER = {"queued": 0, "running": 1, "completed": 2}


def start_subscriber(system: System) -> None:
    system.start("subscriber", [sys.executable, str(HERE / "subscriber.py"), system.url,
                                str(system.folder)])
    wait_until(lambda: (system.folder / "subscriber.ready").exists(), 20,
               "the subscriber to subscribe")


def events_by_job(folder: Path) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = defaultdict(list)
    log = folder / "events.log"
    for line in (log.read_text().splitlines() if log.exists() else []):
        job_id, state = line.split()
        seen[job_id].append(state)
    return seen


def wait_for_states(system: System, ids: list[str], timeout: float = 20) -> dict[str, list[str]]:
    def complete() -> dict[str, list[str]] | None:
        seen = events_by_job(system.folder)
        return seen if all("completed" in seen.get(i, []) for i in ids) else None

    try:
        return wait_until(complete, timeout, "the subscriber to see every job complete")
    except AssertionError:
        seen = events_by_job(system.folder)
        raise AssertionError(f"events seen: {dict((i, seen.get(i)) for i in ids)}") from None


def in_order(states: list[str]) -> bool:
    ranks = [ORDER[s] for s in states if s in ORDER]
    return ranks == sorted(ranks) and ranks[:1] == [0]


def test_serve_with_worker_events_reach_a_subscriber_in_another_process(
        system: System) -> None:
    """Edge 1: the server's own subscriber (its dashboard feed) made it skip the refresh of
    other processes' sockets, so only wake-ups refreshed the list: a separate subscriber saw
    `queued` (sent by the producer) but never `running` or `completed` (sent by the server)."""
    proc = system.start("serve", [str(CONVEYOR), "serve", "--app", "sysapp:app", "--port", "0",
                                  "--with-worker"])
    system.wait_ready(proc)
    start_subscriber(system)
    for round_ in range(3):
        ids = [system.app.enqueue("work", {"n": round_}).id]
        seen = wait_for_states(system, ids)
        assert seen[ids[0]] == ["queued", "running", "completed"], seen


def test_events_of_one_job_arrive_in_order_across_producer_and_worker(system: System) -> None:
    """Edge 2: the producer published `queued` after its commit and its wake-up, so a worker
    in another process could claim the job and publish `running` first."""
    start_subscriber(system)
    worker = system.worker("worker", "--concurrency", "20", SYS_FAST="1")
    system.wait_ready(worker)
    ids: list[str] = []
    for _ in range(150):
        ids.append(system.app.enqueue("work", {}).id)
    seen = wait_for_states(system, ids, timeout=60)
    wrong = {i: seen[i] for i in ids if not in_order(seen[i])}
    assert not wrong, f"{len(wrong)} of {len(ids)} jobs out of order: {list(wrong.items())[:3]}"
