"""Acting on every job a filter matches, not just the rows on screen.

The jobs page says how many jobs match ("2,950 jobs match", "10,000+" past the count's cap)
and offers only the actions that fit every selected state. "Retry all 2,950 matching" posts
the filter itself; the server walks the matching ids newest first by keyset pages (so jobs
that leave the filter as they change do not shift the pages) and applies the action to each,
up to MOST per request, then says how many it changed and whether any remain.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..job import JobFilter, JobState
from .auth import Principal
from .context import WebContext

COUNT_CAP = 10_000  # "10,000+ jobs match": a bounded count, never a scan of the table
MOST = 10_000  # jobs one "all matching" request changes; the rest wait for the next
PAGE = 500

# which states each action fits (retrying: a scheduled job waiting for its next try)
FITS = {
    "retry": {"dead", "cancelled", "retrying"},
    "cancel": {"scheduled", "queued", "running", "retrying"},
    "discard": {"dead", "cancelled", "completed"},
}
VERBS = {"retry": "Retry", "cancel": "Cancel", "discard": "Discard"}


def selected_states(where: JobFilter) -> set[str]:
    return {str(s) for s in where.states} | ({"retrying"} if where.retrying else set())


def fitting_actions(where: JobFilter, *, can_discard: bool) -> list[str]:
    """The actions that fit every state the filter selects (none without a state filter:
    a mix of states has no action that fits them all)."""
    states = selected_states(where)
    if not states:
        return []
    return [action for action, fits in FITS.items()
            if states <= fits and (action != "discard" or can_discard)]


def count_label(count: int) -> str:
    return f"{count:,}{'+' if count >= COUNT_CAP else ''}"


def filter_fields(where: JobFilter) -> list[tuple[str, str]]:
    """The filter as hidden form fields, for the server to apply it again."""
    fields = [("state", state) for state in sorted(selected_states(where))]
    for name in ("queue", "task", "tenant", "correlation_id", "idempotency_key", "batch_id"):
        value = getattr(where, name)
        if value:
            fields.append((name, value))
    return fields


async def act_on_matching(ctx: WebContext, principal: Principal, action: str,
                          where: JobFilter,
                          apply: Callable[[list[str]], Awaitable[tuple[int, list[str]]]]
                          ) -> tuple[int, list[str], bool]:
    """(changed, problems, more_left): `apply` changes one page of ids at a time."""
    if action not in fitting_actions(where, can_discard=True):
        return 0, [f"{action} does not fit every selected state"], False
    changed, after, seen = 0, None, 0
    problems: list[str] = []
    while seen < MOST:
        page: list[Any] = await ctx.call(ctx.conveyor.list_jobs, where, after=after,
                                         limit=min(PAGE, MOST - seen), bodies=False)
        if not page:
            return changed, problems, False
        after = page[-1].id
        seen += len(page)
        fitting = [j.id for j in page if _fits(action, j)]
        if fitting:
            done, trouble = await apply(fitting)
            changed += done
            problems += trouble
    rest = await ctx.call(ctx.conveyor.list_jobs, where, after=after, limit=1, bodies=False)
    return changed, problems, bool(rest)


def _fits(action: str, job: Any) -> bool:
    state = "retrying" if job.retrying else str(job.state)
    return state in FITS[action] or (action == "cancel" and job.state == JobState.SCHEDULED)
