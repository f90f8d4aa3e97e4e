"""Kill what a pytest run left running, once that run has ended, however it ended.

The system tests start real `conveyor worker` processes, each in its own session so a test
can SIGKILL its process group. A test's `finally` stops them; but a pytest that is killed
itself (a CI timeout, a Ctrl-C twice, SIGKILL) runs no `finally`, and its workers go on
polling the store for hours, holding database connections. `tests/conftest.py` starts this
script at the beginning of the run with a mark that every child inherits in its
environment (`CVTEST_REAP`); the script waits for the pytest process to exit, then SIGKILLs
every process whose environment carries the mark, and says which, so a leak is seen.

Only single processes are killed, never process groups: a child left in pytest's own group
shares it with the shell that started pytest (and, under ./run.sh test, the other pytest).

    python tests/reaper.py PYTEST_PID MARK
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time
from collections.abc import Iterator

VARIABLE = "CVTEST_REAP"


def wait_for_exit(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):   # no pidfd (old kernel): poll
        while _alive(pid):
            time.sleep(0.5)
        return
    try:
        select.select([fd], [], [])
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def marked(mark: str, skip: set[int]) -> Iterator[int]:
    """The pids whose environment (as they were started) holds VARIABLE=mark."""
    wanted = f"{VARIABLE}={mark}".encode()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in skip:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as env:
                if wanted in env.read().split(b"\0"):
                    yield int(name)
        except OSError:   # gone, or not ours to read
            continue


def command_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmd:
            return cmd.read().replace(b"\0", b" ").decode(errors="replace").strip()[:160]
    except OSError:
        return "?"


def reap(mark: str, skip: set[int]) -> list[str]:
    """SIGKILL every marked process, again until none is left (a supervisor may have forked
    between two passes); returns what was killed."""
    killed: list[str] = []
    for _ in range(5):
        found = list(marked(mark, skip))
        if not found:
            break
        for pid in found:
            what = command_of(pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed.append(f"{pid} {what}")
        time.sleep(0.2)
    return killed


def main(argv: list[str]) -> int:
    parent, mark = int(argv[1]), argv[2]
    if os.fork():   # the starter returns at once; the reaper lives on, no one's child
        return 0
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # a Ctrl-C is for pytest, not for us
    wait_for_exit(parent)
    killed = reap(mark, {os.getpid(), parent})
    if killed:
        print(f"tests/reaper.py: the test run left {len(killed)} process(es) running; "
              "killed:\n  " + "\n  ".join(killed), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
