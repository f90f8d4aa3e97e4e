"""`conveyor demo`: example tasks, a worker and a live view, all on one SQLite file.

    conveyor demo                        # until Ctrl-C
    conveyor demo --seconds 20           # stops by itself
    conveyor jobs --app conveyor.demo:create_app --state dead     # look around afterwards

One process holds everything: an app with a handful of realistic tasks, a worker on the same
event loop, a producer that enqueues a mixed stream of jobs, and a Rich view refreshed four
times a second. The view reads through the same app methods as the CLI and the API.
"""

from .run import run_demo
from .tasks import create_app

__all__ = ["create_app", "run_demo"]
