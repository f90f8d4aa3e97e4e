"""The WHERE clause of a jobs list or count, built alike for every store from its dialect's
fixed clauses (one per JobFilter field, joined in a fixed order: never from data)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..job import JobFilter


def where_clause(where: JobFilter, after: str | None, limit: int, clauses: Mapping[str, str],
                 listed: Callable[[Sequence[str]], Any]) -> tuple[str, dict[str, Any]]:
    """(" WHERE ...", parameters). `listed` makes a list parameter (states, tasks, queues) as
    the dialect takes it; `retrying` widens the states clause ("either of these states, or
    waiting to retry")."""
    params: dict[str, Any] = {"limit": limit, "after": after}
    chosen = []
    for name, clause in clauses.items():
        value = after if name == "after" else getattr(where, name)
        if value and name != "retrying":
            chosen.append(clause)
            params.setdefault(name, listed([str(v) for v in value])
                              if isinstance(value, tuple) else value)
    if where.retrying:
        retrying = clauses["retrying"]
        if where.states:
            at = chosen.index(clauses["states"])
            chosen[at] = f"({chosen[at]} OR {retrying})"
        else:
            chosen.insert(0, retrying)
    return (" WHERE " + " AND ".join(chosen) if chosen else ""), params
