"""Conveyor on its embedded SQLite store (WAL, synchronous=NORMAL on every connection: the
`normal` durability mode, Conveyor's default until `auto` became it on 2026-12-04).

Copy into the peer harness's adapters/ (see bench/README.md). Jobs are async and await the
harness's job body; the worker is the documented `conveyor worker` command.
"""
import os

import common

from conveyor import Conveyor, Settings

PYTHON = ".venv-conveyor/bin/python"
DB = os.path.join(common.RAW_DIR, "conveyor.db")
SYNCHRONOUS = "NORMAL"
app = Conveyor(settings=Settings.load(url="sqlite:///" + DB, sqlite_synchronous=SYNCHRONOUS,
                                      log_level="WARNING"))


@app.task()
async def job(ctx, payload):
    await common.run_job_async(payload["ms"])


class Adapter(common.Adapter):
    library, backend, model, concurrency = "conveyor-jobs", "sqlite", "asyncio", 10
    module = "conveyor_sqlite"
    db = DB

    @property
    def app(self):
        return app

    def setup(self):
        self.reset()

    def reset(self):
        self.app.close()
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.db + suffix):
                os.remove(self.db + suffix)
        self.app.migrate()

    def enqueue(self, ms):
        self.app.enqueue("job", {"ms": ms})

    def enqueue_many(self, count, ms):
        self.app.enqueue_many([{"task": "job", "payload": {"ms": ms}}] * count)

    def worker_command(self, concurrency):
        return [common.bin_path("conveyor"), "worker", "--app", f"adapters.{self.module}:app",
                "--concurrency", str(concurrency)]

    def worker_commands(self, processes, concurrency):
        if processes == 1:
            return [self.worker_command(concurrency)]
        return [[*self.worker_command(concurrency), "--processes", str(processes)]]

    def close(self):
        self.app.close()
