"""Fixtures for the system tests: one SQLite file and real worker subprocesses per test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:  # sysapp and syshelp, whatever pytest's import mode
    sys.path.insert(0, HERE)

from syshelp import System  # noqa: E402


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    """A fresh database and a process registry; every process started is killed at the end."""
    sys_ = System(tmp_path)
    try:
        yield sys_
    finally:
        sys_.close()
