"""Reaching PostgreSQL: the URL, one connection pool per event loop, and outage errors.

Why a pool per event loop: the app's sync door runs this store on a private "portal" loop in
a background thread, while a worker uses the same store object from its own main loop (and
its heartbeat thread goes through the portal). An asyncio pool and its connections belong to
the loop that opened them, so each loop that touches the store gets its own small pool,
opened on first use and closed with the store. And each loop's upkeep (a worker's
maintenance, store/lanes.py) gets a pool of its own of at most UPKEEP_POOL_SIZE connections,
so the exchange's pool grows only with the exchange, and upkeep's statements (run over and
over on one connection) are prepared there once rather than planned on whichever connection
of the shared pool came next.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import logging
import re
import select
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolClosed, PoolTimeout

from ... import _rng
from ..._cancel import raise_if_cancelled
from ...errors import ConfigError, SchemaOutdated, StoreUnavailable
from ..lanes import UPKEEP

log = logging.getLogger("conveyor.store.postgres")

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_OWN_OPTIONS = ("schema", "pool_size", "events", "prepare", "migrate_lock_timeout",
                "migrate_wait")
_CHECK_AFTER_IDLE = 2.0   # seconds: a connection idle longer is pinged before use
_GETCONN_TIMEOUT = 10.0   # seconds a call waits for a connection before StoreUnavailable
# Maintenance sends one store call at a time (worker/maintenance.py); the second connection is
# for what it starts without waiting its turn (an alert's enqueue, a hook's store call).
UPKEEP_POOL_SIZE = 2
# libpq's TCP options (ignored on Unix sockets). Without them a connection to a host that went
# away hangs a read until the kernel gives up (15 minutes): keepalives find an idle one dead
# within 10 + 3 * 5 s, and tcp_user_timeout fails a call whose data goes unacknowledged 15 s.
_NETWORK_DEFAULTS = {"keepalives": "1", "keepalives_idle": "10", "keepalives_interval": "5",
                     "keepalives_count": "3", "tcp_user_timeout": "15000"}


@dataclass(frozen=True, slots=True)
class PostgresURL:
    conninfo: str        # what psycopg connects with (Conveyor's own options removed)
    schema: str          # unquoted; validated
    pool_size: int
    events: bool         # publish the job event feed (NOTIFY per state change batch)
    prepare: bool        # server-side prepared statements (off behind PgBouncer's
                         # transaction pooling)
    where: str           # host:port/database for messages (never the password)
    # a migration's statements wait this long for a table lock, then it rolls back and
    # tries again (upgrade.py), for at most migrate_wait seconds in all; 0: wait for ever
    migrate_lock_timeout: float = 2.0
    migrate_wait: float = 600.0

    @property
    def quoted_schema(self) -> str:
        return f'"{self.schema}"'

    @property
    def channel(self) -> str:
        """The wake-up NOTIFY channel of this schema."""
        return _channel("conveyor_", self.schema)

    @property
    def events_channel(self) -> str:
        """The event feed's NOTIFY channel of this schema."""
        return _channel("conveyor_events_", self.schema)


def _channel(prefix: str, schema: str) -> str:
    """Channel names are identifiers: they stop at 63 bytes, so long schemas are hashed."""
    name = prefix + schema
    if len(name) <= 63:
        return name
    return prefix + hashlib.sha1(schema.encode()).hexdigest()[:24]


