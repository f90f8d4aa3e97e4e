"""Cross-process wake-ups for the SQLite store: one datagram socket per listening worker.

Workers bind a Unix datagram socket in a folder that belongs to the database file; producers
send a tiny datagram (the queue names) to every socket there after their commit. It is a hint:
a lost datagram only means the worker finds the job on its next poll. Listeners in the same
process are called directly, with no socket in between.

Events (the dashboard's feed) are more than hints: a subscriber should see every state of a
job. Linux queues at most `net.unix.max_dgram_qlen` (10) datagrams per socket, so a sender
whose subscriber is that far behind waits for room, at most EVENT_WAIT seconds; a subscriber
that let that pass is skipped without waiting for SLOW_FOR seconds (it is stopped or gone).
The list of sockets is read again whenever the folder changes, and for a while after each
change, since a folder's mtime ticks coarsely and two binds may share one tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import orjson

from ...job import JobEvent

_EVENTS_PER_DATAGRAM = 200

_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux; keep a margin for the file name
EVENT_WAIT = 0.05  # seconds a publish waits for a subscriber's queue to have room
SLOW_FOR = 1.0  # ... after which that subscriber is sent to without waiting for this long
# Read the folder again until a read comes this long after its mtime: a socket bound in the
# mtime's tick after the last read leaves the mtime as it was (was: while the mtime is
# younger than 2 s by the clock, which missed such a socket when no read came meanwhile).
# A filesystem whose times have whole seconds only (an mtime with no fraction) is given 2 s;
# one with finer times (ext4, tmpfs, xfs, btrfs: the kernel's coarse clock, a tick of 1-10
# ms) 50 ms. Not 2 s for every one: a drain's trips read the folder in each (twice each, ~8
# µs a read) for the first 2 s after a worker started, most of a 20,000-job drain.
_RELIST_NS = 2_000_000_000
_RELIST_FINE_NS = 50_000_000


def wake_folder(db_path: str) -> str:
    """Beside the database when the path is short enough, else under the temp folder, keyed
    by the database's real path (producers and workers compute the same folder)."""
    beside = db_path + ".wake"
    if len(beside) + 32 < _MAX_SOCKET_PATH:
        return beside
    digest = hashlib.sha1(os.path.realpath(db_path).encode()).hexdigest()[:20]
    return os.path.join(tempfile.gettempdir(), f"conveyor-wake-{digest}")


class _Listener:
    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[Any], None]) -> None:
        self.loop = loop
        self.callback = callback

    def deliver(self, items: Iterable[Any]) -> None:
        for item in items:
            self.callback(item)


