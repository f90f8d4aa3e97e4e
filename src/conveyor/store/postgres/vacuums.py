"""VACUUMs of the tables Conveyor itself churns (count deltas, pending attempts, attempts),
each at most every so often per store: after a fold that moved rows, not at autovacuum's
pace (which may lag, or be off). A vacuum that would wait for a lock is skipped (the
statements say SKIP_LOCKED)."""

from __future__ import annotations

import time
from typing import Any


async def vacuum_at_most_every(store: Any, statement: str, every: float) -> None:
    """Run `statement` (a VACUUM template) through `store._count` unless this store ran it
    less than `every` seconds ago; the first call runs it."""
    now = time.monotonic()
    last: dict[str, float] = store.__dict__.setdefault("_vacuumed_at", {})
    if now - last.get(statement, now - every) >= every:
        last[statement] = now
        await store._count(statement, {})
