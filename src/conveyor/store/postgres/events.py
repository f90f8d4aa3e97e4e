"""The event feed over NOTIFY: job state changes and progress, batched into small payloads.

A NOTIFY payload must stay under 8000 bytes, so a batch of changes travels as one or more
JSON arrays of [id, state, queue, task, tenant, progress]. Like wake-ups, events are hints
for live views (the dashboard); the jobs table stays the truth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson

from ...job import JobEvent

_PAYLOAD_LIMIT = 7000  # bytes; NOTIFY refuses 8000 and more


def encode_events(rows: Iterable[tuple[Any, ...]]) -> list[str]:
    """Rows of (id, state, queue, task, tenant, progress) as NOTIFY payloads."""
    payloads: list[str] = []
    chunk: list[bytes] = []
    size = 2
    for row in rows:
        item = orjson.dumps([row[0], row[1], row[2], row[3], row[4] or None, row[5]])
        if chunk and size + len(item) + 1 > _PAYLOAD_LIMIT:
            payloads.append(_join(chunk))
            chunk, size = [], 2
        chunk.append(item)
        size += len(item) + 1
    if chunk:
        payloads.append(_join(chunk))
    return payloads


def _join(items: list[bytes]) -> str:
    return (b"[" + b",".join(items) + b"]").decode()


def decode_events(payload: str) -> list[JobEvent]:
    return [JobEvent(*item) for item in orjson.loads(payload)]


def event_callback(callback: Callable[[list[JobEvent]], None]) -> Callable[[str], None]:
    """Adapt a listener's raw payloads to batches of JobEvent ("*" = reconnected: skip)."""

    def deliver(payload: str) -> None:
        if payload != "*":
            callback(decode_events(payload))

    return deliver
