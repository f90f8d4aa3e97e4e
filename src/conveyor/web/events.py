"""The live event stream: one subscription to the store's event feed, fanned out to every
server-sent-events client (each filtered to what its token may see)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import orjson

from ..app import Conveyor
from ..job import JobEvent

log = logging.getLogger("conveyor.web")
KEEPALIVE = 15.0
CLIENT_BUFFER = 2000  # batches a slow client may fall behind before it is told to reload


@dataclass(frozen=True, slots=True)
class EventFilter:
    tenant: str | None = None            # None: every tenant (admin)
    queues: frozenset[str] = frozenset()
    states: frozenset[str] = frozenset()
    ids: frozenset[str] = frozenset()

    def accepts(self, event: JobEvent) -> bool:
        return ((self.tenant is None or event.tenant == self.tenant)
                and (not self.queues or event.queue in self.queues)
                and (not self.states or event.state in self.states)
                and (not self.ids or event.id in self.ids))


class Client:
    def __init__(self, where: EventFilter) -> None:
        self.where = where
        self.queue: asyncio.Queue[list[JobEvent] | None] = asyncio.Queue(CLIENT_BUFFER)
        self.overflowed = False

    def offer(self, events: list[JobEvent]) -> None:
        mine = [e for e in events if self.where.accepts(e)]
        if not mine or self.overflowed:
            return
        try:
            self.queue.put_nowait(mine)
        except asyncio.QueueFull:
            self.overflowed = True

    def close(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)


class EventHub:
    """Subscribes once to `conveyor.store.subscribe` and hands each batch to listeners
    (metrics, history) and to the connected stream clients."""

    def __init__(self, conveyor: Conveyor) -> None:
        self.conveyor = conveyor
        self.clients: set[Client] = set()
        self.listeners: list[Callable[[list[JobEvent]], None]] = []
        self._stop: Callable[[], Awaitable[None]] | None = None

    def add_listener(self, listener: Callable[[list[JobEvent]], None]) -> None:
        self.listeners.append(listener)

    async def start(self) -> None:
        """Subscribe to the event feed. Without it the server still runs; pages then only
        change when reloaded, which is logged once here."""
        try:
            self._stop = await self.conveyor.store.subscribe(self.publish)
        except Exception:
            log.exception("the store's event feed is unavailable: no live updates")

    async def stop(self) -> None:
        self.close_clients()
        if self._stop is not None:
            await self._stop()
            self._stop = None

    def close_clients(self) -> None:
        """End every open stream (the server is shutting down)."""
        for client in list(self.clients):
            client.close()

    def publish(self, events: list[JobEvent]) -> None:
        for listener in self.listeners:
            try:
                listener(events)
            except Exception:  # a broken listener must not stop the stream
                log.exception("event listener failed")
        for client in list(self.clients):
            client.offer(events)

    def connect(self, where: EventFilter) -> Client:
        client = Client(where)
        self.clients.add(client)
        return client

    def disconnect(self, client: Client) -> None:
        self.clients.discard(client)


def event_json(event: JobEvent) -> dict[str, object]:
    return {"id": event.id, "state": event.state, "queue": event.queue, "task": event.task,
            "tenant": event.tenant, "progress": event.progress}


def format_batch(events: list[JobEvent]) -> str:
    """One SSE message per event: `event: job` (state change) or `event: progress`."""
    parts = []
    for event in events:
        kind = "progress" if event.progress is not None and event.state == "running" else "job"
        parts.append(f"event: {kind}\ndata: {orjson.dumps(event_json(event)).decode()}\n\n")
    return "".join(parts)


async def stream(hub: EventHub, client: Client) -> AsyncIterator[str]:
    """The body of a text/event-stream response, until the client goes or the hub closes."""
    try:
        yield "retry: 2000\nevent: ready\ndata: {}\n\n"
        while True:
            try:
                batch = await asyncio.wait_for(client.queue.get(), KEEPALIVE)
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            if batch is None:
                return
            yield format_batch(batch)
            if client.overflowed and client.queue.empty():
                yield "event: overflow\ndata: {}\n\n"
                return
    finally:
        hub.disconnect(client)
