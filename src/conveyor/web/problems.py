"""Errors as the API answers them: {"error": {"code", "message", "details"}}, never a trace."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..codec import PayloadTooLarge
from ..errors import (
    BatchTooLarge,
    ConveyorError,
    InvalidTransition,
    JobNotFound,
    PayloadInvalid,
    SchemaOutdated,
    SearchRefused,
    StoreUnavailable,
    UnknownTask,
)

log = logging.getLogger("conveyor.web")


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


class ApiError(Exception):
    """An error with its HTTP status, a stable code and what to change."""

    def __init__(self, status: int, code: str, message: str,
                 details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        body = {"error": {"code": self.code, "message": self.message, "details": self.details}}
        headers = {**self.headers, **({"WWW-Authenticate": "Bearer"} if self.status == 401
                                      else {})}
        return JSONResponse(body, status_code=self.status, headers=headers or None)


def from_conveyor(exc: ConveyorError, *, admin: bool = False) -> ApiError:
    """Map an error of the core to its HTTP status and code. Only an `admin` is told which
    tasks exist; nobody gets the store's address or driver error (the log has them)."""
    details: dict[str, Any] = {}
    index = getattr(exc, "index", None)
    if index is not None:
        details["index"] = index
    match exc:
        case JobNotFound():
            return ApiError(404, "not_found", str(exc), {"id": exc.job_id})
        case InvalidTransition():
            return ApiError(409, "invalid_transition", str(exc),
                            {"id": exc.job_id, "state": exc.state, "action": exc.action})
        case UnknownTask():
            text = str(exc) if admin else f"unknown task {exc.task!r}"
            return ApiError(422, "unknown_task", text if index is None else
                            f"jobs[{index}]: {text}", {**details, "task": exc.task})
        case PayloadInvalid():
            return ApiError(422, "payload_invalid", str(exc), {**details, "errors": exc.errors})
        case BatchTooLarge():
            return ApiError(413, "batch_too_large", str(exc),
                            {"size": exc.size, "limit": exc.limit})
        case PayloadTooLarge():
            return ApiError(413, "payload_too_large", _with_index(exc, index),
                            {**details, "size": exc.size, "limit": exc.limit})
        case SearchRefused():
            return ApiError(400, "search_refused", str(exc), {"field": exc.field})
        case SchemaOutdated():
            return ApiError(503, "unavailable", str(exc))
        case StoreUnavailable():
            log.warning("the store is unavailable: %s", exc)
            return ApiError(503, "unavailable", "the store is unavailable; try again shortly "
                            "(the server's log says why)")
    return ApiError(422, "invalid", _with_index(exc, index), details)


def _with_index(exc: Exception, index: int | None) -> str:
    return str(exc) if index is None else f"jobs[{index}]: {exc}"


def internal_error(exc: BaseException) -> ApiError:
    log.error("unhandled error in a web request", exc_info=exc)
    return ApiError(500, "internal", "internal server error (logged on the server)")


class CatchAll:
    """An error no handler took is logged here, once, and answered 500 with the error body.
    (Starlette's own last resort re-raises after answering, so uvicorn logged it again.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except ClientDisconnect:  # gone mid-body (or cut off as too slow): nobody to answer
            log.debug("client left before its request was read: %s %s", scope.get("method"),
                      scope.get("path"))
        except Exception as exc:  # the last resort, logged once
            error = internal_error(exc)
            if not started:
                await error.response()(scope, receive, send)
