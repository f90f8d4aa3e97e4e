"""The event feed over NOTIFY: job state changes and progress, as the statements that make
them publish them (queries.feed): JSON arrays of [id, state, queue, task, tenant, progress],
ten rows a payload. A bulk insert sends [[id, ...], state, queue, task, tenant, progress]
items instead, one per group of jobs that share all but the id (queries.grouped_feed).
Like wake-ups, events are hints for live views (the dashboard); the jobs table stays the
truth.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from ...job import JobEvent


def decode_events(payload: str) -> list[JobEvent]:
    events: list[JobEvent] = []
    for item in orjson.loads(payload):
        if isinstance(item[0], list):
            events.extend(JobEvent(job_id, *item[1:]) for job_id in item[0])
        else:
            events.append(JobEvent(*item))
    return events


def event_callback(callback: Callable[[list[JobEvent]], None]) -> Callable[[str], None]:
    """Adapt a listener's raw payloads to batches of JobEvent ("*" = reconnected: skip)."""

    def deliver(payload: str) -> None:
        if payload != "*":
            callback(decode_events(payload))

    return deliver
