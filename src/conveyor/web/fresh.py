"""Changes made through this server show at once on the pages read from shared copies.

The queues page and the dead page come from copies at most CONVEYOR_DASHBOARD_SNAPSHOT
seconds old, one per scope (snapshot.py). A request that may change something (any method
but GET, HEAD and OPTIONS: a pause, a resume, a purge, a limit, a retry, a discard, an
enqueue, from a dashboard form or the API) drops those copies as its response starts
(unless it was refused: 4xx, 5xx), so the page the browser is sent to next, or the API
client's next read, reads the store again.
Changes made elsewhere (workers, other servers, the CLI) show within the copy's age.

The overview and /metrics' gauges are not dropped: their copies are what keeps a dashboard
cheap while producers enqueue through the API many times a second.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


class DropOnChange:
    def __init__(self, app: ASGIApp, drop: Callable[[], None]) -> None:
        self.app = app
        self.drop = drop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE:
            await self.app(scope, receive, send)
            return

        status: int | None = None

        async def dropping(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if status < 400:
                    self.drop()
            await send(message)

        try:
            await self.app(scope, receive, dropping)
        finally:
            # also when it failed half-way, or before it answered; not for a refusal (a 401,
            # a 403, a 422 changed nothing): a stream of refused or malformed requests would
            # otherwise keep every viewer reading the store
            if status is None or status < 400:
                self.drop()
