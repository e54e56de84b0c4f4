"""jade authentication: `POST /admin/login` with HTTP Basic gives a uuid authtoken; every other
call carries it as `?authtoken=`. The token is one of the identity service's tokens (stored
hashed), so it works in every dialect, and a token from another dialect's login works here.

Permissions: jade knows "admin" and "user". A user whose role is admin, master or super_master
holds both; any other user holds "user". `/admin/*`, `/manager/*` and the live PBX views need
"admin"; `/me/*`, `/admin/info` (the caller's own record) and `DELETE /admin/login` need only a
valid token.

This module holds the route classes of those levels and the login and logout handlers."""

from __future__ import annotations

from fastapi import APIRouter, Request, Security
from fastapi.security import APIKeyQuery, HTTPBasic

from switchboard.api.common import (
    DialectRoute,
    DialectSpec,
    basic_credentials,
    ctx,
    password_login,
    token_authenticator,
)
from switchboard.api.jade import envelope
from switchboard.domain.entities import User
from switchboard.domain.errors import Unauthenticated


def token_of(request: Request) -> str:
    token = request.query_params.get("authtoken") or request.headers.get("x-auth-token") or ""
    token = token.strip()
    if not token:
        raise Unauthenticated("authtoken required: POST /admin/login with HTTP Basic to get one")
    return token


authenticate_user = token_authenticator(token_of)
authenticate_admin = token_authenticator(token_of, admin_only="this call needs the admin permission")


async def authenticate_basic(request: Request, conn, services) -> User:
    """POST /admin/login: the user of the HTTP Basic credentials."""
    username, password = basic_credentials(request)
    return await password_login(request, conn, services, username, password)


def permissions_of(user: User) -> list[str]:
    return ["admin", "user"] if user.is_admin else ["user"]


class JadeAdminRoute(DialectRoute):
    dialect = DialectSpec("jade", envelope.error_response, authenticate_admin)


class JadeAdminCallRoute(JadeAdminRoute):
    """Admin routes that act on live calls (originate, hang up): they await the call engine, so no
    database transaction is held across the call (authentication still reads first)."""

    own_transaction = True


class JadeUserRoute(DialectRoute):
    dialect = DialectSpec("jade", envelope.error_response, authenticate_user)


class JadeLoginRoute(DialectRoute):
    """POST /admin/login authenticates with HTTP Basic instead of a token."""

    dialect = DialectSpec("jade", envelope.error_response, authenticate_basic)


# Documentation only (the route classes enforce): shows the authtoken in the OpenAPI document.
TOKEN = Security(
    APIKeyQuery(
        name="authtoken", auto_error=False, scheme_name="jade_authtoken", description="uuid from POST /v1/admin/login"
    )
)
BASIC = Security(HTTPBasic(auto_error=False, scheme_name="jade_login"))

login_api = APIRouter(route_class=JadeLoginRoute, tags=["jade: login"], dependencies=[BASIC])
logout_api = APIRouter(route_class=JadeUserRoute, tags=["jade: login"], dependencies=[TOKEN])


@login_api.post("/admin/login", summary="Log in with HTTP Basic; returns result.authtoken")
async def login(request: Request):
    services, conn, user = ctx(request)
    token, _ = await services.identity.issue_token(conn, user, issued_by="jade", form="uuid")
    return envelope.respond({"authtoken": token})


@logout_api.delete("/admin/login", summary="Revoke the authtoken given as ?authtoken=")
async def logout(request: Request):
    services, conn, _ = ctx(request)
    await services.identity.revoke_token(conn, token_of(request))
    return envelope.ok()
