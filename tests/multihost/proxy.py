"""A small TCP proxy that adds latency and loss between a host and the database.

    with Proxy(("10.9.8.1", 0), ("10.9.8.10", 5432), delay=0.020, loss=0.01) as proxy:
        url = f"postgresql://postgres@10.9.8.1:{proxy.port}/postgres"

This kernel has neither `tc netem` nor iptables, so the network is degraded here instead: every
chunk read is forwarded `delay` seconds later, in each direction, so a round trip costs twice
`delay`. A byte stream cannot drop a packet, so a loss is what TCP makes of one: with
probability `loss` a chunk waits one retransmission timeout (`rto`, 200 ms as Linux's minimum)
more. Order is kept: a chunk never overtakes the one before it. It runs its own event loop in
a thread; `stop()` closes every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from types import TracebackType


class Proxy:
    def __init__(self, listen: tuple[str, int], target: tuple[str, int], *,
                 delay: float = 0.0, loss: float = 0.0, rto: float = 0.2,
                 seed: int | None = None) -> None:
        self.listen = listen
        self.target = target
        self.delay = delay
        self.loss = loss
        self.rto = rto
        self.random = random.Random(seed)
        self.port = 0
        self.connections = 0
        self.chunks = 0
        self.lost_chunks = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="netem-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def __enter__(self) -> Proxy:
        self.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None
                 ) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the proxy did not start")

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._accept, *self.listen))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, client_r: asyncio.StreamReader,
                      client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            self._tasks.discard(task)
            return
        try:
            await asyncio.gather(self._pipe(client_r, server_w), self._pipe(server_r, client_w))
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for writer in (client_w, server_w):
                writer.close()
            self._tasks.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read chunks now, write each at its time: `delay` later, and `rto` more if lost."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        async def send() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                    return
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()

        sender = loop.create_task(send())
        last_due = 0.0
        try:
            while True:
                data = await reader.read(65536)
                due = loop.time() + self.delay
                if data:
                    self.chunks += 1
                    if self.random.random() < self.loss:
                        self.lost_chunks += 1
                        due += self.rto
                last_due = max(last_due, due)  # never overtake the chunk before
                queue.put_nowait((last_due, data))
                if not data:
                    break
            await sender
        finally:
            sender.cancel()
