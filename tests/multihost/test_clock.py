"""Workers whose clocks are 30 s off (libfaketime): the database's clock decides.

One worker runs 30 s ahead, one 30 s behind, both with a schedule that ticks every 2 s and a
3 s lease. Jobs longer than the lease are not rescued early (the worker ahead would see every
lease as run out), a delayed job does not start early, each cron slot is stored once and none
starts before its slot, and the worker ahead does not spin on schedules it thinks are due.
"""

from __future__ import annotations

import glob
import os
import time
from collections import Counter
from pathlib import Path

import pytest

from .harness import MultiHost, report, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.system]

SKEW = 30


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks


def test_workers_with_clocks_30s_off_keep_leases_and_schedules(mh: MultiHost) -> None:
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    if not found:
        if os.environ.get("CI") == "true":
            pytest.fail("libfaketime is required in CI (./run.sh test installs faketime)")
        pytest.skip("libfaketime (Debian package faketime) is not installed")
    net = mh.network
    workers = {}
    for name, offset in (("clk-ahead", f"+{SKEW}s"), ("clk-behind", f"-{SKEW}s")):
        host = net.host(name)
        proc = mh.worker(host, lease=3, heartbeat=0.5, MH_CRON="1", LD_PRELOAD=found[-1],
                         FAKETIME=offset, FAKETIME_DONT_FAKE_MONOTONIC="1",
                         DONT_FAKE_MONOTONIC="1")
        workers[name] = (host, proc)
    for host, proc in workers.values():
        mh.wait_ready(proc, host)
    cpu_before = {n: cpu_seconds(p.pid) for n, (_, p) in workers.items()}
    began = time.monotonic()
    long = [mh.app.enqueue("step", {"sleep": 5.0}).id for _ in range(4)]
    delayed = mh.app.enqueue("step", {"sleep": 0}, delay=4).id
    wait_until(lambda: all(mh.app.get(i).terminal for i in [*long, delayed]), 30,
               "the long and the delayed jobs to end")
    wall = time.monotonic() - began
    cpu = {n: cpu_seconds(p.pid) - cpu_before[n] for n, (_, p) in workers.items()}
    for _, proc in workers.values():
        mh.stop(proc)

    starts = Counter(j for e, j, *_ in mh.ledger() if e == "start")
    ticks = mh.sql("SELECT id, run_at, started_at, state FROM conveyor_jobs WHERE task = 'tick'")
    slots = Counter(run_at for _, run_at, _, _ in ticks)
    ran = [(run_at, started) for _, run_at, started, state in ticks if started is not None]
    early_ticks = [1 for run_at, started in ran if started < run_at]
    [(created, run_at, started)] = mh.sql(
        "SELECT created_at, run_at, started_at FROM conveyor_jobs WHERE id = %s", delayed)
    rescued = sum(log.count("rescued") for log in (mh.log(h) for h, _ in workers.values()))
    report(f"clock: workers at +{SKEW}s and -{SKEW}s; long jobs={len(long)} "
          f"repeats={sum(starts[i] - 1 for i in long)} rescues logged={rescued}; delayed job "
          f"started {started - created:.2f}s after enqueue (delay 4s); cron slots stored="
          f"{len(slots)} (ran {len(ran)}, doubled {sum(n > 1 for n in slots.values())}, "
          f"started early {len(early_ticks)}); cpu over {wall:.1f}s: "
          + ", ".join(f"{n}={c:.2f}s" for n, c in cpu.items()))
    assert all(mh.app.get(i).state == "completed" for i in long)
    assert all(starts[i] == 1 for i in long), "a lease was taken for run out too early"
    assert rescued == 0
    assert started >= run_at and started - created >= 3.9
    assert len(ran) >= 3 and not early_ticks
    assert all(n == 1 for n in slots.values())
    # the worker ahead sees scheduled jobs (the slots it enqueued early) as due all along: it
    # used to promote in a busy loop (a quarter of a core here); now it looks once a second
    assert cpu["clk-ahead"] < 0.15 * wall, f"clk-ahead used {cpu['clk-ahead']:.1f}s of CPU"
