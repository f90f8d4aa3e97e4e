"""Slow clients are cut off: uvicorn's h11 protocol, with a deadline for each phase of a request.

- headers: from the moment a connection opens (or the first byte of a next request on a kept
  connection) its request line and headers must be in within CONVEYOR_HTTP_HEADER_TIMEOUT;
- body: from the end of the headers, the whole body within CONVEYOR_HTTP_BODY_TIMEOUT;
- idle: a kept-alive connection with no next request is closed after CONVEYOR_HTTP_IDLE_TIMEOUT
  (uvicorn's timeout_keep_alive);
- at most CONVEYOR_HTTP_MAX_CONNECTIONS connections; past that, requests are answered 503
  (uvicorn's limit_concurrency), and the slow ones are closed by their deadlines.

A deadline is fixed when its phase begins: a client that trickles one byte a second does not
move it. While the app works on a request (and streams its answer, an event stream included),
no deadline runs.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

MAX_HEADER_BYTES = 32 * 1024  # h11's limit for a request line and headers not yet complete


class DeadlineH11Protocol(H11Protocol):
    header_timeout = 10.0
    body_timeout = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase: str | None = None
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._enter("headers")

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        state = self.conn.their_state
        self._enter("headers" if state is h11.IDLE else "body" if state is h11.SEND_BODY
                    else None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._enter(None)
        super().connection_lost(exc)

    def _enter(self, phase: str | None) -> None:
        if phase == self._phase:
            return  # same phase: the deadline set when it began still holds
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._phase = phase
        if phase is not None:
            timeout = self.header_timeout if phase == "headers" else self.body_timeout
            self._deadline = self.loop.call_later(timeout, self._too_slow)

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.logger.debug("closing a connection too slow to send its request %s",
                              self._phase)
            self.transport.close()


def protocol_class(header_timeout: float, body_timeout: float) -> type[DeadlineH11Protocol]:
    """The protocol with these deadlines (uvicorn builds one instance per connection)."""
    return type("ConveyorH11Protocol", (DeadlineH11Protocol,),
                {"header_timeout": header_timeout, "body_timeout": body_timeout})


def server_options(settings: Any) -> dict[str, Any]:
    """The uvicorn.Config options of the four settings."""
    return {"http": protocol_class(settings.http_header_timeout, settings.http_body_timeout),
            "timeout_keep_alive": settings.http_idle_timeout,
            "limit_concurrency": settings.http_max_connections,
            "h11_max_incomplete_event_size": MAX_HEADER_BYTES}