def parse_url(url: str) -> PostgresURL:
    """postgresql://user@host:5432/db?schema=NAME&pool_size=10&events=on&prepare=on
    &migrate_lock_timeout=2&migrate_wait=600 (any other option goes to libpq, e.g.
    sslmode=require)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"not a PostgreSQL URL: {url!r}")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    schema = options.get("schema") or "public"
    if not _SCHEMA_NAME.match(schema):
        raise ConfigError(f"schema {schema!r} in the store URL must be letters, digits and "
                          "underscores, starting with a letter or underscore (at most 63)")
    try:
        pool_size = int(options.get("pool_size", "10"))
    except ValueError:
        raise ConfigError("pool_size in the store URL must be a whole number") from None
    if pool_size < 1:
        raise ConfigError("pool_size in the store URL must be at least 1")
    events = _switch(options.get("events", "on"))
    prepare = _switch(options.get("prepare", "on"))
    lock_timeout = _seconds(options, "migrate_lock_timeout", 2.0)
    wait = _seconds(options, "migrate_wait", 600.0)
    passed = {k: v for k, v in options.items() if k not in _OWN_OPTIONS}
    passed.setdefault("connect_timeout", "5")
    for option, value in _NETWORK_DEFAULTS.items():  # a host cut off fails, never hangs
        passed.setdefault(option, value)
    passed.setdefault("application_name", "conveyor")
    query = urlencode(passed, quote_via=quote)  # %20, not "+": libpq's URIs decode only %XX
    conninfo = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
    host = parts.hostname or "localhost"
    where = f"{host}:{parts.port or 5432}{parts.path or '/'}"
    return PostgresURL(conninfo, schema, pool_size, events, prepare, where, lock_timeout, wait)


def _seconds(options: dict[str, str], name: str, default: float) -> float:
    try:
        value = float(options.get(name, default))
    except ValueError:
        raise ConfigError(f"{name} in the store URL must be a number of seconds") from None
    if not 0 <= value <= _LONGEST_TIMEOUT:  # the server's lock_timeout is an int of ms
        raise ConfigError(f"{name} in the store URL must be 0 to {_LONGEST_TIMEOUT:g} seconds")
    return value


_LONGEST_TIMEOUT = (2**31 - 1) / 1000


def _switch(value: str) -> bool:
    return value.lower() not in ("off", "false", "0", "no")


def outdated(exc: psycopg.errors.UndefinedColumn) -> SchemaOutdated:
    """A column this Conveyor uses is missing (new code, schema not migrated yet)."""
    return SchemaOutdated(None, None, str(exc).strip().splitlines()[0])


def unavailable(exc: BaseException, where: str) -> StoreUnavailable:
    """One clear message for every way the database can be out of reach."""
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, PoolTimeout):
        detail = (f"no connection free within {_GETCONN_TIMEOUT:g}s: the server is down or "
                  "slow, or pool_size in the URL is too small for this many callers")
    return StoreUnavailable(f"the PostgreSQL store at {where} is unavailable: {detail}")


class _OwnJitter:
    """psycopg_pool spreads each connection's lifetime by a draw from the random module's
    shared generator; a Conveyor pool draws from Conveyor's own (conveyor/_rng.py), so an
    application's seeded sequence, or a Hypothesis draw in another thread, is never moved
    by a connection opening. (Its reconnect backoff still draws from the shared one: it runs
    only while the server is unreachable.)"""

    @classmethod
    def _jitter(cls, value: float, min_pc: float, max_pc: float) -> float:
        return value * (1.0 + (max_pc - min_pc) * _rng.RNG.random() + min_pc)


class _AsyncPool(_OwnJitter, AsyncConnectionPool):
    pass


class _Pool(_OwnJitter, ConnectionPool):
    pass


class LoopPools:
    """One AsyncConnectionPool per event loop, opened on first use on that loop."""

    def __init__(self, url: PostgresURL) -> None:
        self.url = url
        # keyed by (loop, upkeep lane?)
        self._pools: dict[tuple[asyncio.AbstractEventLoop, bool], AsyncConnectionPool] = {}
        self._opening: dict[tuple[asyncio.AbstractEventLoop, bool],
                            asyncio.Future[AsyncConnectionPool]] = {}
        self._lock = threading.Lock()  # the dicts are shared between loops (threads)
        self._handed_out: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
        atexit.register(_close_at_exit, weakref.ref(self))

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """An autocommit connection of this loop's pool (its upkeep pool for upkeep's
        calls); outages become StoreUnavailable."""
        key = (asyncio.get_running_loop(), UPKEEP.get())
        pool = self._pools.get(key) or await self._pool(key)
        try:
            try:
                conn = await pool.getconn()
            except PoolClosed:
                if self._pools.get(key) is pool:
                    raise
                # close_loop() closed it as this call waited (a worker stopping on a loop
                # that goes on, as the demo's dashboard's): the loop's next pool serves it
                pool = self._pools.get(key) or await self._pool(key)
                conn = await pool.getconn()
            try:  # as pool.connection() does
                async with conn:
                    yield conn
            finally:
                await pool.putconn(conn)  # a closed pool's: the connection is closed
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise_if_cancelled(exc)  # the closed connection's error hid a cancel (_cancel.py)
            raise unavailable(exc, self.url.where) from exc
        except psycopg.errors.UndefinedColumn as exc:
            raise outdated(exc) from exc

    async def _pool(self, key: tuple[asyncio.AbstractEventLoop, bool]) -> AsyncConnectionPool:
        loop, upkeep = key
        with self._lock:
            self._forget_closed_loops()
            pending = self._opening.get(key)
            if pending is None:
                pending = self._opening[key] = loop.create_future()
                owner = True
            else:
                owner = False
        if not owner:
            return await asyncio.shield(pending)
        try:
            pool = await self._open_pool(UPKEEP_POOL_SIZE if upkeep else self.url.pool_size)
        except BaseException as exc:
            with self._lock:
                self._opening.pop(key, None)
            if isinstance(exc, Exception):
                pending.set_exception(exc)
                pending.exception()  # mark it retrieved: waiters (if any) re-raise it
            else:
                pending.cancel()
            raise
        with self._lock:
            self._pools[key] = pool
        pending.set_result(pool)
        return pool

    def _forget_closed_loops(self) -> None:
        """A pool whose loop has ended cannot be closed any more; drop it (its sockets close
        when its connections are collected). Caller holds the lock."""
        for key in [key for key in self._pools if key[0].is_closed()]:
            del self._pools[key]
            self._opening.pop(key, None)

    async def _open_pool(self, size: int) -> AsyncConnectionPool:
        await self._probe()
        pool = _AsyncPool(
            self.url.conninfo, min_size=1,
            kwargs={"autocommit": True, "prepare_threshold": 5 if self.url.prepare else None},
            max_size=size, open=False, timeout=_GETCONN_TIMEOUT,
            check=self._check, name=f"conveyor-{self.url.schema}",
            max_idle=300.0, reconnect_timeout=3600.0)
        try:
            await pool.open(wait=True, timeout=_GETCONN_TIMEOUT)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            await pool.close()
            raise unavailable(exc, self.url.where) from exc
        except BaseException:
            # cancelled while it opened (a shutdown in a worker's first moments): nobody
            # else can reach this pool, and its tasks would outlive the loop
            await asyncio.shield(pool.close())
            raise
        return pool

    async def _probe(self) -> None:
        """One direct connection first: a wrong URL or a server that is down fails at once
        with the server's own reason, instead of after the pool's retries time out."""
        try:
            conn = await psycopg.AsyncConnection.connect(self.url.conninfo)
        except psycopg.OperationalError as exc:
            raise unavailable(exc, self.url.where) from exc
        await conn.close()

    async def _check(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Before a pooled connection is handed out: an idle pool connection has nothing to
        read, so a readable socket means the server has said goodbye (a restart or a
        terminated backend sends its FATAL message to every connection). That look costs no
        round trip; a real ping is made only then, or after the connection sat idle a while.
        A failed ping discards the connection and the pool hands out another."""
        if _needs_ping(self._handed_out, conn):
            await AsyncConnectionPool.check_connection(conn)

    def close_running_elsewhere(self) -> None:
        """From plain sync code: close the pools whose loops still run in other threads (the
        sync door's portal), waiting a moment for each."""
        with self._lock:
            pools = [(loop, pool) for (loop, _), pool in self._pools.items()
                     if loop.is_running()]
        for loop, pool in pools:
            future = asyncio.run_coroutine_threadsafe(pool.close(timeout=1.0), loop)
            with contextlib.suppress(Exception):
                future.result(timeout=2.0)

    async def close_loop(self) -> None:
        """Close the running loop's pools (both lanes'); the next call on it opens new ones."""
        current = asyncio.get_running_loop()
        with self._lock:
            keys = [key for key in self._pools if key[0] is current]
            pools = [self._pools.pop(key) for key in keys]
            for key in keys:
                self._opening.pop(key, None)
        for pool in pools:
            await pool.close()

    async def close(self) -> None:
        """Close every loop's pool: this loop's here, a running loop's on that loop, and a
        closed loop's is forgotten (its connections end with it)."""
        with self._lock:
            pools, self._pools, self._opening = self._pools, {}, {}
        current = asyncio.get_running_loop()
        for (loop, _), pool in pools.items():
            if loop is current:
                await pool.close()
            elif loop.is_running():
                future = asyncio.run_coroutine_threadsafe(pool.close(), loop)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.wrap_future(future), timeout=5.0)


