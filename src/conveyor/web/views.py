"""Template set-up for the dashboard: filters for times, durations, JSON and states."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from .auth import Principal
from .charts import hue
from .context import WebContext

TEMPLATES = Path(__file__).parent / "templates"
FLASH = "conveyor_flash"
NONE = "\u2013"  # an en dash for "no value"
STATES = ("scheduled", "queued", "running", "completed", "dead", "cancelled")


def ago(value: float | None, now: float | None = None) -> str:
    if value is None:
        return NONE
    delta = (now or time.time()) - value
    if delta < 0:
        return "in " + duration(-delta)
    return "just now" if delta < 1 else duration(delta) + " ago"


def duration(value: float | None) -> str:
    if value is None:
        return NONE
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        return f"{value // 60:.0f} min {value % 60:.0f} s"
    if value < 86400:
        return f"{value // 3600:.0f} h {value % 3600 // 60:.0f} min"
    return f"{value // 86400:.0f} d {value % 86400 // 3600:.0f} h"


def timestamp(value: float | None) -> str:
    if value is None:
        return NONE
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value))


def pretty_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()


def percent(value: float | None) -> str:
    return NONE if value is None else f"{value * 100:.1f}%"


def id_tail(job_id: str, size: int = 8) -> str:
    """The distinctive end of an id. Job ids are UUIDv7s whose first 13 characters are the
    creation time, shared by every job of a minute; their last 12 are random."""
    return job_id[-size:] if len(job_id) > size else job_id


def query(params: dict[str, Any], **changes: Any) -> str:
    merged = {k: v for k, v in {**params, **changes}.items() if v not in (None, "")}
    return "?" + urlencode(merged) if merged else ""


def build_templates() -> Jinja2Templates:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(ago=ago, duration=duration, timestamp=timestamp, json=pretty_json,
                       percent=percent, hue=hue, tail=id_tail)
    env.globals.update(states=STATES, query=query)
    return Jinja2Templates(env=env)


def render(request: Request, name: str, principal: Principal, **context: Any) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    flash = request.cookies.get(FLASH)
    status = context.pop("status", 200)
    response = templates.TemplateResponse(request, name, _context(request, principal, context),
                                          status_code=status)
    return _finish(response, flash)


async def render_off_loop(request: Request, name: str, principal: Principal,
                          **context: Any) -> Response:
    """render() for the long lists: the template runs in a thread, so rendering 50 rows
    never holds the event loop (and /healthz) for the milliseconds it takes."""
    templates: Jinja2Templates = request.app.state.templates
    status = context.pop("status", 200)
    values = {"request": request, **_context(request, principal, context)}
    html = await run_in_threadpool(templates.get_template(name).render, values)
    return _finish(HTMLResponse(html, status_code=status), request.cookies.get(FLASH))


def _context(request: Request, principal: Principal, context: dict[str, Any]
             ) -> dict[str, Any]:
    ctx: WebContext = request.app.state.web
    flash = request.cookies.get(FLASH)
    base = {"principal": principal, "csrf": ctx.auth.csrf_token(principal),
            "open_access": ctx.auth.open, "flash": unquote(flash) if flash else None,
            "now": time.time(),
            "path": request.url.path, "can_discard": hasattr(ctx.conveyor, "discard")}
    return {**base, **context}


def _finish(response: Response, flash: str | None) -> Response:
    response.headers["Cache-Control"] = "no-store"
    if flash:
        response.delete_cookie(FLASH)
    return response


def redirect(to: str, message: str | None = None) -> Response:
    response = RedirectResponse(to, status_code=303)
    if message:
        response.set_cookie(FLASH, quote(message), max_age=30, httponly=True, samesite="strict")
    return response


def local_path(value: Any, default: str = "/") -> str:
    """Only redirect back into this site: a path, never //host or a scheme."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith("//") \
            and "\\" not in value and len(value) < 2000:
        return value
    return default


def fragment(html: str) -> HTMLResponse:
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})
