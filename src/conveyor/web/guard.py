"""Where a request may come from: one rule, checked for every request before any handler.

1. Open mode (no tokens configured): the `Host` header must name loopback (`127.0.0.1` or
   another 127.x address, `[::1]`, `localhost`; any port). A page that reaches the server
   through DNS rebinding sends its own name, so it is refused, reads included.
2. A state-changing request (POST, PUT, PATCH, DELETE; the API and the dashboard's forms
   alike, in every mode) that says where it comes from must come from this server's own
   origin: `Origin` must be the request's own scheme://host[:port] (`https` as well behind
   TLS), and `Sec-Fetch-Site`, when sent, must be `same-origin` or `none`. Browsers send these
   headers and pages cannot forge them; other clients (curl, SDKs) send neither and pass.
3. A state-changing request to /api/ that carries a body or a Content-Type must say
   `application/json` (415 otherwise). A browser sends such a request across origins only
   after a CORS preflight, which this server never grants, so no "simple" form or text/plain
   POST from another page reaches the JSON API.

4. A NUL byte (`%00`) names nothing: in the path it is 404, in the query string 400, on
   every store alike (PostgreSQL text cannot hold one, SQLite would just find nothing).

A refused request gets the usual error body and never reaches a handler: nothing is read,
nothing is stored.
"""

from __future__ import annotations

import ipaddress
import logging

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from .problems import ApiError

log = logging.getLogger("conveyor.web")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
OWN_SITE = frozenset({"same-origin", "none"})
DEFAULT_PORTS = {"http": "80", "https": "443"}


class RequestGuard:
    """Pure ASGI, so a refusal costs no routing and no body read."""

    def __init__(self, app: ASGIApp, *, open_access: bool, behind_tls: bool) -> None:
        self.app = app
        self.open_access = open_access
        self.behind_tls = behind_tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self.refusal(scope)
            if refusal is not None:
                log.debug("refused %s %s: %s", scope["method"], scope["path"], refusal.code)
                await refusal.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope) -> ApiError | None:
        """Why this request is refused, or None when it may go on."""
        nul = nul_refusal(scope)
        if nul is not None:
            return nul
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if self.open_access and not is_loopback_host(host):
            return ApiError(403, "host_not_allowed", "without CONVEYOR_API_TOKENS this server "
                            "answers only requests addressed to 127.0.0.1, localhost or [::1]",
                            {"host": host[:200]})
        if scope["method"] not in UNSAFE_METHODS:
            return None
        origin = headers.get("origin")
        site = headers.get("sec-fetch-site")
        if (site is not None and site not in OWN_SITE) or (
                origin is not None and origin.lower() not in self.own_origins(scope, host)):
            return ApiError(403, "cross_origin", "a change requested by a page of another "
                            "origin is refused: use the dashboard itself, or an API token",
                            {"origin": (origin or "")[:200], "sec_fetch_site": site or "",
                             "host": host[:200]})
        if scope["path"].startswith("/api/") and not carries_json(headers):
            return ApiError(415, "unsupported_media_type", "send the request body as JSON, "
                            "with Content-Type: application/json",
                            {"content_type": headers.get("content-type", "")[:200]})
        return None

    def own_origins(self, scope: Scope, host: str) -> set[str]:
        """This server's origin as a browser names it (default ports left out)."""
        schemes = {scope.get("scheme", "http")} | ({"https"} if self.behind_tls else set())
        return {origin_of(scheme, host) for scheme in schemes}


def nul_refusal(scope: Scope) -> ApiError | None:
    if "\x00" in scope["path"]:
        return ApiError(404, "not_found", "no such job or page (a name never holds a NUL byte)")
    query = scope.get("query_string", b"").lower()
    if b"%00" in query or b"\x00" in query:
        return ApiError(400, "bad_query", "a query parameter holds a NUL byte",
                        {"field": "(query)"})
    return None


def origin_of(scheme: str, host: str) -> str:
    name, colon, port = host.lower().rpartition(":")
    return f"{scheme}://{name if colon and port == DEFAULT_PORTS.get(scheme) else host.lower()}"


def carries_json(headers: Headers) -> bool:
    """True when the request has no body and no Content-Type, or declares JSON."""
    content_type = headers.get("content-type")
    if content_type is None:
        length = (headers.get("content-length") or "0").strip()
        return length == "0" and "transfer-encoding" not in headers
    return content_type.partition(";")[0].strip().lower() == "application/json"


def is_loopback_host(host: str) -> bool:
    """`127.0.0.1:8000`, `[::1]`, `localhost:3000` and the like (ASCII digits for a port)."""
    if host.startswith("["):
        name, bracket, rest = host[1:].partition("]")
        if not bracket:
            return False
    else:
        name, colon, port = host.partition(":")
        rest = colon + port
    if rest and not (rest[0] == ":" and rest[1:].isascii() and rest[1:].isdigit()):
        return False
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
