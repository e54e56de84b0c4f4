"""providers authentication.

`POST /api/account/credentials/verify` with `{"username", "password"}` gives an access token;
every other call carries it in the `access_token` header. The token is one of the identity
service's tokens (stored hashed; 24 hours), so it also works in the other dialects, and theirs
(a jade uuid, 36 characters) works here. A header shorter than 32 or longer than 64 characters
is refused as 401 before any lookup (the spec documents 64; its own sample sends 32).

Permissions: managing providers (every `/api/providers/*` route, reads included: a trunk's
host, auth id and parameters are PBX administration) needs a user whose role is admin, master
or super_master; any other valid token gets 403. Any active user may log in.

This module holds the route classes and the login handler."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, Security
from fastapi.security import APIKeyHeader

from switchboard.api.common import (
    DialectRoute,
    DialectSpec,
    ctx,
    json_body,
    password_login,
    token_authenticator,
)
from switchboard.api.providers import envelope
from switchboard.domain.entities import User
from switchboard.domain.errors import Invalid, Unauthenticated

HEADER = "access_token"
MIN_TOKEN, MAX_TOKEN = 32, 64
TOKEN_TTL = timedelta(hours=24)


def token_of(request: Request) -> str:
    token = request.headers.get(HEADER)
    if token is None or not token.strip():
        raise Unauthenticated("access_token header required: POST /api/account/credentials/verify to get one")
    token = token.strip()
    if not MIN_TOKEN <= len(token) <= MAX_TOKEN:
        raise Unauthenticated(f"access_token must be {MIN_TOKEN} to {MAX_TOKEN} characters")
    return token


authenticate_admin = token_authenticator(token_of, admin_only="managing providers needs an admin account")


async def authenticate_login(request: Request, conn, services) -> User:
    """POST /api/account/credentials/verify: the user of the body's username and password."""
    data = await json_body(request)
    problems = []
    for field in ("username", "password"):
        value = data.get(field)
        if value is None or value == "":
            problems.append((field, "can't be blank"))
        elif not isinstance(value, str):
            problems.append((field, "must be a string"))
    if problems:
        raise Invalid(problems=problems)
    return await password_login(request, conn, services, data["username"], data["password"])


class ProvidersAdminRoute(DialectRoute):
    dialect = DialectSpec("providers", envelope.error_response, authenticate_admin)


class ProvidersLoginRoute(DialectRoute):
    """POST /api/account/credentials/verify authenticates with the body's username and password."""

    dialect = DialectSpec("providers", envelope.error_response, authenticate_login)


# Documentation only (the route classes enforce): shows the access_token header in the OpenAPI document.
TOKEN = Security(
    APIKeyHeader(
        name=HEADER,
        auto_error=False,
        scheme_name="providers_access_token",
        description="token from POST /api/account/credentials/verify (32-64 characters)",
    )
)

login_api = APIRouter(route_class=ProvidersLoginRoute, tags=["providers: account"], dependencies=[])

_LOGIN = {
    "type": "object",
    "required": ["username", "password"],
    "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
}
_TOKEN = {
    "type": "object",
    "properties": {
        "access_token": {"type": "string", "description": "send it as the access_token header"},
        "expires": {"type": "integer", "description": "seconds until the token expires"},
        "role": {"type": "string", "enum": ["super_master", "master", "admin", "user"]},
        "api_version": {"type": "string"},
    },
}


@login_api.post(
    "/api/account/credentials/verify",
    summary="Log in; returns an access_token",
    openapi_extra=envelope.doc(body=_LOGIN, response=_TOKEN, public=True),
)
async def verify(request: Request):
    """Check the username and password and issue a token for the `access_token` header (valid for 24
    hours, in every dialect). `role` is the user's role; only admin roles may manage providers."""
    services, conn, user = ctx(request)
    token, _ = await services.identity.issue_token(conn, user, issued_by="providers", ttl=TOKEN_TTL, form="opaque")
    return envelope.respond(
        {
            "access_token": token,
            "expires": int(TOKEN_TTL.total_seconds()),
            "role": user.role,
            "api_version": envelope.API_VERSION,
        }
    )
