"""The dashboard's jobs page when it searches (search.py): a name fragment lists the jobs of
the names it matches, with their count; a payload or error search shows what a bounded scan
found and says how far it read, with "Older →" going on from there. A search the rules
refuse (a Sensitive field, an unreadable query) is shown as such, with a 400, never as an
empty list. Actions on "all matching" are not offered while searching: the server acts by
filter, and a search is not one (select rows instead)."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..errors import ConveyorError
from ..job import Job, JobFilter
from ..search import Search
from . import bulk
from .auth import Principal
from .bodies import jobs_in_pieces
from .context import WebContext
from .problems import ApiError, from_conveyor
from .views import render_off_loop

PAGE = 50


async def jobs_found(ctx: WebContext, where: JobFilter, search: Search, cursor: str | None
                     ) -> dict[str, Any]:
    """What the page shows of a search: jobs, the count or the scan's note, next cursor."""
    if not search.scanning:
        resolved = await run_in_threadpool(ctx.conveyor.resolve_names, where, search)
        if resolved is None:
            return _shown([], None, 0, None)
        matching = await ctx.call(ctx.conveyor.call, lambda store: store.count_jobs(
            resolved, bulk.COUNT_CAP))
        found = await jobs_in_pieces(ctx.conveyor.list_jobs, resolved, cursor, PAGE + 1)
        return _shown(found[:PAGE], found[PAGE - 1].id if len(found) > PAGE else None,
                      matching, None)
    result = await run_in_threadpool(ctx.conveyor.search_jobs, where, search, after=cursor,
                                     limit=PAGE)
    note = result.note(search.scan)
    return _shown(result.jobs, result.next_cursor, len(result.jobs),
                  note[0].upper() + note[1:] + "." if note else None)


def _shown(jobs: list[Job], next_cursor: str | None, matching: int,
           note: str | None) -> dict[str, Any]:
    return {"jobs": jobs, "next_cursor": next_cursor, "matching": matching,
            "matching_label": bulk.count_label(matching), "search_note": note}


async def search_page(request: Request, ctx: WebContext, principal: Principal,
                      where: JobFilter, search: Search | ApiError, cursor: str | None,
                      context: dict[str, Any]) -> Response:
    """Render jobs.html for a search (or for the refusal of one)."""
    try:
        if isinstance(search, ApiError):
            raise search
        shown = await jobs_found(ctx, where, search, cursor)
    except (ConveyorError, ApiError) as exc:
        problem = exc if isinstance(exc, ApiError) else from_conveyor(exc)
        if problem.status != 400:
            raise problem from None
        shown = {**_shown([], None, 0, None), "search_error": problem.message}
        context["status"] = 400
    return await render_off_loop(request, "jobs.html", principal, where=where,
                                 searching=True, filter_fields=[], cursor=cursor,
                                 **shown, **context)
