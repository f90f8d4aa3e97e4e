"""LISTEN on a dedicated connection that reconnects and re-subscribes by itself.

Notifications are hints (DESIGN section 6): a worker keeps polling, so a lost notification
only delays a job until the next poll. What must not happen is a LISTEN connection that dies
silently and is never noticed, so the listener pings its connection whenever it has heard
listened for `ping_every` seconds, and after every reconnect it wakes its callback once with
"*" (anything sent while it was away was missed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from ... import _rng

log = logging.getLogger("conveyor.store.postgres")

_FIRST_BACKOFF = 0.1
_MAX_BACKOFF = 5.0


class Listener:
    """Calls `callback(queue)` on the loop that started it, for every NOTIFY on `channel`."""

    def __init__(self, conninfo: str, channel: str, callback: Callable[[str], None],
                 ping_every: float = 15.0) -> None:
        self.conninfo = conninfo
        self.channel = channel
        self.callback = callback
        self.ping_every = ping_every
        self.reconnects = 0
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def backend_pid(self) -> int | None:
        """The server process of the LISTEN connection; None while it is reconnecting."""
        conn = self._conn
        return None if conn is None or conn.closed else conn.info.backend_pid

    async def start(self) -> None:
        """Subscribe now when the server is reachable (so a notification sent right after
        start is heard), then keep listening in a background task."""
        try:
            await self._subscribe()
        except psycopg.OperationalError as exc:
            log.warning("LISTEN %s failed, will retry in the background: %s", self.channel, exc)
        self._task = asyncio.get_running_loop().create_task(self._run(),
                                                            name=f"listen-{self.channel}")

    async def stop(self) -> None:
        try:
            if self._task is not None:
                self._task.cancel()
                try:
                    await self._task
                except asyncio.CancelledError:
                    current = asyncio.current_task()
                    if current is not None and current.cancelling():
                        raise  # a cancel of the caller's own, not the listener's end
                self._task = None
        finally:
            await self._disconnect()

    async def _subscribe(self) -> None:
        conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
        try:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        except BaseException:
            await conn.close()
            raise
        self._conn = conn

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _run(self) -> None:
        backoff = _FIRST_BACKOFF
        while True:
            try:
                if self._conn is None:
                    await self._subscribe()
                    self.reconnects += 1
                    log.info("LISTEN %s re-subscribed", self.channel)
                    self._deliver("*")
                backoff = _FIRST_BACKOFF
                await self._listen_then_ping()
            except psycopg.Error as exc:
                log.warning("LISTEN %s connection lost, reconnecting in %.1fs: %s",
                            self.channel, backoff, exc)
                await self._disconnect()
                await asyncio.sleep(backoff * _rng.uniform(0.8, 1.2))
                backoff = min(backoff * 2, _MAX_BACKOFF)

    async def _listen_then_ping(self) -> None:
        """Deliver notifications for `ping_every` seconds, then prove the connection is still
        alive: a connection that died silently raises here, and we reconnect."""
        assert self._conn is not None
        async for notification in self._conn.notifies(timeout=self.ping_every):
            self._deliver(notification.payload)
        try:  # a ping that never comes back is a dead connection too
            await asyncio.wait_for(self._conn.execute("SELECT 1"), self.ping_every)
        except TimeoutError:
            raise psycopg.OperationalError("LISTEN connection did not answer a ping") from None

    def _deliver(self, queue: str) -> None:
        try:
            self.callback(queue)
        except Exception:  # a faulty callback must not end the subscription
            log.exception("listen callback failed for queue %r", queue)
