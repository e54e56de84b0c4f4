"""providers: SIP trunks as PortSIP shows them (`/api/providers/create|update|show|list|destroy`).

- A provider is a view of the one trunk model (domain/trunks.py: fields, defaults and rules).
- `status` is live state (ONLINE/OFFLINE from the engine's registration or qualify); a request's
  `status` is ignored, as are unknown fields. The password is never returned: "********" when one
  is stored, "" when not; an update that sends "********" back leaves it unchanged.
- `create` → `{"id": N}`; `update` (partial: only the given fields change) and `destroy` → `{}`.
- `show` takes the id as `?id=N` or, as the spec's sample sends no query, in a JSON body.
- `list`: `pagination` (1-based, default 1) and `pagesize` (1-1000, default 10) from the query (or
  a JSON body); `sort_by` DEFAULT (by id, i.e. creation order; the default) or OPTIONAL (by name,
  then id), any case. `page_count` = ceil(count / pagesize); a page beyond the end is empty.
- An id that names no provider → 400 "Invalid provider ID supplied." on show, update and destroy.
- Every write tells the engine to re-read the trunks once it is committed.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from switchboard.api.common import MASK, ctx, json_body
from switchboard.api.providers import envelope
from switchboard.api.providers.routing import PROVIDER, PROVIDER_FIELDS, after_commit, doc, provider_id, query, router
from switchboard.domain.errors import Invalid
from switchboard.domain.trunks import Trunk

api = router("providers")

SORTS = {"DEFAULT": "id", "OPTIONAL": "name"}
DEFAULT_PAGESIZE, MAX_PAGESIZE = 10, 1000


def provider_view(services, trunk: Trunk) -> dict[str, Any]:
    return {
        "id": trunk.id,
        "name": trunk.name,
        "auth_mode": trunk.auth_mode,
        "protocol": trunk.protocol,
        "require_register": trunk.require_register,
        "auth_id": trunk.auth_id,
        "password": MASK if services.trunks.password(trunk) else "",
        "hostname": trunk.hostname,
        "port": trunk.port,
        "outbound_server": trunk.outbound_server,
        "outbound_server_port": trunk.outbound_server_port,
        "reregister_interval": trunk.reregister_interval,
        "ips": list(trunk.ips),
        "in_parameters": list(trunk.in_parameters),
        "out_parameters": list(trunk.out_parameters),
        "provider_in_lan": trunk.provider_in_lan,
        "single_via_header": trunk.single_via_header,
        "status": services.pbx.trunk_status(trunk.id),
    }


def _positive(value: Any, field: str, low: int, high: int | None = None) -> int:
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 18:
            raise Invalid(field, "must be an integer")
        value = int(text)
    elif isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(field, "must be an integer")
    if value < low or (high is not None and value > high):
        raise Invalid(field, f"must be between {low} and {high}" if high else f"must be at least {low}")
    return value


async def _params(request: Request, *names: str) -> dict[str, Any]:
    """GET parameters from the query; those absent there from a JSON body, if one is sent."""
    found = {n: request.query_params[n] for n in names if n in request.query_params}
    if len(found) < len(names):
        data = await json_body(request, required=False)
        found.update({n: data[n] for n in names if n not in found and data.get(n) is not None})
    return found


_CREATE = {
    "type": "object",
    "required": ["name", "auth_mode", "protocol", "hostname", "port"],
    "properties": PROVIDER_FIELDS,
}
_UPDATE = {
    "type": "object",
    "required": ["id"],
    "properties": {"id": {"type": "integer", "format": "int64", "minimum": 1}, **PROVIDER_FIELDS},
}
_ID = {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer", "format": "int64", "minimum": 1}}}
_CREATED = {"type": "object", "properties": {"id": {"type": "integer", "format": "int64"}}}
_PAGE = {
    "type": "object",
    "properties": {
        "count": {"type": "integer"},
        "page_count": {"type": "integer"},
        "pagination": {"type": "integer"},
        "pagesize": {"type": "integer"},
        "sort_by": {"type": "string", "enum": list(SORTS)},
        "providers": {"type": "array", "items": PROVIDER},
    },
}


@api.post("/api/providers/create", summary="Create provider", openapi_extra=doc(body=_CREATE, response=_CREATED))
async def create(request: Request):
    """Add a provider. Required: name, auth_mode, protocol, hostname, port (and auth_id, password
    for REGISTER_AUTH); the other fields have defaults. `id` and `status` are ignored."""
    services, conn, _ = ctx(request)
    trunk = await services.trunks.create(conn, await json_body(request))
    after_commit(request, services.pbx.trunks_changed())
    return envelope.respond({"id": trunk.id})


@api.post("/api/providers/update", summary="Update provider", openapi_extra=doc(body=_UPDATE))
async def update(request: Request):
    """Change the given fields of provider `id`; the others keep their values."""
    services, conn, _ = ctx(request)
    data = await json_body(request)
    await services.trunks.update(conn, provider_id(data.get("id")), data)
    after_commit(request, services.pbx.trunks_changed())
    return envelope.respond({})


@api.get(
    "/api/providers/show",
    summary="Retrieve provider",
    openapi_extra=doc(
        response=PROVIDER,
        parameters=[
            query(
                "id",
                {"type": "integer", "format": "int64", "minimum": 1},
                'The provider\'s id (or send {"id": N} as a JSON body).',
            )
        ],
    ),
)
async def show(request: Request):
    """One provider by id, with its live status; the password is never shown."""
    services, conn, _ = ctx(request)
    params = await _params(request, "id")
    trunk = await services.trunks.get(conn, provider_id(params.get("id")))
    return envelope.respond(provider_view(services, trunk))


@api.get(
    "/api/providers/list",
    summary="Retrieve a collection of providers",
    openapi_extra=doc(
        response=_PAGE,
        parameters=[
            query(
                "pagination", {"type": "integer", "format": "int32", "minimum": 1}, "1-based page number; default 1."
            ),
            query(
                "pagesize",
                {"type": "integer", "minimum": 1, "maximum": MAX_PAGESIZE},
                f"Page size, 1-{MAX_PAGESIZE}; default {DEFAULT_PAGESIZE}.",
            ),
            query(
                "sort_by",
                {"type": "string", "enum": list(SORTS)},
                "DEFAULT: by id (creation order); OPTIONAL: by name. Default DEFAULT.",
            ),
        ],
    ),
)
async def list_providers(request: Request):
    """A page of providers with the total count and number of pages."""
    services, conn, _ = ctx(request)
    params = await _params(request, "pagination", "pagesize", "sort_by")
    problems: list[tuple[str, str]] = []
    pagination = pagesize = 0
    try:
        pagination = _positive(params.get("pagination", 1), "pagination", 1)
    except Invalid as e:
        problems += e.problems
    try:
        pagesize = _positive(params.get("pagesize", DEFAULT_PAGESIZE), "pagesize", 1, MAX_PAGESIZE)
    except Invalid as e:
        problems += e.problems
    sort_by = params.get("sort_by", "DEFAULT")
    if not isinstance(sort_by, str) or sort_by.strip().upper() not in SORTS:
        problems.append(("sort_by", "must be one of: " + ", ".join(SORTS)))
    else:
        sort_by = sort_by.strip().upper()
    if problems:
        raise Invalid(problems=problems)
    count = await services.trunks.count(conn)
    offset = (pagination - 1) * pagesize
    trunks = (
        await services.trunks.list(conn, offset=offset, limit=pagesize, sort=SORTS[sort_by]) if offset < count else []
    )
    return envelope.respond(
        {
            "count": count,
            "page_count": -(-count // pagesize),
            "pagination": pagination,
            "pagesize": pagesize,
            "sort_by": sort_by,
            "providers": [provider_view(services, t) for t in trunks],
        }
    )


@api.post("/api/providers/destroy", summary="Destroy provider", openapi_extra=doc(body=_ID))
async def destroy(request: Request):
    """Delete provider `id` (the engine unregisters it); unknown id → 400 "Invalid provider ID supplied."."""
    services, conn, _ = ctx(request)
    data = await json_body(request)
    await services.trunks.delete(conn, provider_id(data.get("id")))
    after_commit(request, services.pbx.trunks_changed())
    return envelope.respond({})
