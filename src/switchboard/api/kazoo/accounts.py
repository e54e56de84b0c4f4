"""kazoo accounts (the login, `PUT /v2/user_auth`, is in auth.py).

Accounts (the administrator's API the issue asks for; KAZOO's own account API is richer):
`PUT /v2/accounts` `{"data": {"name", "realm"?}}` → 201 with a 32-hex `id` (super_master);
`GET /v2/accounts`, `GET /v2/accounts/{ACCOUNT_ID}` (master). The CLI has `switchboard account
create NAME`."""

from __future__ import annotations

from fastapi import Request

from switchboard.api.common import ctx
from switchboard.api.kazoo import envelope
from switchboard.api.kazoo.routing import BODIES, MasterRoute, body, router

accounts_api = router("accounts")
accounts_read_api = router("accounts", MasterRoute)


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
