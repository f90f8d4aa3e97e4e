"""Cancellation that a library hid.

A query cancelled twice (a shutdown's cancel, then the runner's) makes psycopg close the
connection; the transaction's or the pool's exit then fails on the closed connection and
raises an OperationalError in place of the CancelledError. A loop that logs errors and goes
on (maintenance's concerns) would then never stop, and `asyncio.run` waits for it for ever
(a worker that did not exit after SIGTERM). The task still counts the request
(Task.cancelling), so the error can be put back for what it is.
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


def raise_if_cancelled(exc: BaseException) -> None:
    """Raise CancelledError (from `exc`) when `exc` stands in for a pending cancellation."""
    if cancel_requested():
        raise asyncio.CancelledError() from exc
