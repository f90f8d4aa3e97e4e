"""create_app(conveyor) -> the ASGI app; serve() runs it under uvicorn (`conveyor serve`).

To run it beside other work on one event loop (a worker, the demo), without uvicorn taking
over SIGINT/SIGTERM:

    server = build_server(app, "127.0.0.1", 0, install_signals=False)
    task = asyncio.create_task(server.serve())
    ...                                    # server.url once server.started is true
    server.should_exit = True
    await task
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.staticfiles import StaticFiles

from ..app import Conveyor
from ..errors import ConfigError, ConveyorError
from . import (
    analytics,
    api,
    cron_api,
    cron_page,
    dashboard,
    enqueue_form,
    queue_limits,
    search_api,
)
from .auth import Authenticator, parse_tokens
from .bodies import tune_allocator
from .context import WebContext
from .fresh import DropOnChange
from .guard import RequestGuard
from .headers import SecurityHeaders
from .openapi import openapi_document
from .problems import ApiError, CatchAll, JSONResponse, from_conveyor
from .sessions import SessionBook
from .slowclients import server_options
from .views import build_templates

log = logging.getLogger("conveyor.web")
STATIC = Path(__file__).parent / "static"
LOOPBACK = "127.0.0.1"


def create_app(conveyor: Conveyor, *, tokens: str | None = None,
               sample_every: float = 5.0) -> Starlette:
    """The API, the dashboard and /metrics for `conveyor` (tokens: CONVEYOR_API_TOKENS)."""
    spec = conveyor.settings.api_tokens if tokens is None else tokens
    auth = Authenticator(parse_tokens(spec), SessionBook(conveyor))
    ctx = WebContext(conveyor, auth, sample_every=sample_every)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await asyncio.to_thread(lambda: conveyor.store)  # open (and migrate) off the loop
        await ctx.hub.start()
        sampler = asyncio.create_task(ctx.history.run(ctx.call))
        try:
            yield
        finally:
            sampler.cancel()
            await ctx.settle_reads()  # a page's read it no longer waits for (snapshot.py)
            await ctx.hub.stop()

    app = Starlette(routes=_routes(), lifespan=lifespan,
                    middleware=[Middleware(SecurityHeaders),
                                Middleware(RequestGuard, open_access=auth.open,
                                           behind_tls=conveyor.settings.behind_tls),
                                Middleware(CatchAll),
                                Middleware(DropOnChange, drop=ctx.changed)],
                    exception_handlers={HTTPException: _on_http,
                                        ApiError: _on_api_error,
                                        ConveyorError: _on_conveyor_error})
    app.state.web = ctx
    app.state.templates = build_templates()
    return app


def _routes() -> list[BaseRoute]:
    return [
        *api.routes(),
        *search_api.routes(),
        *cron_api.routes(),
        *queue_limits.routes(),
        *analytics.routes(),
        *cron_page.routes(),
        *enqueue_form.routes(),
        Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics),
        Route("/openapi.json", openapi),
        Route("/favicon.ico", lambda r: RedirectResponse("/static/favicon.svg", 301)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        *dashboard.routes(),
    ]


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """200 once the store answers with the schema this version needs, else 503. Why it is not
    ready (hosts, ports, database names, driver errors) is for admins only; anyone else gets
    the status, and the server's log has the reason."""
    ctx: WebContext = request.app.state.web
    try:
        await ctx.conveyor.check_schema()
    except Exception as exc:
        reason = str(exc) if isinstance(exc, ConveyorError) else "the store is unreachable"
        log.warning("readyz: not ready: %s", exc)
        if not await _is_admin(ctx, request):
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "unavailable", "error": {
            "code": "unavailable", "message": reason, "details": {}}}, status_code=503)
    return JSONResponse({"status": "ready"})


async def _is_admin(ctx: WebContext, request: Request) -> bool:
    try:  # a session is looked up in the store, which may be what is down
        caller = await ctx.auth.principal(request)
    except ConveyorError:
        return False
    return caller is not None and caller.admin


