"""jade route classes and small request helpers.

Each resource module builds an APIRouter with `router(tag)` (admin permission) or
`router(tag, me=True)` (any user); `api/jade/__init__.py` mounts every router twice, under `/v1`
and bare, as jade serves both."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from switchboard.api.common import DialectRoute, read_body
from switchboard.api.jade import auth, envelope


class _Jade:
    name = "jade"
    error_response = staticmethod(envelope.error_response)

    def __init__(self, authenticate):
        self.authenticate = authenticate


class JadeAdminRoute(DialectRoute):
    dialect = _Jade(auth.authenticate_admin)


class JadeUserRoute(DialectRoute):
    dialect = _Jade(auth.authenticate_user)


class JadeLoginRoute(DialectRoute):
    """POST /admin/login authenticates with HTTP Basic instead of a token."""

    dialect = _Jade(auth.login)


def router(tag: str, *, me: bool = False) -> APIRouter:
    return APIRouter(route_class=JadeUserRoute if me else JadeAdminRoute, tags=[f"jade: {tag}"])


def ctx(request: Request):
    """(services, connection, acting user) of this request."""
    return request.app.state.services, request.state.conn, request.state.user


async def body(request: Request, *, required: bool = True) -> dict:
    return envelope.parse_object(await read_body(request), required=required)


async def raw_body(request: Request) -> bytes:
    return await read_body(request)


def after_commit(request: Request, fn) -> None:
    """Run fn() once this request's transaction has committed (e.g. reload the engine's config)."""
    request.state.after_commit = [*getattr(request.state, "after_commit", ()), fn]


def pick(data: dict, key: str, kind: type | tuple[type, ...] = str, *, field: str | None = None) -> Any:
    from switchboard.domain.errors import Invalid

    value = data.get(key)
    if value is not None and not isinstance(value, kind):
        raise Invalid(field or key, "has the wrong type")
    return value
