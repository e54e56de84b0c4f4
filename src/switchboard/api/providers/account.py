"""providers login: `POST /api/account/credentials/verify`."""

from __future__ import annotations

from datetime import timedelta

from fastapi import Request

from switchboard.api.providers import envelope
from switchboard.api.providers.routing import ProvidersLoginRoute, ctx, doc, router

TOKEN_TTL = timedelta(hours=24)

api = router("account", route_class=ProvidersLoginRoute, dependencies=[])

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


@api.post(
    "/api/account/credentials/verify",
    summary="Log in; returns an access_token",
    openapi_extra=doc(body=_LOGIN, response=_TOKEN, public=True),
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
