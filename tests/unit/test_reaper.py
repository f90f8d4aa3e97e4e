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
        assert "left 1 process(es) running once it had exited" in report.read_text()
    finally:
        for proc in (run, unmarked):
            proc.kill()
            proc.wait(10)
        if run.stdout is not None:
            run.stdout.close()


LEAKY = textwrap.dedent("""
    import subprocess, sys

    def test_leaks_a_worker():
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"],
                                start_new_session=True)
        open("leaked.pid", "w").write(str(proc.pid))
""")


def test_a_run_that_ends_kills_what_it_left_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "test_leaky.py").write_text(LEAKY)
    tests = str(REAPER.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH",
                                                                               "")])}
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "conftest", "-q",
                           "-p", "no:cacheprovider", str(tmp_path / "test_leaky.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    leaked = int((tmp_path / "leaked.pid").read_text())
    assert not _alive(leaked), "the run's leaked process outlived it"
    assert f"left 1 process(es) running at its end; killed:\n  {leaked} " in done.stderr, (
        done.stderr)


HELPED = textwrap.dedent("""
    import multiprocessing, subprocess, sys

    def test_uses_a_forkserver_and_leaks_a_worker():
        ctx = multiprocessing.get_context("forkserver")
        with ctx.Pool(1) as pool:
            assert pool.apply(abs, (-1,)) == 1
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"],
                                start_new_session=True)
        open("leaked.pid", "w").write(str(proc.pid))
""")


def test_the_runs_own_multiprocessing_helpers_are_not_reported(tmp_path: Path) -> None:
    """The forkserver and resource tracker end with the run: not leaks, not in the report."""
    (tmp_path / "test_helped.py").write_text(HELPED)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REAPER.parent),
                                                        os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "conftest", "-q",
                           "-p", "no:cacheprovider", str(tmp_path / "test_helped.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    leaked = int((tmp_path / "leaked.pid").read_text())
    assert not _alive(leaked)
    assert "left 1 process(es) running at its end" in done.stderr, done.stderr
    assert "multiprocessing" not in done.stderr, done.stderr
