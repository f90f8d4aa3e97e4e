"""Cancellation that a library hid.

A query cancelled twice (a shutdown's cancel, then the runner's) makes psycopg close the
connection; the transaction's or the pool's exit then fails on the closed connection and
raises an OperationalError in place of the CancelledError. A loop that logs errors and goes
on (maintenance's concerns) would then never stop, and `asyncio.run` waits for it for ever
(a worker that did not exit after SIGTERM). The error carries the CancelledError it replaced
(its context) and the task still counts the request (Task.cancelling): with both, the error
is put back for what it is. Either alone is not enough: a task that once swallowed a cancel
keeps counting it, and a real outage met then is still an outage.
"""

from __future__ import annotations

import asyncio


def cancel_requested() -> bool:
    """True when the running task has been asked to stop and has not taken it back."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running loop: plain sync code
        return False
    return task is not None and task.cancelling() > 0


def replaced_a_cancel(exc: BaseException) -> bool:
    """Whether `exc` was raised while a CancelledError was being handled (in its chain)."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc.__context__, exc.__cause__]
    while stack:
        link = stack.pop()
        if link is None or id(link) in seen:
            continue
        if isinstance(link, asyncio.CancelledError):
            return True
        seen.add(id(link))
        stack += [link.__context__, link.__cause__]
    return False


def raise_if_cancelled(exc: BaseException) -> None:
    """Raise CancelledError (from `exc`) when `exc` stands in for a pending cancellation."""
    if cancel_requested() and replaced_a_cancel(exc):
        raise asyncio.CancelledError() from exc
