"""A producer on a host of its own, with a spool (CONVEYOR_SPOOL from the environment).

    python producer.py COUNT INTERVAL OUT

Enqueues COUNT `step` jobs, one every INTERVAL seconds, appending each id `enqueue` returned
(and whether it was spooled) to OUT; then waits until its spool is forwarded (empty) and
writes OUT.done. Run with `ip netns exec`, so the test can cut it off while it produces.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from mhapp import app


def main(count: int, interval: float, out: str) -> None:
    spool = app.spool
    assert spool is not None, "CONVEYOR_SPOOL is not set"
    with open(out, "a") as ledger:
        for n in range(count):
            began = time.monotonic()
            job = app.enqueue("step", {"n": n})
            spooled = bool(spool.files())
            ledger.write(f"{job.id} {n} {int(spooled)} {time.monotonic() - began:.3f}\n")
            ledger.flush()
            time.sleep(max(0.0, interval - (time.monotonic() - began)))
    deadline = time.monotonic() + 60
    while spool.files() and time.monotonic() < deadline:
        time.sleep(0.1)
    Path(out + ".done").write_text(str(len(spool.files())))
    app.close()


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3])
