"""Shared fixtures. Async tests run on asyncio through the anyio pytest plugin."""

from __future__ import annotations

from pathlib import Path

import pytest


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
