"""A producer host cut off from the database, with a spool: its jobs arrive once healed, once.

The producer enqueues 40 jobs, one every 50 ms, and is cut off after the first few. Its enqueues
fail over to the spool (each waits for its connection to give up first); once the host is
healed, its forwarder sends the spool on. Every id `enqueue` returned is stored exactly once
and runs exactly once; nothing else is stored.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from .harness import MultiHost, report, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.system]

JOBS = 40


def test_a_producer_cut_off_spools_and_forwards_each_job_once(mh: MultiHost) -> None:
    net = mh.network
    producer_host, worker_host = net.host("spool-p"), net.host("spool-w")
    worker = mh.worker(worker_host, lease=5, heartbeat=1)
    mh.wait_ready(worker, worker_host)
    out = mh.folder / "produced.txt"
    spool = mh.folder / "spool"
    url = mh.url(tcp_user_timeout="1000", connect_timeout="1")
    producer = mh.python(producer_host, "producer.py", str(JOBS), "0.05", str(out), url=url,
                         CONVEYOR_SPOOL=str(spool))

    def produced() -> list[str]:
        return out.read_text().splitlines() if out.exists() else []

    wait_until(lambda: len(produced()) >= 5, 20, "the producer's first jobs")
    net.cut(producer_host)
    cut_at = time.monotonic()
    wait_until(lambda: spool.exists() and any(spool.iterdir()), 20, "a job to be spooled")
    time.sleep(2.0)  # more jobs pile up in the spool while the host is cut off
    stored_while_cut = mh.states().get("completed", 0) + mh.states().get("queued", 0)
    net.heal(producer_host)
    cut_for = time.monotonic() - cut_at
    wait_until(lambda: (mh.folder / "produced.txt.done").exists(), 60,
               f"the producer to finish and forward its spool:\n{mh.log(producer_host)[-2000:]}")
    assert producer.wait(10) == 0, mh.log(producer_host)[-3000:]
    wait_until(lambda: mh.states() == {"completed": JOBS}, 30, "every job to complete")
    mh.stop(worker)

    ids = [line.split()[0] for line in produced()]
    stored = dict(mh.sql("SELECT id, state FROM conveyor_jobs"))
    runs = Counter(j for e, j, *_ in mh.ledger() if e == "done")
    forwarded = mh.log(producer_host).count("spooled to")
    report(f"spool: jobs={JOBS} cut for {cut_for:.1f}s; stored before heal="
          f"{stored_while_cut}; enqueues that spooled={forwarded}; "
          f"stored={len(stored)}; runs={sum(runs.values())}; repeats="
          f"{sum(n - 1 for n in runs.values())}; spool left="
          f"{(mh.folder / 'produced.txt.done').read_text()}")
    assert len(ids) == JOBS and len(set(ids)) == JOBS
    assert forwarded > 0  # the cut was real: some enqueues went to the spool
    assert set(stored) == set(ids)  # each returned id stored (once: it is the key), no other
    assert all(state == "completed" for state in stored.values())
    assert all(runs[job_id] == 1 for job_id in ids)
    assert (mh.folder / "produced.txt.done").read_text() == "0"
