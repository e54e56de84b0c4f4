"""kazoo authentication.

`PUT /v2/user_auth` (the login, at the end of this module) takes KAZOO's `{"data": {"credentials":
md5("username:password"), "account_name": ...}}` (the username part in lower case) or `{"data":
{"username", "password"}}`; with `account_name` it must name an existing account (else 401, as a
wrong password). It answers 201 with `data` {account_id, owner_id (32 hex), account_name,
is_reseller, reseller_id, language, apps} and an `auth_token`: one of the identity service's
tokens (stored hashed, 24 hours), so it works in every dialect and theirs work here. Every other
call carries it in `X-Auth-Token` (or, as KAZOO also allows, `?auth_token=`).

Authentication levels (the spec's "Required Authentication Level"): `super_master` routes take
only super_master users (a master or admin gets 403); `master` routes (ports) take master,
admin and super_master. Plain users get 403 everywhere under /v2/support."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from switchboard.api.common import DialectRoute, DialectSpec, ctx, json_body
from switchboard.api.kazoo import envelope
from switchboard.domain import repos
from switchboard.domain.entities import User
from switchboard.domain.errors import Forbidden, Unauthenticated
from switchboard.domain.kazoo import KazooInvalid

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


# ---- login: PUT /v2/user_auth ------------------------------------------------------------------------
class LoginRoute(DialectRoute):
    dialect = DialectSpec("kazoo", envelope.error_response, public)
    public = True


login_api = APIRouter(route_class=LoginRoute, tags=["kazoo: authentication"])
_USER_AUTH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "data": {
                            "type": "object",
                            "properties": {
                                "credentials": {"type": "string", "description": "md5(username:password)"},
                                "account_name": {"type": "string"},
                                "username": {"type": "string"},
                                "password": {"type": "string"},
                            },
                        }
                    },
                }
            }
        },
    }
}


@login_api.put("/user_auth", status_code=201, summary="Get an auth token", openapi_extra=_USER_AUTH_BODY)
async def user_auth(request: Request):
    services, conn, _ = ctx(request)
    data = envelope.data_of(await json_body(request, missing='a JSON body is required: {"data": {...}}'))
    source = request.client.host if request.client else ""
    identity, kazoo = services.identity, services.kazoo
    creds, username, password = data.get("credentials"), data.get("username"), data.get("password")
    account_name = data.get("account_name")
    problems = []
    for k, v in (
        ("credentials", creds),
        ("username", username),
        ("password", password),
        ("account_name", account_name),
    ):
        if v is not None and not isinstance(v, str):
            problems.append((k, "type", "Value is not of type 'string'"))
    if not problems and not creds and not (username and password):
        problems.append(
            ("credentials", "required", "credentials (md5 of username:password) or username and password are required")
        )
    if problems:
        raise KazooInvalid(problems)
    account = None
    if account_name:
        account = await kazoo.account_by_name(conn, account_name)
    if creds:
        # the md5 credentials name no account until they match one: they are their own throttle
        # key (each wrong guess is a new one, so the per-source limit is what bounds guessing)
        identity.check_rate(source, creds)
        user_id = await kazoo.user_id_by_credentials(conn, creds)
        user = await repos.users.get(conn, user_id) if user_id is not None else None
        if user is None or not user.active or (account_name and account is None):
            identity.record_failure(source, creds)
            raise Unauthenticated("invalid credentials")
        identity.throttle.succeeded(source, creds.lower())
    else:
        user = await identity.authenticate_password(conn, username, password, source)
        if account_name and account is None:
            identity.record_failure(source, username)
            raise Unauthenticated("invalid credentials")
        # the md5 form works from now on for users created before it was kept
        await kazoo.set_credentials(conn, user.id, user.username, password)
    token, _ = await identity.issue_token(conn, user, issued_by="kazoo")
    request.state.kazoo_token = token
    data = {
        "account_id": account["id"] if account else None,
        "owner_id": uuid.UUID(user.uuid).hex,
        "account_name": account["name"] if account else None,
        "is_reseller": user.role == "super_master",
        "reseller_id": None,
        "language": "en-us",
        "apps": [],
    }
    return envelope.respond(request, data, 201)
