"""A read's byte budget (list_jobs and dead_letters with `budget=`): rows are taken until
their bodies reach it. The job that reaches it is in and the first always is, so a page
always moves on; each store counts the bodies as it stores them (PostgreSQL in its SQL, so
the rows past the budget never leave the server; SQLite as it steps, so they are never read).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

Row = TypeVar("Row")


def within_budget(rows: Iterable[Row], budget: int | None, size: Callable[[Row], int]
                  ) -> list[Row]:
    """The rows up to and including the one whose size brings the sum to `budget`; all
    rows for None. `rows` is consumed lazily: nothing past that row is fetched."""
    taken: list[Row] = []
    spent = 0
    for row in rows:
        taken.append(row)
        spent += size(row)
        if budget is not None and spent >= budget:
            break
    return taken
