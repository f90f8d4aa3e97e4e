"""The event feed over NOTIFY: job state changes and progress, as the statements that make
them publish them (queries.feed): JSON arrays of [id, state, queue, task, tenant, progress],
ten rows a payload. Like wake-ups, events are hints for live views (the dashboard); the jobs
table stays the truth.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from ...job import JobEvent


def decode_events(payload: str) -> list[JobEvent]:
    return [JobEvent(*item) for item in orjson.loads(payload)]


def event_callback(callback: Callable[[list[JobEvent]], None]) -> Callable[[str], None]:
    """Adapt a listener's raw payloads to batches of JobEvent ("*" = reconnected: skip)."""

    def deliver(payload: str) -> None:
        if payload != "*":
            callback(decode_events(payload))

    return deliver
