"""The WHERE clause of a jobs list or count, built alike for every store from its dialect's
fixed clauses (one per JobFilter field, joined in a fixed order: never from data).

The states are written as literals taken from the JobState enum (`state = 'running'`, or
`state IN ('queued', 'running')`), never as a bound list: the planner then sees the very
predicate of a partial index (`WHERE state = 'running'`, migration 0015) and can use it,
in a prepared (generic) plan too. The enum is closed, so the texts are a fixed set."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..job import JobFilter, JobState

STATE_IS = {state: f"state = '{state.value}'" for state in JobState}


def states_clause(states: Sequence[JobState | str], clauses: Mapping[str, str]) -> str:
    """`state = 'dead'` for one state, `state IN ('queued', 'running')` for several (in the
    enum's order, so one set of states is one statement text). The dialect's "states"
    clause is the column as its planner should see it (SQLite: `+state`, which no index
    serves); "state:NAME" overrides the text for that one state."""
    chosen = [state for state in JobState if state in {JobState(s) for s in states}]
    column = clauses["states"]
    if len(chosen) == 1:
        return clauses.get(f"state:{chosen[0].value}",
                           STATE_IS[chosen[0]].replace("state", column, 1))
    return f"{column} IN (" + ", ".join(f"'{state.value}'" for state in chosen) + ")"


def where_clause(where: JobFilter, after: str | None, limit: int, clauses: Mapping[str, str],
                 listed: Callable[[Sequence[str]], Any]) -> tuple[str, dict[str, Any]]:
    """(" WHERE ...", parameters). `listed` makes a list parameter (tasks, queues) as the
    dialect takes it; `retrying` widens the states clause ("either of these states, or
    waiting to retry")."""
    params: dict[str, Any] = {"limit": limit, "after": after}
    chosen = []
    for name, clause in clauses.items():
        if ":" in name:  # a variant ("state:queued", "batch_id:after"), chosen below
            continue
        value = after if name == "after" else getattr(where, name)
        if not value or name == "retrying":
            continue
        if name == "states":
            chosen.append(states_clause(value, clauses))
            continue
        # a clause may have a text of its own for a page after a cursor: each text is then
        # prepared with a plan whose bounds are real parameters (a prepared statement's
        # generic plan cannot narrow an index range by `(%(after)s IS NULL OR ...)`)
        chosen.append(clauses.get(f"{name}:after", clause) if after else clause)
        params.setdefault(name, listed([str(v) for v in value])
                          if isinstance(value, tuple) else value)
    if where.retrying:
        retrying = clauses["retrying"]
        if where.states:
            at = chosen.index(states_clause(where.states, clauses))
            chosen[at] = f"({chosen[at]} OR {retrying})"
        else:
            chosen.insert(0, retrying)
    return (" WHERE " + " AND ".join(chosen) if chosen else ""), params