class BlockingPool:
    """A blocking pool for plain sync callers (the app's `enqueue` from a web view or a
    script): the statement goes straight out on the caller's thread, with no hop to the sync
    door's event loop. Opened on first use; outages become StoreUnavailable."""

    def __init__(self, url: PostgresURL) -> None:
        self.url = url
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()
        self._handed_out: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
        self._cursors: weakref.WeakKeyDictionary[Any, psycopg.Cursor[Any]] = (
            weakref.WeakKeyDictionary())
        self._suspect = False  # the last call met an outage: probe before waiting on the pool
        self._native: weakref.WeakKeyDictionary[Any, set[bytes]] = weakref.WeakKeyDictionary()

    @contextlib.contextmanager
    def connection(self) -> Iterator[tuple[psycopg.Connection[Any], psycopg.Cursor[Any]]]:
        """An autocommit connection and its cursor (one per connection, kept)."""
        pool = self._pool or self._open()
        try:
            conn = self._healthy(pool)
            try:
                cursor = self._cursors.get(conn)
                if cursor is None or cursor.closed:
                    cursor = self._cursors[conn] = conn.cursor()
                yield conn, cursor
            finally:
                pool.putconn(conn)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            self._suspect = True
            raise unavailable(exc, self.url.where) from exc
        except psycopg.errors.UndefinedColumn as exc:
            raise outdated(exc) from exc

    def prepared(self, conn: psycopg.Connection[Any]) -> set[bytes] | None:
        """Names of the statements prepared on `conn` by Conveyor itself through libpq
        (enqueue.NativeStatement); None when the URL turns prepared statements off."""
        if not self.url.prepare:
            return None
        names = self._native.get(conn)
        if names is None:
            names = self._native[conn] = set()
        return names

    def _healthy(self, pool: ConnectionPool) -> psycopg.Connection[Any]:
        """A pooled connection that answers. One that sat idle, or that the server wrote to
        unasked (its goodbye when it restarts), is pinged first; a dead one is dropped and
        the server probed: if it is down, StoreUnavailable now, not after the pool's wait
        for a connection it cannot make; if it is back, the next connection is tried."""
        for _ in range(self.url.pool_size + 1):
            if self._suspect:
                self._probe()
            conn = pool.getconn()
            if not _needs_ping(self._handed_out, conn):
                return conn
            try:
                ConnectionPool.check_connection(conn)
                return conn
            except psycopg.Error:
                conn.close()  # the pool replaces a closed connection
                pool.putconn(conn)
                self._suspect = True
        raise psycopg.OperationalError("no pooled connection answered")

    def _probe(self) -> None:
        """After a failure, one direct connection decides whether the server is there."""
        try:
            psycopg.connect(self.url.conninfo, connect_timeout=2).close()
        except psycopg.OperationalError as exc:
            raise unavailable(exc, self.url.where) from exc
        self._suspect = False

    def _open(self) -> ConnectionPool:
        with self._lock:
            if self._pool is not None:
                return self._pool
            self._probe()  # a wrong URL or a server that is down fails at once, with its reason
            pool = _Pool(
                self.url.conninfo, min_size=1, max_size=self.url.pool_size, open=False,
                kwargs={"autocommit": True, "prepare_threshold": 2 if self.url.prepare else None},
                timeout=_GETCONN_TIMEOUT, name=f"conveyor-{self.url.schema}-sync",
                max_idle=300.0,
                reconnect_timeout=3600.0)
            try:
                pool.open(wait=True, timeout=_GETCONN_TIMEOUT)
            except (psycopg.OperationalError, PoolTimeout) as exc:
                pool.close()
                raise unavailable(exc, self.url.where) from exc
            self._pool = pool
            return pool

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close(timeout=1.0)


def _needs_ping(handed_out: weakref.WeakKeyDictionary[Any, float], conn: Any) -> bool:
    """A connection not handed out for a while, or one the server has written to unasked
    (its goodbye after a restart), gets a real ping before use; any other goes out unchecked.
    The time is stamped here, at hand-out, rather than by a pool `reset` callback: with one,
    the pool returns every connection through its worker, a thread hop per call."""
    now = time.monotonic()
    at = handed_out.get(conn)
    handed_out[conn] = now
    return at is None or now - at > _CHECK_AFTER_IDLE or _has_input(conn)


def _has_input(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> bool:
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return True
    return bool(readable)


def _close_at_exit(pools: weakref.ref[LoopPools]) -> None:
    """A program that ends without closing its store (a CLI command, a script) still closes
    the portal's pool, so its tasks are not destroyed pending at interpreter exit."""
    alive = pools()
    if alive is not None:
        alive.close_running_elsewhere()
