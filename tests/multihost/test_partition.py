"""A worker host cut off from the database for longer than its lease.

Worker host w1 runs 8 jobs: 4 short ones that end while it is cut off, 4 long ones that are
still running when its lease runs out. Its watchdog stops the long ones at the lease's end;
host w2 rescues all 8 and runs them. Once healed, w1 writes the 4 outcomes it kept: each is
refused (the lease token moved on: fenced), and w1 logs it. Every job ends once, on w2.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from .harness import MultiHost, report, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.system]


def test_a_worker_cut_off_past_its_lease_is_fenced_and_its_jobs_end_once(
        mh: MultiHost) -> None:
    net = mh.network
    w1, w2 = net.host("part-w1"), net.host("part-w2")
    # a call whose packets go unanswered fails in 2 s (instead of the 15 s default)
    url = mh.url(tcp_user_timeout="2000", connect_timeout="2")
    first = mh.worker(w1, url=url, lease=3, heartbeat=0.5)
    mh.wait_ready(first, w1)
    short = [mh.app.enqueue("step", {"sleep": 1.5}).id for _ in range(4)]
    long = [mh.app.enqueue("step", {"sleep": 6.0}).id for _ in range(4)]
    every = set(short + long)

    def started_on(host: str) -> set[str]:
        return {j for e, j, _, h, _ in mh.ledger() if e == "start" and h == host}

    wait_until(lambda: started_on(w1.name) >= every, 15, "w1 to start all 8 jobs")
    net.cut(w1)
    cut_at = time.monotonic()
    second = mh.worker(w2, url=url, lease=3, heartbeat=0.5)
    wait_until(lambda: started_on(w2.name) >= every, 30, "w2 to rescue and start all 8 jobs")
    net.heal(w1)
    healed_after = time.monotonic() - cut_at
    wait_until(lambda: mh.states() == {"completed": 8}, 20, "every job to complete")
    wait_until(lambda: mh.log(w1).count("lease lost for job") >= 4, 20,
               "w1 to try its kept outcomes and have them refused")
    time.sleep(1.0)  # anything more w1 would write, it writes now
    mh.stop(first)
    mh.stop(second)

    ledger = mh.ledger()
    done = Counter((j, h) for e, j, _, h, _ in ledger if e == "done")
    w1_log = mh.log(w1)
    refused = w1_log.count("lease lost for job")
    watchdog = [line for line in w1_log.splitlines() if "were not renewed" in line]
    rows = mh.sql("SELECT id, state, attempt, worker_host, result IS NOT NULL FROM conveyor_jobs")
    winners = {i: mh.app.get(i).result for i in every}
    report(f"partition: jobs={len(every)} cut for {healed_after:.1f}s; "
          f"executions={sum(1 for e, *_ in ledger if e == 'start')}; "
          f"repeats={len(every)} (4 finished on the cut-off host, 4 stopped by its watchdog); "
          f"fenced writes refused={refused}; watchdog stops={len(watchdog)} line(s)")

    assert all(state == "completed" for _, state, _, _, _ in rows)
    for job_id in every:  # each job's one end is w2's: its result, its ledger line
        assert winners[job_id]["host"] == w2.name
        assert done[(job_id, w2.name)] == 1
    for job_id in short:  # ended on w1 while cut off: the outcome it kept was refused
        assert done[(job_id, w1.name)] == 1
        assert f"lease lost for job {job_id}" in w1_log
    for job_id in long:  # stopped by w1's watchdog at its lease's end: never ended there
        assert done[(job_id, w1.name)] == 0
        assert any(job_id in line for line in watchdog)
    assert refused == 4
