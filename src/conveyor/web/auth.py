"""Bearer tokens from CONVEYOR_API_TOKENS (`token=tenant:role,...`) and who a request is.

A tenant token is scoped to its tenant everywhere; an admin token sees every tenant. With no
tokens configured every request is an admin (the server then listens on loopback only).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from starlette.requests import Request

from ..errors import ConfigError
from .problems import ApiError

COOKIE = "conveyor_token"
ROLES = ("admin", "tenant")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: `tenant` scopes every read and action of a tenant token."""

    role: str
    tenant: str | None = None
    token: str | None = None

    @property
    def admin(self) -> bool:
        return self.role == "admin"

    @property
    def scope(self) -> str | None:
        """The tenant every store call is limited to (None: all tenants)."""
        return None if self.admin else self.tenant

    @property
    def label(self) -> str:
        if self.token is None:
            return "open access"
        return "admin" if self.admin else f"tenant {self.tenant}"


OPEN = Principal(role="admin")


def parse_tokens(spec: str) -> dict[str, Principal]:
    """`t1=acme:tenant,t2=ops:admin` -> {token: Principal}. Raises ConfigError when malformed."""
    tokens: dict[str, Principal] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        token, eq, rest = part.partition("=")
        tenant, colon, role = rest.partition(":")
        token, tenant, role = token.strip(), tenant.strip(), role.strip()
        if not eq or not colon or not token or not tenant:
            raise ConfigError("CONVEYOR_API_TOKENS entries look like token=tenant:role")
        if role not in ROLES:
            raise ConfigError(f"CONVEYOR_API_TOKENS: role {role!r} must be admin or tenant")
        tokens[token] = Principal(role=role, tenant=tenant, token=token)
    return tokens


class Authenticator:
    """Finds the principal of a request from its bearer token or its sign-in cookie."""

    def __init__(self, tokens: dict[str, Principal]) -> None:
        self.tokens = tokens
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

    def principal(self, request: Request, *, allow_cookie: bool = True) -> Principal | None:
        """The caller, or None when no valid credential came with the request."""
        if self.open:
            return OPEN
        token = self.bearer(request)
        if token is None and allow_cookie:
            token = request.cookies.get(COOKIE)
        return None if token is None else self.lookup(token)

    def require(self, request: Request, *, admin: bool = False,
                allow_cookie: bool = True) -> Principal:
        """The caller; 401 without a valid token, 403 when `admin` and it is a tenant token."""
        principal = self.principal(request, allow_cookie=allow_cookie)
        if principal is None:
            given = self.bearer(request) is not None or COOKIE in request.cookies
            raise ApiError(401, "unauthorized",
                           "the API token is not valid" if given else
                           "send Authorization: Bearer TOKEN (see CONVEYOR_API_TOKENS)")
        if admin and not principal.admin:
            raise ApiError(403, "forbidden", "this needs an admin token")
        return principal

    def csrf_token(self, principal: Principal) -> str:
        """A form token bound to the signed-in token, so other sites cannot post forms."""
        material = (principal.token or "open").encode()
        return hmac.new(self.secret, material, hashlib.sha256).hexdigest()[:32]

    def check_csrf(self, principal: Principal, given: str | None) -> None:
        if not given or not hmac.compare_digest(self.csrf_token(principal), given):
            raise ApiError(403, "csrf", "the form expired; reload the page and try again")
