"""Security headers on every response (pure ASGI, so streaming responses pass untouched)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
     b"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
     b"base-uri 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]

NO_STORE = (b"cache-control", b"no-store")


class SecurityHeaders:
    """No framing (the dashboard has buttons worth clickjacking), no inline scripts, no sniffing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        cacheable = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *HEADERS]
                if not cacheable and not any(k.lower() == b"cache-control" for k, _ in headers):
                    headers.append(NO_STORE)  # jobs, payloads, results: never kept by caches
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
