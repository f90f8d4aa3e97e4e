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
A run that ends normally sweeps the same way itself, at its end (`tests/conftest.py`), so its
report lands in the run's own output; this script is for the runs that cannot.

    python tests/reaper.py PYTEST_PID MARK
"""

from __future__ import annotations

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


def kill(pid: int, wanted: bytes) -> bool:
    """SIGKILL `pid` if it still carries the mark, and wait (briefly) for it to go. Through
    a pidfd where there is one: the environment is checked again once the process is
    pinned, so a pid reused since the scan is never signalled."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None
    try:
        try:
            with open(f"/proc/{pid}/environ", "rb") as env:
                if wanted not in env.read().split(b"\0"):
                    return False
        except OSError:
            return False
        try:
            if fd is None:
                os.kill(pid, signal.SIGKILL)
            else:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
                select.select([fd], [], [], 2.0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    finally:
        if fd is not None:
            os.close(fd)


# multiprocessing's own helpers of the pytest process (a test used a forkserver context):
# they end with it, so they are not leaks, and the sweep at the run's end leaves them
_OWN_HELPERS = ("from multiprocessing.resource_tracker import",
                "from multiprocessing.forkserver import")


def reap(mark: str, skip: set[int], helpers_of: int | None = None) -> list[str]:
    """SIGKILL every marked process, again until none is left (a supervisor may have forked
    between two passes); returns what was killed, each once. `helpers_of`: a live process
    whose multiprocessing helpers are left alone."""
    killed: dict[int, str] = {}
    wanted = f"{VARIABLE}={mark}".encode()
    if helpers_of is not None:
        skip = skip | {pid for pid in marked(mark, skip)
                       if _parent(pid) == helpers_of
                       and any(h in command_of(pid) for h in _OWN_HELPERS)}
    for _ in range(5):
        found = [pid for pid in marked(mark, skip) if pid not in killed]
        if not found:
            break
        for pid in found:
            what = command_of(pid)
            if kill(pid, wanted):
                killed[pid] = f"{pid} {what}"
        time.sleep(0.2)
    return list(killed.values())


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def report(killed: list[str], when: str) -> str:
    return (f"tests/reaper.py: the test run left {len(killed)} process(es) running {when}; "
            "killed:\n  " + "\n  ".join(killed))


def main(argv: list[str]) -> int:
    parent, mark = int(argv[1]), argv[2]
    if os.fork():   # the starter returns at once; the reaper lives on, no one's child
        return 0
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # a Ctrl-C is for pytest, not for us
    wait_for_exit(parent)
    time.sleep(1.0)   # what ends with the run (multiprocessing's helpers) ends by itself
    killed = reap(mark, {os.getpid(), parent})
    if killed:
        print(report(killed, "once it had exited"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
