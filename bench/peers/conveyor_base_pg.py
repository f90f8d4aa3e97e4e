"""Conveyor at an earlier commit on PostgreSQL, for an old/new A/B inside one harness run.

`BENCH_BASE=<commit> bench/run_peers.sh --peers conveyor_base_pg,conveyor_pg ...`
installs that commit into .venv-conveyor-base; this adapter is conveyor_pg's, run from there.
"""
from adapters.conveyor_pg import Adapter, app, job  # noqa: F401  (the worker imports app)

PYTHON = ".venv-conveyor-base/bin/python"
