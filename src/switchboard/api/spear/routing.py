"""The spear route class and the small helpers every spear handler uses (`ctx` is api.common's)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from switchboard.api.common import DialectRoute, DialectSpec, parse_bool, parse_id, read_body
from switchboard.api.spear import auth, envelope
from switchboard.domain.errors import Invalid


class SpearRoute(DialectRoute):
    dialect = DialectSpec("spear", envelope.error_response, auth.authenticate)


class SpearPublicRoute(SpearRoute):
    public = True


def router(tag: str) -> APIRouter:
    return APIRouter(route_class=SpearRoute, tags=[f"spear: {tag}"])


def each(api: APIRouter, methods: tuple[str, ...], path: str, **kw):
    """One handler under several methods (PUT and PATCH), each its own route and operation id."""

    def register(fn):
        for m in methods:
            api.add_api_route(path, fn, methods=[m], **kw)
        return fn

    return register


def user_id_of(request: Request, value: str) -> int:
    """`/users/me/...` names the caller (as VoIP Spear allows); otherwise an integer id."""
    return request.state.user.id if value == "me" else parse_id(value, "user")


def status_of(status: str | None, deleted: str | None) -> str:
    """`status` (active|cancelled|all) wins; else the bare `deleted` flag adds cancelled records."""
    if status is not None:
        s = status.strip().lower()
        if s not in ("active", "cancelled", "canceled", "all"):
            raise Invalid("status", "must be one of: active, cancelled, all")
        return "cancelled" if s == "canceled" else s
    return "all" if parse_bool(deleted, "deleted", False) else "active"


async def body_of(request: Request, item: str) -> dict:
    raw = await read_body(request, envelope.BODY_TYPES)
    return envelope.parse_body(raw, request.headers.get("content-type", ""), item)


def location(request: Request, path: str) -> dict[str, str]:
    return {"Location": str(request.base_url).rstrip("/") + path}
