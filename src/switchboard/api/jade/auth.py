"""jade authentication: `POST /admin/login` with HTTP Basic gives a uuid authtoken; every other
call carries it as `?authtoken=`. The token is one of the identity service's tokens (stored
hashed), so it works in every dialect, and a token from another dialect's login works here.

Permissions: jade knows "admin" and "user". A user whose role is admin, master or super_master
holds both; any other user holds "user". `/admin/*`, `/manager/*` and the live PBX views need
"admin"; `/me/*`, `/admin/info` (the caller's own record) and `DELETE /admin/login` need only a
valid token."""

from __future__ import annotations

from fastapi import Request

from switchboard.api.common import basic_credentials
from switchboard.domain.entities import User
from switchboard.domain.errors import Forbidden, Unauthenticated


def token_of(request: Request) -> str:
    token = request.query_params.get("authtoken") or request.headers.get("x-auth-token") or ""
    token = token.strip()
    if not token:
        raise Unauthenticated("authtoken required: POST /admin/login with HTTP Basic to get one")
    return token


async def authenticate_user(request: Request, conn, services) -> User:
    return await services.identity.authenticate_token(conn, token_of(request))


async def authenticate_admin(request: Request, conn, services) -> User:
    user = await authenticate_user(request, conn, services)
    if not user.is_admin:
        raise Forbidden("this call needs the admin permission")
    return user


async def login(request: Request, conn, services) -> User:
    username, password = basic_credentials(request)
    source = request.client.host if request.client else ""
    return await services.identity.authenticate_password(conn, username, password, source)


def permissions_of(user: User) -> list[str]:
    return ["admin", "user"] if user.is_admin else ["user"]
