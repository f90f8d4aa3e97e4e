"""Conveyor at an earlier commit on SQLite, for an old/new A/B inside one harness run.

`BENCH_BASE=<commit> bench/run_peers.sh --peers conveyor_base_sqlite,conveyor_sqlite ...`
installs that commit into .venv-conveyor-base; this adapter is conveyor_sqlite's, run from there.
"""
from adapters.conveyor_sqlite import Adapter, app, job  # noqa: F401  (the worker imports app)

PYTHON = ".venv-conveyor-base/bin/python"
