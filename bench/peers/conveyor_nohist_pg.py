"""Conveyor on PostgreSQL with the attempt history off (`CONVEYOR_HISTORY=false`).

Not a configuration we recommend: it measures what the history (issue 15) costs a drain, so
the flow-control target of issue 14 (no limits configured: within 5 % of the base) can be read
apart from it, in the same harness run. The setting is put in the environment before the app
is built, and the worker processes inherit it.
"""
import os

os.environ["CONVEYOR_HISTORY"] = "false"

from adapters.conveyor_pg import Adapter, app, job  # noqa: F401  (the worker imports app)

PYTHON = ".venv-conveyor/bin/python"
