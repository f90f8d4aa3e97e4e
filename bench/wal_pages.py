"""Pages each commit of a SQLite drain writes, by table and index: one worker (10 slots, or
the second argument) drains `jobs` no-op jobs (first argument, default 6,000) with the WAL
never checkpointed; the WAL's frames are then counted per commit and attributed to the
table or index that owns each page (dbstat). MAINT=0 runs the worker without maintenance,
so no page is freed and reused by another table during the drain (the attribution is by the
pages' owners at the end).

    MAINT=0 PYTHONPATH=src .venv/bin/python bench/wal_pages.py 6000 10
    MAINT=0 PYTHONPATH=/tmp/base/src .venv/bin/python bench/wal_pages.py 6000 10

Figures only: it asserts nothing (2026-12-08-sqld.md).
"""

from __future__ import annotations

import asyncio
import collections
import os
import sqlite3
import struct
import sys
import tempfile
from typing import Any

jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 6000
slots = int(sys.argv[2]) if len(sys.argv) > 2 else 10
_connect = sqlite3.connect


def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
    conn = _connect(*args, **kwargs)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    return conn


def main() -> None:
    sqlite3.connect = connect  # type: ignore[assignment]
    from conveyor import Conveyor, Settings

    path = os.path.join(tempfile.mkdtemp(), "pages.db")
    app = Conveyor(settings=Settings.load(url=f"sqlite:///{path}", log_level="CRITICAL"),
                   auto_migrate=True)
    ran = [0]

    @app.task(name="noop")
    async def noop(ctx: object, payload: dict[str, int]) -> None:
        ran[0] += 1
        if ran[0] == jobs:
            worker.stop()

    worker = app.worker(concurrency=slots, worker_id="bench-pages",
                        maintenance=os.environ.get("MAINT", "1") == "1")
    for start in range(0, jobs, 1000):
        app.enqueue_many([("noop", {"n": n}) for n in range(start, min(jobs, start + 1000))])
    reader = _connect(path)
    reader.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the drain's frames only
    asyncio.run(worker.run(install_signals=False))
    with open(path + "-wal", "rb") as wal:
        data = wal.read()
    page = struct.unpack(">I", data[8:12])[0]
    owner = dict((pgno, name) for name, pgno in reader.execute(
        "SELECT name, pageno FROM dbstat"))
    commits = frames = 0
    by: collections.Counter[str] = collections.Counter()
    pending: list[int] = []
    offset = 32
    while offset + 24 + page <= len(data):
        pgno, size = struct.unpack(">II", data[offset:offset + 8])
        frames += 1
        pending.append(pgno)
        if size:  # a commit frame: the pages of this transaction
            commits += 1
            by.update(owner.get(p, "(not in the file now)") for p in set(pending))
            pending = []
        offset += 24 + page
    print(f"{jobs} jobs, {slots} slots: {commits} commits, {frames} frames, "
          f"{frames / commits:.2f} frames/commit, {frames / jobs:.2f} frames/job")
    for name, n in by.most_common(15):
        print(f"  {name:45} {n / commits:6.2f} pages/commit")
    reader.close()
    app.close()


if __name__ == "__main__":
    main()
