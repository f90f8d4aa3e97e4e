"""Wake-ups and the event feed over LISTEN/NOTIFY, for one store.

Sending: wake-ups and events that belong to a write go out inside that write's transaction
(queries.py); a bare `notify` is sent here, in the background on the caller's loop, because
it is a hint and must not hold the caller up. Receiving: every
`listen` or `subscribe` gets its own Listener (a dedicated connection on its loop).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import psycopg

from ...job import JobEvent
from . import queries as q
from .connection import LoopPools
from .events import event_callback
from .listener import Listener

log = logging.getLogger("conveyor.store.postgres")

Stopper = Callable[[], Awaitable[None]]


class Broadcaster:
    def __init__(self, pools: LoopPools, render: Callable[[str], str]) -> None:
        self.pools = pools
        self.target = pools.url
        self.notify_sql = render(q.NOTIFY)
        self._listeners: list[tuple[asyncio.AbstractEventLoop, Listener]] = []
        self._sending: set[asyncio.Task[None]] = set()

    # --- sending --------------------------------------------------------------------------

    def notify(self, queues: Sequence[str]) -> None:
        """Wake the listeners of these queues."""
        self._send(self.target.channel, list(queues))

    def _send(self, channel: str, queues: list[str]) -> None:
        params = {"channel": channel, "queues": queues}
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called from plain sync code: one short connection
            with psycopg.connect(self.target.conninfo, autocommit=True) as conn:
                conn.execute(self.notify_sql, params)
            return
        task = loop.create_task(self._send_async(params))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send_async(self, params: dict[str, Any]) -> None:
        try:
            async with self.pools.connection() as conn:
                await conn.execute(self.notify_sql, params)
        except Exception as exc:  # a lost hint only delays a job until the next poll
            log.warning("could not send a notification on %s: %s", params["channel"], exc)

    # --- receiving ------------------------------------------------------------------------

    async def listen(self, callback: Callable[[str], None]) -> tuple[Stopper, Listener]:
        """Wake-ups: a stopper, and the listener (its connection's backend_pid)."""
        return await self._start(self.target.channel, callback)

    async def subscribe(self, callback: Callable[[list[JobEvent]], None]) -> Stopper:
        stop, _ = await self._start(self.target.events_channel, event_callback(callback))
        return stop

    async def _start(self, channel: str, callback: Callable[[str], None]
                     ) -> tuple[Stopper, Listener]:
        listener = Listener(self.target.conninfo, channel, callback)
        await listener.start()
        entry = (asyncio.get_running_loop(), listener)
        self._listeners.append(entry)

        async def stop() -> None:
            if entry in self._listeners:
                self._listeners.remove(entry)
            await listener.stop()

        return stop, listener

    async def close(self) -> None:
        """Stop this loop's listeners and wait for hints still being sent from it."""
        current = asyncio.get_running_loop()
        mine = [entry for entry in self._listeners if entry[0] is current]
        for entry in mine:
            self._listeners.remove(entry)
            await entry[1].stop()
        pending = [t for t in self._sending if t.get_loop() is current]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
