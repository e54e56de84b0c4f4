"""kazoo authentication.

`PUT /v2/user_auth` takes KAZOO's `{"data": {"credentials": md5("username:password"),
"account_name": ...}}` or `{"data": {"username", "password"}}` and answers 201 with an
`auth_token`: one of the identity service's tokens (stored hashed, 24 hours), so it works in every
dialect and theirs work here. Every other call carries it in `X-Auth-Token` (or, as KAZOO also
allows, `?auth_token=`).

Authentication levels (the spec's "Required Authentication Level"): `super_master` routes take
only super_master users (a master or admin gets 403); `master` routes (ports) take master,
admin and super_master. Plain users get 403 everywhere under /v2/support."""

from __future__ import annotations

from fastapi import Request

from switchboard.domain.entities import User
from switchboard.domain.errors import Forbidden, Unauthenticated

HEADER = "X-Auth-Token"
QUERY = "auth_token"
MASTER_ROLES = frozenset({"super_master", "master", "admin"})


def token_of(request: Request) -> str:
    token = request.headers.get(HEADER) or request.query_params.get(QUERY)
    if not token or not token.strip():
        raise Unauthenticated("X-Auth-Token header required: PUT /v2/user_auth to get one")
    token = token.strip()
    if len(token) > 256:
        raise Unauthenticated("invalid or expired token")
    return token


async def authenticate(request: Request, conn, services) -> User:
    token = token_of(request)
    user = await services.identity.authenticate_token(conn, token)
    request.state.kazoo_token = token  # checked: the responses to this request may echo it
    return user


async def authenticate_super(request: Request, conn, services) -> User:
    user = await authenticate(request, conn, services)
    if user.role != "super_master":
        raise Forbidden("this API requires the super_master authentication level")
    return user


async def authenticate_master(request: Request, conn, services) -> User:
    user = await authenticate(request, conn, services)
    if user.role not in MASTER_ROLES:
        raise Forbidden("this API requires the master authentication level")
    return user


async def public(request: Request, conn, services) -> None:
    return None
