"""Children of `conveyor worker --processes` stop when their supervisor is SIGKILLed."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.system


def children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    return [int(x) for x in out.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().split()
    except FileNotFoundError:
        return False
    return stat[2] != "Z"


def test_children_stop_when_the_supervisor_is_killed(tmp_path):
    env = dict(os.environ, CONVEYOR_URL=f"sqlite:///{tmp_path}/o.db", CONVEYOR_LEASE="3")
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "worker", "--processes", "2", "--queues", "*"],
        env=env, cwd=tmp_path, start_new_session=True, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while len(children_of(supervisor.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        children = children_of(supervisor.pid)
        assert len(children) == 2
        time.sleep(1.5)  # the children are serving
        supervisor.send_signal(signal.SIGKILL)
        supervisor.wait()
        deadline = time.monotonic() + 15
        while any(alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(c) for c in children), "orphaned workers kept running"
    finally:
        os.killpg(supervisor.pid, signal.SIGKILL)
