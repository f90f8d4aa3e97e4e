"""The HTTP API's enqueue rate (CONVEYOR_API_ENQUEUE_RATE): a token that enqueues faster
gets 429 with Retry-After. Counted per tenant for tenant tokens, else per token, in this
server process (limits/window.py: a sliding window, as the store's rates count)."""

from __future__ import annotations

import math
from typing import Any

from ..limits.model import parse_rate
from ..limits.window import SlidingWindow
from .auth import Principal
from .problems import ApiError, JSONResponse


class TooManyRequests(ApiError):
    """429 with Retry-After (whole seconds, rounded up)."""

    def __init__(self, message: str, retry_after: float, details: dict[str, Any]) -> None:
        super().__init__(429, "rate_limited", message, details)
        self.retry_after = retry_after

    def response(self) -> JSONResponse:
        response = super().response()
        response.headers["Retry-After"] = str(max(math.ceil(self.retry_after), 1))
        return response


class EnqueueRate:
    """CONVEYOR_API_ENQUEUE_RATE: jobs one token may enqueue over HTTP, per sliding window,
    counted in this server process (each process of a deployment counts its own)."""

    def __init__(self, setting: str | None) -> None:
        self.setting = setting
        self.window = None if setting is None else SlidingWindow(*parse_rate(setting))

    def check(self, principal: Principal, count: int = 1) -> None:
        if self.window is None:
            return
        key = principal.tenant or (f"token:{hash(principal.token)}" if principal.token
                                   else "anonymous")
        wait = self.window.take(key, count)
        if wait == 0.0:
            return
        details = {"rate": self.setting, "jobs": count}
        if math.isinf(wait):
            raise ApiError(413, "batch_over_rate", f"a batch of {count} jobs is over the "
                           f"enqueue rate of {self.setting} (split it)", details)
        raise TooManyRequests(f"enqueue rate of {self.setting} reached for this token; "
                              f"retry in {wait:.1f} s", wait, {**details, "retry_in": wait})
