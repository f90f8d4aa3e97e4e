"""A durable local spool for producers: when the store cannot be reached, enqueued jobs are
written to files on local disk (fsynced) and forwarded once the store is back.

Jobs keep the ids they were given at enqueue, and the store inserts with ON CONFLICT DO
NOTHING, so forwarding a file twice (a crash between insert and delete) stores each job once.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from . import _rng
from .errors import StoreUnavailable
from .job import NewJob

log = logging.getLogger("conveyor.spool")


class Spool:
    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def write(self, jobs: Sequence[NewJob]) -> Path:
        """Store `jobs` durably as one file; returns its path once it is on disk."""
        data = orjson.dumps([_to_dict(job) for job in jobs])
        final = self.folder / f"{jobs[0].id}.jobs"
        temporary = final.with_suffix(".tmp")
        with open(temporary, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, final)
        _fsync_folder(self.folder)
        return final

    def files(self) -> list[Path]:
        return sorted(self.folder.glob("*.jobs"))  # ids sort by time: oldest first

    def read(self, path: Path) -> list[NewJob]:
        return [_from_dict(item) for item in orjson.loads(path.read_bytes())]

    def forward(self, insert: Callable[[list[NewJob]], Any],
                stopping: Callable[[], bool] = lambda: False) -> int:
        """Send every spooled file through `insert`, oldest first, deleting each once stored.
        Stops at the first StoreUnavailable, or when `stopping()` says so between files;
        returns how many jobs were forwarded."""
        sent = 0
        for path in self.files():
            if stopping():
                break
            try:
                jobs = self.read(path)
            except FileNotFoundError:
                continue  # another process forwarded it meanwhile
            insert(jobs)
            path.unlink(missing_ok=True)
            sent += len(jobs)
        return sent


class Forwarder:
    """A background thread that forwards the spool until it is empty, retrying with a
    jittered pause while the store stays unreachable."""

    def __init__(self, spool: Spool, insert: Callable[[list[NewJob]], Any],
                 pause: float = 1.0, on_exit: Callable[[], None] | None = None) -> None:
        """`on_exit` runs on the forwarding thread as it ends: it closes what the thread
        opened (a SQLite connection must be closed by its own thread, never under it)."""
        self.spool = spool
        self.insert = insert
        self.pause = pause
        self.on_exit = on_exit
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="conveyor-spool",
                                                daemon=True)
                self._thread.start()

    def run_once(self) -> int:
        # stop() ends a long forward between files, so that close() does not wait on it
        return self.spool.forward(self.insert, self._stop.is_set)

    def _run(self) -> None:
        try:
            self._forward_until_empty()
        finally:
            if self.on_exit is not None:
                self.on_exit()

    def _forward_until_empty(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.run_once()
                if sent:
                    log.warning("forwarded %d spooled jobs to the store", sent)
                if not self.spool.files():
                    return
            except StoreUnavailable as exc:
                log.info("store still unavailable, %d spool files wait: %s",
                         len(self.spool.files()), exc)
            except Exception:
                log.exception("forwarding the spool failed; will retry")
            self._stop.wait(self.pause * _rng.uniform(0.8, 1.2))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _to_dict(job: NewJob) -> dict[str, Any]:
    data = job._asdict()
    data["payload"] = base64.b64encode(job.payload).decode()
    return data


def _from_dict(data: dict[str, Any]) -> NewJob:
    data = dict(data)
    data["payload"] = base64.b64decode(data["payload"])
    return NewJob(**data)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
