"""providers authentication.

`POST /api/account/credentials/verify` with `{"username", "password"}` gives an access token;
every other call carries it in the `access_token` header. The token is one of the identity
service's tokens (stored hashed; 24 hours), so it also works in the other dialects, and theirs
(a jade uuid, 36 characters) works here. A header shorter than 32 or longer than 64 characters
is refused as 401 before any lookup (the spec documents 64; its own sample sends 32).

Permissions: managing providers (every `/api/providers/*` route, reads included: a trunk's
host, auth id and parameters are PBX administration) needs a user whose role is admin, master
or super_master; any other valid token gets 403. Any active user may log in."""

from __future__ import annotations

from fastapi import Request

from switchboard.api.common import read_body
from switchboard.api.providers import envelope
from switchboard.domain.entities import User
from switchboard.domain.errors import Forbidden, Invalid, Unauthenticated

HEADER = "access_token"
MIN_TOKEN, MAX_TOKEN = 32, 64


def token_of(request: Request) -> str:
    token = request.headers.get(HEADER)
    if token is None or not token.strip():
        raise Unauthenticated("access_token header required: POST /api/account/credentials/verify to get one")
    token = token.strip()
    if not MIN_TOKEN <= len(token) <= MAX_TOKEN:
        raise Unauthenticated(f"access_token must be {MIN_TOKEN} to {MAX_TOKEN} characters")
    return token


async def authenticate_user(request: Request, conn, services) -> User:
    return await services.identity.authenticate_token(conn, token_of(request))


async def authenticate_admin(request: Request, conn, services) -> User:
    user = await authenticate_user(request, conn, services)
    if not user.is_admin:
        raise Forbidden("managing providers needs an admin account")
    return user


async def login(request: Request, conn, services) -> User:
    data = envelope.parse_object(await read_body(request))
    problems = []
    for field in ("username", "password"):
        value = data.get(field)
        if value is None or value == "":
            problems.append((field, "can't be blank"))
        elif not isinstance(value, str):
            problems.append((field, "must be a string"))
    if problems:
        raise Invalid(problems=problems)
    source = request.client.host if request.client else ""
    return await services.identity.authenticate_password(conn, data["username"], data["password"], source)
