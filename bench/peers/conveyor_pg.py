"""Conveyor on PostgreSQL (psycopg 3, FOR UPDATE SKIP LOCKED claims, LISTEN/NOTIFY wake-ups).

Copy into the peer harness's adapters/ (see bench/README.md). fsync and synchronous_commit are
the server's (on, in the harness's runs): every enqueue is a durable commit.
"""
import os

import common
import psycopg

from conveyor import Conveyor, Settings

PYTHON = ".venv-conveyor/bin/python"
DATABASE = "bench_conveyor"
URL = common.pg_dsn(DATABASE)
os.environ.setdefault("CONVEYOR_URL", URL)  # the worker subprocesses build the same app
app = Conveyor(settings=Settings.load(url=URL, log_level="WARNING"))


@app.task()
async def job(ctx, payload):
    await common.run_job_async(payload["ms"])


class Adapter(common.Adapter):
    library, backend, model, concurrency = "conveyor-jobs", "postgres", "asyncio", 10

    def setup(self):
        app.close()
        common.recreate_db(DATABASE)
        app.migrate()

    def reset(self):
        with psycopg.connect(URL, autocommit=True) as conn:
            conn.execute("TRUNCATE conveyor_jobs, conveyor_workers")

    def enqueue(self, ms):
        job.enqueue({"ms": ms})

    def enqueue_many(self, count, ms):
        app.enqueue_many([{"task": "job", "payload": {"ms": ms}}] * count)

    def worker_command(self, concurrency):
        return [common.bin_path("conveyor"), "worker", "--app", "adapters.conveyor_pg:app",
                "--concurrency", str(concurrency)]

    def worker_commands(self, processes, concurrency):
        if processes == 1:
            return [self.worker_command(concurrency)]
        return [[*self.worker_command(concurrency), "--processes", str(processes)]]

    def close(self):
        app.close()
