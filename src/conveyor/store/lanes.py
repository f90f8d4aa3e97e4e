"""Which lane a store call travels in. A worker's background upkeep (maintenance: promote,
folds, rescue, expire, prune) runs inside `upkeep()`; a store may serve such calls from a
connection of their own, apart from the claim and settle exchange's. The PostgreSQL store
does (connection.py): each of its connections is a server backend that warms its caches and
plans its statements for itself, and upkeep run concurrently across a shared pool grew it
to 7-8 backends per worker process, each planning the exchange's statements and upkeep's
again (issue 15, bench/results/2026-12-09-pgplan.md). Other stores ignore the lane.

A context variable, not a parameter through every store method: asyncio copies it into the
tasks started under it, so every call maintenance makes (and only those) carries it.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")

UPKEEP: ContextVar[bool] = ContextVar("conveyor_store_upkeep", default=False)


@contextlib.contextmanager
def upkeep() -> Iterator[None]:
    """Store calls made inside (and in tasks started inside) are background upkeep."""
    token = UPKEEP.set(True)
    try:
        yield
    finally:
        UPKEEP.reset(token)


def outside_upkeep(function: Callable[[T], None], argument: T) -> None:
    """`function(argument)` outside the upkeep lane, and so every task it starts: hooks that
    maintenance fires (a rescue's dead events) may be many at once, each with its own store
    calls, which the upkeep lane's few connections must not queue behind one another."""
    def call() -> None:
        UPKEEP.set(False)
        function(argument)

    contextvars.copy_context().run(call)
