"""The dashboard's forms: sign in and out, retry / cancel / discard jobs, pause queues.
Signing in opens a server-side session (sessions.py) and signing out revokes it; every form
carries the session's CSRF token; the cookie is HttpOnly, SameSite=Strict, and Secure behind
TLS. Forms posted from another origin, /login included, never get here (guard.py)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..errors import ConveyorError
from . import bulk
from .auth import Principal, refuse_read_only
from .context import WebContext
from .inputs import job_filter
from .problems import ApiError
from .sessions import COOKIE
from .views import local_path, redirect, render

MAX_SELECTED = 1000


def ctx_of(request: Request) -> WebContext:
    return request.app.state.web


async def login_page(request: Request) -> Response:
    ctx = ctx_of(request)
    if ctx.auth.open:
        return redirect("/")
    guest = Principal(role="tenant", tenant=None)
    return render(request, "login.html", guest, next=local_path(request.query_params.get("next")),
                  error=None, title="Sign in")


async def login(request: Request) -> Response:
    ctx = ctx_of(request)
    form = await request.form()
    token = str(form.get("token") or "").strip()
    target = local_path(form.get("next"))
    principal = ctx.auth.lookup(token) if token else None
    if principal is None:
        guest = Principal(role="tenant", tenant=None)
        return render(request, "login.html", guest, next=target, status=401,
                      error="That token is not valid. Tokens come from CONVEYOR_API_TOKENS.",
                      title="Sign in")
    sessions = ctx.auth.sessions
    earlier = request.cookies.get(COOKIE)
    if earlier:  # a sign-in replaces the browser's session, never adds to it
        await sessions.close(earlier)
    response = redirect(target, f"Signed in as {principal.label}.")
    sessions.set_cookie(response, request, await sessions.open(token))
    return response


async def logout(request: Request) -> Response:
    principal = await _form_principal(request, change=False)
    sessions = ctx_of(request).auth.sessions
    if principal.session is not None:
        await sessions.close(principal.session)
    response = redirect("/login" if not ctx_of(request).auth.open else "/", "Signed out.")
    sessions.delete_cookie(response, request)
    return response


async def _form_principal(request: Request, *, admin: bool = False,
                          change: bool = True) -> Principal:
    ctx = ctx_of(request)
    principal = await ctx.auth.principal(request)
    if principal is None:
        raise ApiError(401, "unauthorized", "sign in first")
    form = await request.form()
    ctx.auth.check_csrf(principal, str(form.get("csrf") or ""))
    if change:
        refuse_read_only(principal)
    if admin and not principal.admin:
        raise ApiError(403, "forbidden", "this needs an admin token")
    return principal


async def job_actions(request: Request) -> Response:
    """Retry, cancel or discard the selected jobs (or the one whose button was pressed)."""
    principal = await _form_principal(request)
    form = await request.form()
    back = local_path(form.get("next"), "/jobs")
    one = str(form.get("one") or "")
    if one:
        action, _, job_id = one.partition(":")
        ids = [job_id]
    else:
        action = str(form.get("action") or "")
        ids = [str(v) for v in form.getlist("ids")][:MAX_SELECTED]
    if action == "retry-all-dead":
        return await _retry_all_dead(request, principal, form.get("queue"), back)
    if action.startswith("all:"):  # every job the posted filter matches (bulk.py)
        ctx, verb = ctx_of(request), action.removeprefix("all:")
        if verb not in bulk.FITS:
            raise ApiError(400, "bad_action", f"unknown action {verb!r}")
        done, problems, more = await bulk.act_on_matching(
            ctx, principal, verb, job_filter(form, principal),
            lambda page: _apply(ctx, principal, verb, page))
        return redirect(back, _summary(verb, done, problems)
                        + (" More jobs match: run it again for the next ones." if more else ""))
    if not ids:
        return redirect(back, "Select at least one job first.")
    done, problems = await _apply(ctx_of(request), principal, action, ids)
    return redirect(back, _summary(action, done, problems))


async def _apply(ctx: WebContext, principal: Principal, action: str,
                 ids: list[str]) -> tuple[int, list[str]]:
    conveyor = ctx.conveyor
    if action == "discard":
        discard = getattr(conveyor, "discard", None)
        if discard is None:
            return 0, ["discarding needs a newer Conveyor core"]
        clean = [i for i in ids if "\x00" not in i]
        return await ctx.call(discard, clean, tenant=principal.scope), []
    method = {"retry": conveyor.retry, "cancel": conveyor.cancel}.get(action)
    if method is None:
        raise ApiError(400, "bad_action", f"unknown action {action!r}")
    done, problems = 0, []
    for job_id in ids:
        if "\x00" in job_id:  # names no job, on any store (PostgreSQL text cannot hold it)
            problems.append("no such job")
            continue
        try:
            await ctx.call(method, job_id, tenant=principal.scope)
            done += 1
        except ConveyorError as exc:
            problems.append(str(exc))
    return done, problems


def _summary(action: str, done: int, problems: list[str]) -> str:
    verb = {"retry": "Retried", "cancel": "Cancelled", "discard": "Discarded"}.get(action, action)
    text = f"{verb} {done} job{'s' if done != 1 else ''}."
    if problems:
        text += f" {len(problems)} not changed: {problems[0]}"
    return text


async def _retry_all_dead(request: Request, principal: Principal, queue: object,
                          back: str) -> Response:
    ctx = ctx_of(request)
    name = str(queue) if queue else None
    if name is not None and "\x00" in name:
        raise ApiError(400, "bad_queue", "a queue name never holds a NUL byte")
    total = await ctx.call(ctx.conveyor.retry_dead, name, tenant=principal.scope)
    where = f" of queue {name}" if name else ""
    return redirect(back, f"Retried {total} dead job{'s' if total != 1 else ''}{where}.")


async def pause_queue(request: Request) -> Response:
    return await _set_paused(request, paused=True)


async def resume_queue(request: Request) -> Response:
    return await _set_paused(request, paused=False)


async def _set_paused(request: Request, *, paused: bool) -> Response:
    await _form_principal(request, admin=True)
    ctx = ctx_of(request)
    name = request.path_params["name"]
    await ctx.call(ctx.conveyor.pause if paused else ctx.conveyor.resume, name)
    form = await request.form()
    verb = "Paused" if paused else "Resumed"
    return redirect(local_path(form.get("next"), "/queues"), f"{verb} queue {name}.")


def routes() -> list[BaseRoute]:
    return [
        Route("/login", login_page, methods=["GET"]), Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/actions", job_actions, methods=["POST"]),
        Route("/queues/{name:path}/pause", pause_queue, methods=["POST"]),
        Route("/queues/{name:path}/resume", resume_queue, methods=["POST"]),
    ]

