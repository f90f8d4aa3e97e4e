"""Bearer tokens from CONVEYOR_API_TOKENS (`token=tenant:role[;grants],...`) and who a
request is: a bearer token, or a dashboard session (sessions.py) opened with one.

A viewer token (`t=*:viewer` for every tenant, `t=acme:viewer` for one) reads what its scope
shows, in the API and the dashboard, and every change it asks for is refused (403 read_only).

A tenant token is scoped to its tenant everywhere, and may be granted only some queues and a
priority range to enqueue with (grants.py); an admin token sees every tenant. With no tokens
configured every request is an admin (the server then listens on loopback only and answers
only loopback names, guard.py).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field, replace

from starlette.requests import Request

from ..errors import ConfigError
from .grants import Grant, parse_grant
from .problems import ApiError
from .sessions import COOKIE, SessionBook, csrf_of, token_check

ROLES = ("admin", "tenant", "viewer")
ALL_TENANTS = "*"
CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: `tenant` scopes every read and action of a tenant token, `grant`
    limits what it may enqueue; `session` is the dashboard session it came in with."""

    role: str
    tenant: str | None = None
    token: str | None = field(default=None, repr=False)
    grant: Grant | None = None
    session: str | None = field(default=None, repr=False)

    @property
    def admin(self) -> bool:
        return self.role == "admin"

    @property
    def read_only(self) -> bool:
        """A viewer token reads what its scope shows and changes nothing."""
        return self.role == "viewer"

    @property
    def scope(self) -> str | None:
        """The tenant every store call is limited to (None: all tenants)."""
        if self.admin or (self.read_only and self.tenant == ALL_TENANTS):
            return None
        return self.tenant

    @property
    def label(self) -> str:
        if self.token is None:
            return "open access"
        if self.read_only:
            return "viewer" + ("" if self.scope is None else f" of tenant {self.tenant}")
        return "admin" if self.admin else f"tenant {self.tenant}"


OPEN = Principal(role="admin")


def parse_tokens(spec: str) -> dict[str, Principal]:
    """`t1=acme:tenant;queues=acme.*,t2=ops:admin` -> {token: Principal}. Raises
    ConfigError when malformed."""
    tokens: dict[str, Principal] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        token, eq, rest = part.partition("=")
        items = [item for item in rest.split(";") if item.strip()] or [""]
        tenant, colon, role = items[0].partition(":")
        grants = items[1:]
        token, tenant, role = token.strip(), tenant.strip(), role.strip()
        if not eq or not colon or not token or not tenant:
            raise ConfigError("CONVEYOR_API_TOKENS entries look like token=tenant:role")
        if role not in ROLES:
            raise ConfigError(f"CONVEYOR_API_TOKENS: role {role!r} must be admin, tenant "
                              "or viewer")
        if grants and role != "tenant":
            raise ConfigError("CONVEYOR_API_TOKENS: grants (;queues=, ;priority=) are for "
                              "tenant tokens; an admin token may do everything and a viewer "
                              "token enqueues nothing")
        if tenant == ALL_TENANTS and role == "tenant":
            raise ConfigError("CONVEYOR_API_TOKENS: tenant '*' (every tenant) is for viewer "
                              "tokens; a tenant token names its tenant")
        grant = parse_grant(grants, tenant) if grants else None
        tokens[token] = Principal(role=role, tenant=tenant, token=token, grant=grant)
    return tokens


def refuse_read_only(principal: Principal) -> None:
    if principal.read_only:
        raise ApiError(403, "read_only", "this token is a viewer: it reads and changes nothing")


class Authenticator:
    """Finds the principal of a request from its bearer token or its session cookie."""

    def __init__(self, tokens: dict[str, Principal], sessions: SessionBook) -> None:
        self.tokens = tokens
        self.sessions = sessions
        self.secret = secrets.token_bytes(32)

    @property
    def open(self) -> bool:
        return not self.tokens

    def lookup(self, token: str) -> Principal | None:
        found = None
        for known, principal in self.tokens.items():
            # compare every token in constant time so timing does not reveal a prefix
            if hmac.compare_digest(known.encode(), token.encode()):
                found = principal
        return found

    def bearer(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None

    async def principal(self, request: Request, *,
                        allow_cookie: bool = True) -> Principal | None:
        """The caller, or None when no valid credential came with the request."""
        if self.open:
            return OPEN
        token = self.bearer(request)
        if token is not None:
            return self.lookup(token)
        session_id = request.cookies.get(COOKIE) if allow_cookie else None
        return None if session_id is None else await self.from_session(session_id)

    async def from_session(self, session_id: str) -> Principal | None:
        """The principal of a live session whose token is still configured."""
        record = await self.sessions.find(session_id)
        if record is None:
            return None
        found = None
        for known, principal in self.tokens.items():  # every one, in constant time
            if hmac.compare_digest(token_check(session_id, known), record.token_check):
                found = principal
        return None if found is None else replace(found, session=session_id)

    async def require(self, request: Request, *, admin: bool = False,
                      allow_cookie: bool = True) -> Principal:
        """The caller; 401 without a valid token, 403 when `admin` and it is a tenant token."""
        principal = await self.principal(request, allow_cookie=allow_cookie)
        if principal is None:
            given = self.bearer(request) is not None or COOKIE in request.cookies
            raise ApiError(401, "unauthorized",
                           "the API token is not valid" if given else
                           "send Authorization: Bearer TOKEN (see CONVEYOR_API_TOKENS)")
        if request.method in CHANGES:
            refuse_read_only(principal)
        if admin and not principal.admin:
            raise ApiError(403, "forbidden", "this needs an admin token")
        return principal

    def csrf_token(self, principal: Principal) -> str:
        """A form token of the session (a new one at each sign-in, gone at sign-out), so
        other sites cannot post forms; bearer and open callers get one of this process."""
        if principal.session is not None:
            return csrf_of(principal.session)
        material = (principal.token or "open").encode()
        return hmac.new(self.secret, material, hashlib.sha256).hexdigest()[:32]

    def check_csrf(self, principal: Principal, given: str | None) -> None:
        if not given or not hmac.compare_digest(self.csrf_token(principal), given):
            raise ApiError(403, "csrf", "the form expired; reload the page and try again")
