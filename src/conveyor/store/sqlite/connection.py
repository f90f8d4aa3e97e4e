"""SQLite connections: one per thread on a file (WAL), one shared under a lock in memory.

Writes are short `BEGIN IMMEDIATE` transactions: taking the write lock up front means two
writers never deadlock on a read-to-write upgrade, and busy_timeout bounds the wait. Every
SQLite failure inside a transaction rolls it back and surfaces as StoreUnavailable, so a full
disk or a lock held too long means "nothing was stored", said clearly.

Each write says whether it is a promise to a caller (an enqueue, an operator's action) and
how long it may wait for the lock; the connection's `synchronous` and `busy_timeout` are set
to match before BEGIN, only when they differ from what it last had (durability.py).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from ...errors import ConfigError, StoreUnavailable
from .durability import Durability, Tuning


def parse_url(url: str) -> str:
    """sqlite:///relative.db, sqlite:////absolute.db, sqlite:///:memory: -> a path."""
    if not url.startswith("sqlite://"):
        raise ConfigError(f"not a SQLite URL: {url!r}")
    path = url[len("sqlite://"):]
    if path.startswith("/"):  # sqlite:///rel.db -> rel.db; sqlite:////abs.db -> /abs.db
        path = path[1:]
    if path in ("", ":memory:"):
        return ":memory:"
    return path


class Connections:
    def __init__(self, path: str, durability: Durability, busy_timeout: float) -> None:
        self.path = path
        self.memory = path == ":memory:"
        self.durability = durability
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._memory_conn: sqlite3.Connection | None = None
        self._memory_lock = threading.RLock()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=self.busy_timeout, cached_statements=256)
        conn.execute("PRAGMA journal_mode = MEMORY" if self.memory else "PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.durability.work}")
        conn.execute("PRAGMA journal_size_limit = 67108864")  # bound the WAL after checkpoints
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA cache_size = -16000")
        with self._all_lock:
            self._all.append(conn)
        return conn

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, in autocommit: each read sees the newest commit."""
        if self.memory:
            with self._memory_lock:
                if self._memory_conn is None:
                    self._memory_conn = self._connect()
                try:
                    yield self._memory_conn
                except sqlite3.Error as exc:
                    raise unavailable(exc) from exc
            return
        try:
            yield self._thread_conn()
        except sqlite3.Error as exc:  # e.g. "file is not a database": say so, plainly
            raise unavailable(exc) from exc

    def _thread_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = self._local.conn = self._connect()
            except sqlite3.Error as exc:
                raise unavailable(exc) from exc
        return conn

    @contextmanager
    def write(self, promise: bool = False, wait: float | None = None
              ) -> Iterator[sqlite3.Connection]:
        """A `BEGIN IMMEDIATE` transaction, committed on exit. `promise`: commit at the
        durability level of writes made for a caller; `wait`: seconds to wait for the write
        lock (default: the busy timeout)."""
        if self.memory:
            with self.read() as conn:
                yield from self._transaction(conn, promise, wait)
            return
        # a file's connection: this thread's own, taken directly (not through read(): one
        # context manager less per write, a few µs of a single enqueue)
        yield from self._transaction(self._thread_conn(), promise, wait)

    def _transaction(self, conn: sqlite3.Connection, promise: bool, wait: float | None
                     ) -> Iterator[sqlite3.Connection]:
        try:
            if not self.memory:
                self._tune(conn, self.durability.level(promise),
                           self.busy_timeout if wait is None else wait)
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise unavailable(exc) from exc
        try:
            yield conn
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(conn)
            raise unavailable(exc) from exc
        except BaseException:
            _rollback(conn)
            raise

    def _tune(self, conn: sqlite3.Connection, level: str, wait: float) -> None:
        tuning: Tuning | None = getattr(self._local, "tuning", None)
        if tuning is None:
            tuning = self._local.tuning = Tuning(synchronous=self.durability.work)
        if tuning.synchronous != level:
            conn.execute(f"PRAGMA synchronous = {level}")
            tuning.synchronous = level
        busy_ms = int(wait * 1000)
        if tuning.busy_ms != busy_ms:
            conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
            tuning.busy_ms = busy_ms

    def release_thread(self) -> None:
        """Close the calling thread's connection (a thread that ends closes its own)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            return
        with self._all_lock:
            if conn in self._all:
                self._all.remove(conn)
        self._local.conn = self._local.tuning = None
        with suppress(sqlite3.Error):
            conn.close()

    def close(self) -> None:
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            with suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()
        self._memory_conn = None


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:  # SQLite may have rolled back already (a full disk, say)
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def unavailable(exc: sqlite3.Error) -> StoreUnavailable:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return StoreUnavailable(f"the SQLite store stayed locked past its busy timeout: {text}")
    if "full" in text:
        return StoreUnavailable(f"the SQLite store cannot write, the disk is full: {text}")
    return StoreUnavailable(f"the SQLite store failed: {text}")