async def metrics(request: Request) -> Response:
    ctx: WebContext = request.app.state.web
    await ctx.auth.require(request, admin=True)
    body = await ctx.metrics.scrape(ctx.call, ctx.gauges)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document())


# --- errors -----------------------------------------------------------------------------------


def _wants_html(request: Request) -> bool:
    path = request.url.path
    if path.startswith(("/api/", "/metrics", "/healthz", "/readyz", "/openapi")):
        return False
    return "text/html" in request.headers.get("accept", "")


async def _on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if _wants_html(request):
        return await dashboard.error_page(request, exc)
    return exc.response()


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    message = "no such page" if exc.status_code == 404 else str(exc.detail)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    error = ApiError(exc.status_code, codes.get(exc.status_code, "http_error"), message,
                     headers=headers)
    return await _on_api_error(request, error)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route takes at this path (one route per method here, so the
    route that answered 405 knows only its own)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "\x00"})
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


async def _on_conveyor_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConveyorError)
    return await _on_api_error(request, from_conveyor(exc))


# --- running it -------------------------------------------------------------------------------


class ConveyorServer(uvicorn.Server):
    """uvicorn, but open event streams end first so a shutdown is not held up by them, and a
    SIGTERM is a clean stop (exit 0 after the worker has finished), not re-raised at exit."""

    def __init__(self, config: uvicorn.Config, *, install_signals: bool = True) -> None:
        super().__init__(config)
        self.install_signals = install_signals

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if not self.install_signals:  # embedded: the host program owns the signals
            yield
            return
        with super().capture_signals():
            yield

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        self._captured_signals.clear()

    @property
    def url(self) -> str:
        """http://host:port actually bound (port 0 picks a free one); valid once started."""
        host, port = self.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def shutdown(self, sockets: Any = None) -> None:
        app = self.config.loaded_app
        web = getattr(getattr(getattr(app, "app", app), "state", None), "web", None)
        if web is None:
            web = _find_web(app)
        if web is not None:
            web.hub.close_clients()
        await super().shutdown(sockets)


def _find_web(app: Any) -> WebContext | None:
    for _ in range(5):  # uvicorn wraps the app in middleware proxies
        state = getattr(app, "state", None)
        if state is not None and hasattr(state, "web"):
            return state.web
        app = getattr(app, "app", None)
    return None


def check_host(host: str, open_access: bool) -> None:
    """Without tokens, refuse anything but loopback: the API would be open to the network."""
    if not open_access:
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ConfigError(f"refusing to listen on {host} without CONVEYOR_API_TOKENS: set "
                          "tokens (token=tenant:role,...) or listen on 127.0.0.1")


def build_server(conveyor: Conveyor, host: str | None, port: int,
                 tokens: str | None = None, sample_every: float = 5.0,
                 log_level: str = "info", install_signals: bool = True) -> ConveyorServer:
    app = create_app(conveyor, tokens=tokens, sample_every=sample_every)
    open_access = app.state.web.auth.open
    host = host or LOOPBACK
    check_host(host, open_access)
    if open_access:
        log.warning("no CONVEYOR_API_TOKENS set: the API and dashboard are open to anyone on "
                    "this machine, so they listen on loopback (%s) only", host)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level,
                            timeout_graceful_shutdown=5, lifespan="on", access_log=False,
                            **server_options(conveyor.settings))
    return ConveyorServer(config, install_signals=install_signals)


async def serve_async(conveyor: Conveyor, host: str | None = None, port: int = 8000,
                      with_worker: bool = False) -> None:
    server = build_server(conveyor, host, port)
    worker = conveyor.worker() if with_worker else None
    running = asyncio.create_task(worker.run(install_signals=False)) if worker else None
    try:
        await server.serve()
    finally:
        if worker is not None and running is not None:
            worker.stop()
            await running


def serve(conveyor: Conveyor, host: str | None = None, port: int = 8000,
          with_worker: bool = False) -> int:
    """Run the API and dashboard until SIGTERM or Ctrl-C; returns an exit status."""
    tune_allocator()
    asyncio.run(serve_async(conveyor, host, port, with_worker))
    return 0


__all__ = ["ConveyorServer", "build_server", "create_app", "serve"]
