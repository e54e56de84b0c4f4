"""kazoo authentication and accounts.

`PUT /v2/user_auth` (201): `{"data": {"credentials": md5("username:password"), "account_name"}}`
(KAZOO's form; the username part in lower case) or `{"data": {"username", "password"}}`. With
`account_name`, it must name an existing account (else 401, as a wrong password). Answers
`auth_token` and `data` {account_id (the named account, else null), owner_id (the user's id as 32
hex), account_name, is_reseller, reseller_id, language, apps}.

Accounts (the administrator's API the issue asks for; KAZOO's own account API is richer):
`PUT /v2/accounts` `{"data": {"name", "realm"?}}` → 201 with a 32-hex `id` (super_master);
`GET /v2/accounts`, `GET /v2/accounts/{ACCOUNT_ID}` (master). The CLI has `switchboard account
create NAME`."""

from __future__ import annotations

import uuid

from fastapi import Request

from switchboard.api.common import ctx
from switchboard.api.kazoo import envelope
from switchboard.api.kazoo.routing import BODIES, LoginRoute, MasterRoute, body, router
from switchboard.domain import repos
from switchboard.domain.errors import Unauthenticated
from switchboard.domain.kazoo import KazooInvalid

auth_api = router("authentication", LoginRoute, token=False)
accounts_api = router("accounts")
accounts_read_api = router("accounts", MasterRoute)


@auth_api.put("/user_auth", status_code=201, summary="Get an auth token", openapi_extra=BODIES["user_auth"])
async def user_auth(request: Request):
    services, conn, _ = ctx(request)
    data = envelope.data_of(await body(request))
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


@accounts_api.put("/accounts", status_code=201, summary="Create an account", openapi_extra=BODIES["account"])
async def create_account(request: Request):
    services, conn, _ = ctx(request)
    data = envelope.data_of(await body(request))
    return envelope.respond(request, await services.kazoo.create_account(conn, data), 201)


@accounts_read_api.get("/accounts", summary="List accounts")
async def list_accounts(request: Request):
    services, conn, _ = ctx(request)
    return envelope.respond(request, await services.kazoo.accounts(conn))


@accounts_read_api.get("/accounts/{account_id}", summary="Get an account")
async def get_account(request: Request, account_id: str):
    services, conn, _ = ctx(request)
    return envelope.respond(request, await services.kazoo.account(conn, account_id))