class WakeChannel:
    def __init__(self, db_path: str | None) -> None:
        self.folder = None if db_path is None else wake_folder(db_path)
        self._sender: socket.socket | None = None
        self._targets: list[str] = []
        self._event_targets: list[str] = []
        self._folder_mtime = -1
        self._listed_ns = 0  # time.time_ns() of the folder's last read
        self._slow: dict[str, float] = {}  # event socket -> monotonic time it may wait again
        self._own: set[str] = set()
        self._local: list[_Listener] = []
        self._local_subscribers: list[_Listener] = []
        self._lock = threading.Lock()

    # --- sending --------------------------------------------------------------------------

    def notify(self, queues: set[str]) -> None:
        for listener in list(self._local):
            self._deliver_local(listener, queues)
        if self.folder is None:
            return
        targets = self._current_targets()
        if targets:
            self._send_all(targets, "\n".join(sorted(queues)).encode()[:512])

    def _send_all(self, targets: Sequence[str], message: bytes, wait: bool = False) -> None:
        sender = self._get_sender()
        for path in targets:
            if path in self._own:
                continue
            try:
                if wait and self._slow.get(path, 0.0) <= time.monotonic():
                    self._send_waiting(sender, message, path)
                else:
                    sender.sendto(message, socket.MSG_DONTWAIT, path)
            except (BlockingIOError, InterruptedError, TimeoutError):
                pass  # a wake-up: its buffer is full, it has plenty to wake it already
            except ConnectionRefusedError:
                _unlink_quietly(path)  # nobody is bound: a worker that died
            except OSError as exc:
                if exc.errno not in (errno.ENOENT, errno.ENOTSOCK, errno.EPROTOTYPE):
                    raise

    def _send_waiting(self, sender: socket.socket, message: bytes, path: str) -> None:
        """Send an event datagram, waiting up to EVENT_WAIT for room in the subscriber's
        queue (the socket's send timeout); a subscriber that stays full is marked slow."""
        try:
            sender.sendto(message, path)
        except (BlockingIOError, TimeoutError):
            self._slow[path] = time.monotonic() + SLOW_FOR
            raise

    @staticmethod
    def _deliver_local(listener: _Listener, queues: Iterable[Any]) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is listener.loop:
            listener.deliver(queues)
        elif not listener.loop.is_closed():
            with contextlib.suppress(RuntimeError):
                listener.loop.call_soon_threadsafe(listener.deliver, queues)

    def _current_targets(self) -> list[str]:
        assert self.folder is not None
        try:
            mtime = os.stat(self.folder).st_mtime_ns
        except FileNotFoundError:
            return []
        if mtime != self._folder_mtime or self._listed_ns - mtime < (
                _RELIST_NS if mtime % 1_000_000_000 == 0 else _RELIST_FINE_NS):
            with self._lock:
                self._listed_ns = time.time_ns()  # (before the read: what it surely saw)
                try:
                    names = os.listdir(self.folder)
                except FileNotFoundError:
                    names = []
                self._targets = [os.path.join(self.folder, n) for n in names
                                 if n.endswith(".sock")]
                self._event_targets = [os.path.join(self.folder, n) for n in names
                                       if n.endswith(".events")]
                self._folder_mtime = mtime
        return self._targets

    # --- the event feed (dashboard, SSE) ---------------------------------------------------

    def has_subscribers(self) -> bool:
        """Any subscriber, here or in another process; reads the folder if it changed (a
        local subscriber must not stop us noticing the other processes' sockets)."""
        if self.folder is not None:
            self._current_targets()
            if self._event_targets:
                return True
        return bool(self._local_subscribers)

    def publish(self, events: Sequence[JobEvent]) -> None:
        """Send job events to every subscriber on this database (a hint, best effort)."""
        if not events:
            return
        for listener in list(self._local_subscribers):
            self._deliver_local(listener, [list(events)])
        if self.folder is None or not self._event_targets:
            return
        for start in range(0, len(events), _EVENTS_PER_DATAGRAM):
            chunk = [tuple(e) for e in events[start:start + _EVENTS_PER_DATAGRAM]]
            self._send_all(self._event_targets, orjson.dumps(chunk), wait=True)

    async def subscribe(self, callback: Callable[[list[JobEvent]], None]
                        ) -> Callable[[], Awaitable[None]]:
        return self._attach(callback, self._local_subscribers, ".events", self._drain_events)

    @staticmethod
    def _drain_events(sock: socket.socket, listener: _Listener) -> None:
        batches: list[Any] = []
        while True:
            try:
                data = sock.recv(1 << 20)
            except OSError:
                break
            try:
                batches.append([JobEvent(*e) for e in orjson.loads(data)])
            except (orjson.JSONDecodeError, TypeError):
                continue
        listener.deliver(batches)

    def _get_sender(self) -> socket.socket:
        sender = self._sender
        if sender is None:
            with self._lock:  # two producing threads must not each open (and leak) one
                if self._sender is None:
                    created = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    # blocking, with a kernel send timeout: the kernel waits for room in
                    # the peer's queue (a Python timeout would spin); wake-ups pass
                    # MSG_DONTWAIT instead
                    wait = struct.pack("ll", 0, int(EVENT_WAIT * 1_000_000))
                    created.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, wait)
                    self._sender = created
                sender = self._sender
        return sender

    # --- listening ------------------------------------------------------------------------

    async def listen(self, callback: Callable[[str], None]) -> Callable[[], Awaitable[None]]:
        """Call `callback(queue)` on the running loop for every wake-up; returns a stopper."""
        return self._attach(callback, self._local, ".sock", self._drain)

    def _attach(self, callback: Callable[[Any], None], local: list[_Listener], suffix: str,
                drain: Callable[[socket.socket, _Listener], None]
                ) -> Callable[[], Awaitable[None]]:
        """Register an in-process listener and, on a file store, bind its socket."""
        loop = asyncio.get_running_loop()
        listener = _Listener(loop, callback)
        local.append(listener)
        sock, path = self._bind(suffix) if self.folder is not None else (None, None)
        if sock is not None:
            loop.add_reader(sock.fileno(), drain, sock, listener)

        async def stop() -> None:
            if listener in local:
                local.remove(listener)
            self._unbind(loop, sock, path)

        return stop

    def _unbind(self, loop: asyncio.AbstractEventLoop, sock: socket.socket | None,
                path: str | None) -> None:
        if sock is not None and path is not None:
            loop.remove_reader(sock.fileno())
            sock.close()
            self._own.discard(path)
            _unlink_quietly(path)

    def _bind(self, suffix: str) -> tuple[socket.socket, str]:
        assert self.folder is not None
        os.makedirs(self.folder, mode=0o770, exist_ok=True)
        path = os.path.join(self.folder, f"{os.getpid()}-{os.urandom(4).hex()}{suffix}")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind(path)
        self._own.add(path)
        return sock, path

    @staticmethod
    def _drain(sock: socket.socket, listener: _Listener) -> None:
        queues: set[str] = set()
        while True:
            try:
                data = sock.recv(1024)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            queues.update(data.decode(errors="replace").split("\n"))
        listener.deliver(queues)

    def __del__(self) -> None:  # a store dropped without close() leaves no open socket
        self.close()

    def close(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.close()


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
