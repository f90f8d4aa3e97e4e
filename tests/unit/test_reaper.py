"""tests/reaper.py: what a killed pytest run left running is killed once the run is gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

from polling import wait_until

REAPER = Path(__file__).resolve().parents[1] / "reaper.py"

# Stands in for pytest: starts a "worker" in its own session (as the system tests do),
# prints its pid, then waits to be killed.
RUN = textwrap.dedent("""
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"],
                             start_new_session=True)
    print(child.pid, flush=True)
    time.sleep(300)
""")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:   # a zombie is dead for our purpose
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_a_sigkilled_runs_workers_are_killed_and_others_left_alone(tmp_path: Path) -> None:
    mark = uuid.uuid4().hex
    env = {**os.environ, "CVTEST_REAP": mark}
    run = subprocess.Popen([sys.executable, "-c", RUN], env=env, stdout=subprocess.PIPE,
                           text=True)
    unmarked = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"],
                                env={k: v for k, v in env.items() if k != "CVTEST_REAP"},
                                start_new_session=True)
    try:
        assert run.stdout is not None
        worker = int(run.stdout.readline())
        report = tmp_path / "reaper.err"
        with report.open("wb") as err:
            reaper = subprocess.run([sys.executable, str(REAPER), str(run.pid), mark],
                                    env=env, stdout=subprocess.DEVNULL, stderr=err,
                                    timeout=30)
        assert reaper.returncode == 0
        time.sleep(1.0)
        assert _alive(worker), "the reaper must wait for the run to end"
        os.kill(run.pid, signal.SIGKILL)
        run.wait(10)
        wait_until(lambda: not _alive(worker), 10, "the reaper to kill the run's worker")
        assert unmarked.poll() is None, "a process without the run's mark was killed"
        wait_until(lambda: f"{worker} " in report.read_text(), 10, "the reaper's report")
        assert "left 1 process(es) running" in report.read_text()
    finally:
        for proc in (run, unmarked):
            proc.kill()
            proc.wait(10)
        if run.stdout is not None:
            run.stdout.close()
