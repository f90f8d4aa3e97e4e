"""Fixtures for the multi-host tests: a network of namespaces, PostgreSQL on a host of its own.

One network and one private PostgreSQL server per session (its host "db"); each test makes
the worker and producer hosts it needs, and a schema of its own. Without permission to make
namespaces (not root, no iproute2, a sandbox) the tests are skipped with the reason, except
under CI=true, where this machine permits them and they must run.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # mhapp, whatever pytest's import mode
    sys.path.insert(0, str(HERE))

from .harness import REPORTS, MultiHost, NamespacedCluster  # noqa: E402
from .netns import Network, probe  # noqa: E402


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"the multi-host tests must run in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def network() -> Iterator[Network]:
    reason = probe()
    if reason is not None:
        _unavailable(reason)
    net = Network.create()
    try:
        yield net
    finally:
        net.close()


@pytest.fixture(scope="session")
def database(network: Network) -> Iterator[NamespacedCluster]:
    """PostgreSQL on host "db", listening on that host's address only."""
    from postgres.cluster import bin_dir  # tests/ is on sys.path: its packages import

    binaries = bin_dir()
    if binaries is None:
        _unavailable("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
        raise AssertionError  # unreachable: skip and fail raise
    cluster = NamespacedCluster(binaries, network.host("db"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def mh(network: Network, database: NamespacedCluster, tmp_path: Path) -> Iterator[MultiHost]:
    system = MultiHost(network, database, tmp_path, f"mh_{secrets.token_hex(4)}")
    try:
        yield system
    finally:
        system.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORTS:
        terminalreporter.section("multi-host: the counts each test saw")
        for line in REPORTS:
            terminalreporter.write_line(line)
