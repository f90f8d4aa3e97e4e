"""What a RateLimited(retry_in, slow=...) changed, and whether the workers must hear of it.

A slow-down (a queue's, a task's or a key's) ends at the latest end asked for. A storm of
429s asks again and again within one slow-down: each moves the end a little later, or not
at all. Only a slow-down that begins (none was in force) wakes every worker (a `*limits`
wake: they read the limits again and claim under it at once). Moving the end of one in force
changes nothing a worker must hear at once: it holds back already, and when it asks when the
queue has room again (Store.room_at, at the old end) it learns the later end. One wake per
slow-down, not one per 429.
"""

from __future__ import annotations

from typing import NamedTuple


class SlowDownChange(NamedTuple):
    moved: bool  # the slow-down began, or its end moved later
    began: bool  # none was in force before: wake the workers


def change(before: float | None, after: float, now: float) -> SlowDownChange:
    """From the end before (None: no slow-down ever), the end after, and the store's clock.

    >>> change(None, 30.0, 0.0), change(30.0, 31.0, 1.0), change(30.0, 30.0, 2.0)
    (SlowDownChange(moved=True, began=True), SlowDownChange(moved=True, began=False), \
SlowDownChange(moved=False, began=False))
    >>> change(30.0, 45.0, 40.0)   # the last one had ended: a new one begins
    SlowDownChange(moved=True, began=True)
    """
    if before is None or before <= now:
        return SlowDownChange(True, True)
    return SlowDownChange(after > before, False)
