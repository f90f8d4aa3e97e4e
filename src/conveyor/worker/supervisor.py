"""`conveyor worker --processes P`: P worker processes under one supervisor that restarts a
child that dies, forwards SIGTERM/SIGINT to all of them and waits for their graceful exit."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

log = logging.getLogger("conveyor.supervisor")


@dataclass
class _Child:
    slot: int
    proc: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)
    restarts: int = 0


class Supervisor:
    def __init__(self, command: Sequence[str], processes: int, *,
                 restart_backoff: float = 1.0, grace: float = 30.0) -> None:
        self.command = list(command)
        self.processes = processes
        self.restart_backoff = restart_backoff
        self.grace = grace
        self.children: dict[int, _Child] = {}
        self._stopping = False
        self.restarted = 0

    def _spawn(self, slot: int, restarts: int = 0) -> _Child:
        env = dict(os.environ, CONVEYOR_WORKER_SLOT=str(slot),
                   CONVEYOR_SUPERVISOR_PID=str(os.getpid()))
        proc = subprocess.Popen(self.command, env=env)
        log.info("started worker process %d (pid %d)", slot, proc.pid)
        return _Child(slot, proc, restarts=restarts)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for slot in range(self.processes):
            self.children[slot] = self._spawn(slot)
        while not self._stopping:
            self._reap_and_restart()
            time.sleep(0.2)
        return self._stop_all()

    def _reap_and_restart(self) -> None:
        for slot, child in list(self.children.items()):
            code = child.proc.poll()
            if code is None or self._stopping:
                continue
            quick = time.monotonic() - child.started < 5
            restarts = child.restarts + 1 if quick else 0
            delay = min(30.0, self.restart_backoff * (2 ** restarts)) if quick else 0
            log.warning("worker process %d (pid %d) exited with %s; restarting in %.1fs",
                        slot, child.proc.pid, code, delay)
            if delay:
                time.sleep(delay)
            if not self._stopping:
                self.children[slot] = self._spawn(slot, restarts)
                self.restarted += 1

    def _on_signal(self, signum: int, frame: object) -> None:
        if self._stopping and signum == signal.SIGINT:
            for child in self.children.values():
                _send(child.proc, signal.SIGINT)  # second Ctrl-C: children skip the grace
        self._stopping = True
        for child in self.children.values():
            _send(child.proc, signal.SIGTERM)

    def _stop_all(self) -> int:
        deadline = time.monotonic() + self.grace + 5
        for child in self.children.values():
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker process %d did not stop in time; killing it", child.slot)
                child.proc.kill()
                child.proc.wait()
        return 0


def _send(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)


def child_command(argv: Sequence[str]) -> list[str]:
    """This command line again, as one worker process: --processes dropped."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--processes", "-p"):
            skip = True
            continue
        if arg.startswith("--processes="):
            continue
        out.append(arg)
    return [sys.executable, "-m", "conveyor", *out]
