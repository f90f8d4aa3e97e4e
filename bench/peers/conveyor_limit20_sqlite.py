"""Conveyor on SQLite with its queue limited to 20 running jobs across the cluster.

Issue 14 asks that a queue limited to 20 concurrent jobs drain at >= 80 % of the unlimited rate
(conveyor_sqlite, in the same harness run). The limit is stored as an operator's would be
(`app.limits.set`), so every `conveyor worker` process claims under it.
"""
from adapters.conveyor_sqlite import Adapter as Unlimited
from adapters.conveyor_sqlite import app, job  # noqa: F401  (the worker imports app)

PYTHON = ".venv-conveyor/bin/python"


class Adapter(Unlimited):
    def reset(self):
        super().reset()
        app.limits.set("queue", "default", concurrency=20)
