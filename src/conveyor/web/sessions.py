"""Dashboard sign-ins: server-side sessions kept in the store.

Signing in with an API token opens a session. Its id, 256 random bits, goes to the browser
in an HttpOnly, SameSite=Strict cookie (Secure behind TLS); the store keeps only the id's
SHA-256, a check binding it to the token (an HMAC of the token keyed by the session id, so
the store holds nothing that reveals a token or a live id), and its deadlines. Every request
finds its session in the store, so signing out (which deletes it) ends it on every server at
once and a copied cookie is worthless afterwards. A session also ends after
CONVEYOR_SESSION_IDLE seconds unused, CONVEYOR_SESSION_LIFETIME seconds after sign-in, and
as soon as its token leaves CONVEYOR_API_TOKENS. Each session has its own CSRF token, derived
from its id.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from ..store.base import SessionRecord

if TYPE_CHECKING:
    from ..app import Conveyor

COOKIE = "conveyor_session"
REFRESH = 60.0  # the idle deadline moves at most about once a minute (a write each time)
PRUNE_AT_SIGN_IN = 100  # expired sessions removed at each sign-in, besides maintenance


def id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def token_check(session_id: str, token: str) -> str:
    return hmac.new(session_id.encode(), token.encode(), hashlib.sha256).hexdigest()


def csrf_of(session_id: str) -> str:
    return hmac.new(session_id.encode(), b"conveyor csrf", hashlib.sha256).hexdigest()[:32]


def plausible(session_id: str) -> bool:
    """Ids this book gives out are 43 URL-safe characters; anything else is not looked up."""
    return len(session_id) == 43 and session_id.isascii() and \
        session_id.replace("-", "").replace("_", "").isalnum()


class SessionBook:
    """Opens, finds and closes sessions in the app's store."""

    def __init__(self, conveyor: Conveyor) -> None:
        self.conveyor = conveyor
        settings = conveyor.settings
        self.idle = settings.session_idle
        self.lifetime = settings.session_lifetime
        self.behind_tls = settings.behind_tls

    def _now(self) -> float | None:
        return self.conveyor.clock.store_now()

    async def open(self, token: str) -> str:
        """A new session for a valid `token`; returns its id (for the cookie only)."""
        session_id = secrets.token_urlsafe(32)
        store = self.conveyor.store
        await store.prune_sessions(self._now(), PRUNE_AT_SIGN_IN)
        await store.create_session(id_hash(session_id), token_check(session_id, token),
                                   self.idle, self.lifetime, self._now())
        return session_id

    async def find(self, session_id: str) -> SessionRecord | None:
        """The live session of this id (its idle deadline moved on), or None."""
        if not plausible(session_id):
            return None
        store = self.conveyor.store
        record = await store.find_session(id_hash(session_id), self._now())
        if record is None:
            return None
        fresh = min(record.checked_at + self.idle, record.expires_at)
        if fresh - record.idle_expires_at > min(REFRESH, self.idle / 10):
            await store.extend_session(record.id_hash, self.idle, self._now())
        return record

    async def close(self, session_id: str) -> None:
        """Revoke the session: its cookie no longer signs anyone in, anywhere."""
        if plausible(session_id):
            await self.conveyor.store.revoke_session(id_hash(session_id))

    def secure(self, request: Request) -> bool:
        """Cookies are Secure behind TLS (CONVEYOR_BEHIND_TLS) and on https requests."""
        return self.behind_tls or request.url.scheme == "https"

    def set_cookie(self, response: Response, request: Request, session_id: str) -> None:
        response.set_cookie(COOKIE, session_id, max_age=int(self.lifetime), path="/",
                            httponly=True, samesite="strict", secure=self.secure(request))

    def delete_cookie(self, response: Response, request: Request) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                               secure=self.secure(request))
