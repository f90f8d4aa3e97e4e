"""Finding jobs over HTTP: the search filters of GET /api/v1/jobs (`task_contains`,
`queue_contains`, `payload=field:value`, `error`, `scan`) and GET /api/v1/names, the task and
queue names for autocomplete. Both tenant-scoped: a tenant token searches and is told of its
own jobs only. Thin: search.py and finding.py hold the rules.

A payload or error search is a bounded scan of candidates (search.py); its answer carries
`search: {scanned, scan_limit, exhausted, note}` and `next_cursor` goes on from where it
stopped. It runs off the event loop on every store (it opens up to `scan` jobs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..errors import ConveyorError
from ..job import JobFilter
from ..search import Found, Search, SearchRefused, matching_names
from .auth import Principal
from .bodies import page_of_jobs, row_json
from .context import WebContext
from .inputs import whole_number
from .problems import ApiError, JSONResponse, from_conveyor

SEARCH_PARAMS = ("task_contains", "queue_contains", "payload", "error", "scan")
SCAN_PAGE_MOST = 100  # a scanning page holds the jobs it found, bodies and all


def search_of(params: Any) -> Search:
    """The search parts of a jobs query (all optional); 400 naming a part it cannot read."""
    scan = whole_number(params, "scan", 1, 10_000, 0) or None
    try:
        return Search.parse(params.get("task_contains"), params.get("queue_contains"),
                            params.get("payload"), params.get("error"), scan)
    except SearchRefused as exc:
        raise from_conveyor(exc) from None


async def search_page(ctx: WebContext, where: JobFilter, search: Search, cursor: str | None,
                      limit: int, fields: frozenset[str]) -> Response:
    """A page of a search, as GET /api/v1/jobs answers it, with a `search` part."""
    try:
        if not search.scanning:  # names only: the ordinary list of the names they match
            resolved = await run_in_threadpool(ctx.conveyor.resolve_names, where, search)
            return _names_page(await _listed(ctx, resolved, cursor, limit, fields), resolved)
        found = await run_in_threadpool(ctx.conveyor.search_jobs, where, search,
                                        after=cursor, limit=min(limit, SCAN_PAGE_MOST))
    except ConveyorError as exc:
        raise from_conveyor(exc) from None
    return _scan_page(found, search, fields)


async def _listed(ctx: WebContext, where: JobFilter | None, cursor: str | None, limit: int,
                  fields: frozenset[str]) -> bytes:
    if where is None:  # a fragment that matches no name
        return b'{"jobs":[],"next_cursor":null,"truncated":false}'
    return bytes(await page_of_jobs(ctx.conveyor.list_jobs, where, cursor, limit, fields,
                                    ctx.conveyor.settings.max_list_bytes))


def _names_page(body: bytes, resolved: JobFilter | None) -> Response:
    names = {"tasks": list(resolved.tasks) if resolved else [],
             "queues": list(resolved.queues) if resolved else []}
    return Response(body[:-1] + b',"search":' + orjson.dumps(names) + b"}",
                    media_type="application/json")


def _scan_page(found: Found, search: Search, fields: frozenset[str]) -> Response:
    rows = b",".join(row_json(job, fields) for job in found.jobs)
    part = {"scanned": found.scanned, "scan_limit": search.scan,
            "exhausted": found.exhausted, "note": found.note(search.scan)}
    body = (b'{"jobs":[' + rows + b'],"next_cursor":' + orjson.dumps(found.next_cursor)
            + b',"truncated":false,"search":' + orjson.dumps(part) + b"}")
    return Response(body, media_type="application/json")


async def names(request: Request) -> Response:
    """GET /api/v1/names?q=sen&limit=20: task and queue names that hold `q` (any case), for
    autocomplete; a tenant token is told the names of its own jobs only."""
    ctx: WebContext = request.app.state.web
    principal: Principal = await ctx.auth.require(request)
    params = request.query_params
    fragment = (params.get("q") or "").strip()
    if len(fragment) > 200:
        raise ApiError(400, "bad_query", "q is longer than 200 characters", {"field": "q"})
    most = whole_number(params, "limit", 1, 100, 20)
    known = await run_in_threadpool(ctx.conveyor.job_names, principal.scope)
    try:
        tasks = matching_names(known.tasks, fragment) if fragment else known.tasks
        queues = matching_names(known.queues, fragment) if fragment else known.queues
    except SearchRefused:  # more than NAMES_MOST: still fine for a suggestion list
        tasks = tuple(n for n in known.tasks if fragment.casefold() in n.casefold())
        queues = tuple(n for n in known.queues if fragment.casefold() in n.casefold())
    return JSONResponse({"tasks": list(tasks[:most]), "queues": list(queues[:most])},
                        headers={"Cache-Control": "private, max-age=5"})


def openapi_params(query: Callable[..., dict[str, Any]]) -> list[dict[str, Any]]:
    """The search parameters of GET /api/v1/jobs, for the OpenAPI document."""
    return [query("task_contains", "jobs of every task whose name holds this, any case"),
            query("queue_contains", "jobs of every queue whose name holds this, any case"),
            query("payload", "field:value (order_id:ord-1, customer.id:42): jobs whose "
                  "payload holds the value there; a Sensitive field is refused (400). A "
                  "bounded scan: the answer's `search` says how far it read"),
            query("error", "jobs whose last error (type: message) holds this, any case; "
                  "a bounded scan of jobs that failed"),
            query("scan", "candidates a payload or error search reads, 1 to 10,000 "
                  "(default 1,000)", "integer")]


def openapi_paths(query: Callable[..., dict[str, Any]],
                  op: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return {"/api/v1/names": {"get": op(
        "Task and queue names that hold `q` (for autocomplete; a tenant token's own only)",
        (200, {"type": "object", "properties": {
            "tasks": {"type": "array", "items": {"type": "string"}},
            "queues": {"type": "array", "items": {"type": "string"}}}}, "Names"), 400, 401,
        params=[query("q", "a fragment of a name, any case"),
                query("limit", "1 to 100 of each (default 20)", "integer")])}}


def routes() -> list[BaseRoute]:
    return [Route("/api/v1/names", names, methods=["GET"])]
