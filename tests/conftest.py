"""Shared fixtures. Async tests run on asyncio through the anyio pytest plugin."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import reaper


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


# Directories whose tests mostly wait on subprocesses, a browser or the network: ./run.sh test
# runs them (with the long ones) in a second pytest beside the rest, so the two cores stay busy.
_TESTS = Path(__file__).parent
_BESIDE = ("system", "cli", "browser", "multihost")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            top = item.path.relative_to(_TESTS).parts[0]
        except ValueError:
            continue
        if top in _BESIDE:
            item.add_marker(pytest.mark.beside)


def pytest_configure(config: pytest.Config) -> None:
    """Start tests/reaper.py: once this pytest exits, however, it SIGKILLs every process
    the run started and left running (a killed run's `conveyor worker`s, say)."""
    mark = uuid.uuid4().hex
    os.environ["CVTEST_REAP"] = mark   # every child inherits it in its environment
    unmarked = {k: v for k, v in os.environ.items() if k != "CVTEST_REAP"}
    subprocess.run([sys.executable, str(_TESTS / "reaper.py"), str(os.getpid()), mark],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=unmarked,
                   check=True)


def pytest_unconfigure(config: pytest.Config) -> None:
    """A run that ends normally kills what it left running itself, and says so in its own
    output (the reaper's report would come after ./run.sh has printed this run's log)."""
    mark = os.environ.get("CVTEST_REAP")
    if mark:
        killed = reaper.reap(mark, {os.getpid()}, helpers_of=os.getpid())
        if killed:
            print("\n" + reaper.report(killed, "at its end"), file=sys.stderr)
