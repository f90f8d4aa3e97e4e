"""One batched lease extension, from a thread, so a blocked event loop (a CPU-bound task, a
long sync call) cannot make this worker's jobs look dead."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING

from ..store.base import HeartbeatReply

if TYPE_CHECKING:
    from .worker import Worker

log = logging.getLogger("conveyor.worker")


class Heartbeat:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0

    def run_once(self) -> HeartbeatReply:
        """Extend every lease the worker holds; hand it lost ones, cancel requests, and
        jobs leased to it that it did not list (hand-offs it may never have heard of)."""
        w = self.worker
        began = time.monotonic()
        reply = w.app.call(lambda s: s.heartbeat(w.info, w.leases(), w.lease,
                                                 w.clock.store_now()))
        w.watch.renewed(began)
        if (reply.lost or reply.cancel_requested or reply.unknown or w.handoffs.suspects
                ) and w._loop is not None:
            w._loop.call_soon_threadsafe(w.on_heartbeat, reply.lost, reply.cancel_requested,
                                         reply.unknown)
        return reply

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="conveyor-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _parent_gone(self) -> bool:
        """A child of `--processes` whose supervisor died (even by SIGKILL) stops itself."""
        parent = os.environ.get("CONVEYOR_SUPERVISOR_PID")
        return parent is not None and os.getppid() != int(parent)

    def _run(self) -> None:
        while True:
            if self._parent_gone():
                log.error("the supervisor is gone: stopping this worker")
                self.worker.stop()
            try:
                self.run_once()
                self.failures = 0
            except Exception as exc:  # the store is down: keep trying, the lease has slack
                self.failures += 1
                log.warning("heartbeat failed (%d in a row): %s", self.failures, exc)
            if self._stop.wait(self.worker.heartbeat_interval):
                return
