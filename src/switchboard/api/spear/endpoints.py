"""Spear endpoints: /users/{user_id}/endpoints[/{id}[/activate]] (PUT per the spec; PATCH too)."""

from __future__ import annotations

from fastapi import Request

from switchboard.api.common import ctx, parse_id
from switchboard.api.spear import schemas as sc
from switchboard.api.spear.envelope import json_record, render, render_json_list, render_list, wants_xml
from switchboard.api.spear.routing import body_of, each, location, router, status_of, user_id_of
from switchboard.domain import repos
from switchboard.domain.entities import Endpoint

api = router("endpoints")


def fields(e: Endpoint):
    return (
        ("id", e.id),
        ("name", e.name),
        ("description", e.description),
        ("ip_address", e.ip_address),
        ("is_server", e.is_server),
        ("created_at", e.created_at),
        ("deleted_at", e.deleted_at),
    )


# an endpoint's JSON record, kept by its row (a list's records come back request after request)
_JSON = repos.Views(lambda e: json_record(fields(e)))


@api.get("/users/{user_id}/endpoints", responses=sc.responses(sc.collection(sc.EndpointOut), 403, 404, 422))
async def list_endpoints(
    request: Request,
    user_id: str,
    name: str | None = None,
    ip_address: str | None = None,
    deleted: str | None = None,
    status: str | None = None,
):
    """Active endpoints; `?deleted` adds cancelled ones; name/ip_address: case-insensitive partial."""
    svc, conn, actor = ctx(request)
    xml = wants_xml(request)
    eps = await svc.monitoring.list_endpoints(
        conn,
        actor,
        user_id_of(request, user_id),
        name=name,
        ip_address=ip_address,
        status=status_of(status, deleted),
        views=None if xml else _JSON,
    )
    if not xml:
        return render_json_list(eps)
    return render_list(request, "endpoints", "endpoint", [fields(e) for e in eps])


@api.get("/users/{user_id}/endpoints/{endpoint_id}", responses=sc.responses(sc.EndpointOut, 403, 404))
async def show_endpoint(request: Request, user_id: str, endpoint_id: str):
    svc, conn, actor = ctx(request)
    ep = await svc.monitoring.get_endpoint(conn, actor, user_id_of(request, user_id), parse_id(endpoint_id, "endpoint"))
    return render(request, "endpoint", fields(ep))


@api.post(
    "/users/{user_id}/endpoints",
    status_code=201,
    responses=sc.responses(sc.EndpointOut, 400, 403, 404, 422),
    openapi_extra=sc.body("endpoint", sc.ENDPOINT_IN, required=["name", "ip_address"]),
)
async def create_endpoint(request: Request, user_id: str):
    svc, conn, actor = ctx(request)
    uid = user_id_of(request, user_id)
    ep = await svc.monitoring.create_endpoint(conn, actor, uid, await body_of(request, "endpoint"))
    return render(request, "endpoint", fields(ep), 201, location(request, f"/users/{uid}/endpoints/{ep.id}"))


@each(
    api,
    ("PUT", "PATCH"),
    "/users/{user_id}/endpoints/{endpoint_id}",
    responses=sc.responses(sc.EndpointOut, 400, 403, 404, 422),
    openapi_extra=sc.body("endpoint", sc.ENDPOINT_IN),
)
async def update_endpoint(request: Request, user_id: str, endpoint_id: str):
    """name and description. The IP address cannot change: the same one is accepted, another is 422."""
    svc, conn, actor = ctx(request)
    ep = await svc.monitoring.update_endpoint(
        conn, actor, user_id_of(request, user_id), parse_id(endpoint_id, "endpoint"), await body_of(request, "endpoint")
    )
    return render(request, "endpoint", fields(ep))


@api.delete("/users/{user_id}/endpoints/{endpoint_id}", responses=sc.responses(sc.EndpointOut, 403, 404))
async def cancel_endpoint(request: Request, user_id: str, endpoint_id: str):
    svc, conn, actor = ctx(request)
    ep = await svc.monitoring.cancel_endpoint(
        conn, actor, user_id_of(request, user_id), parse_id(endpoint_id, "endpoint")
    )
    return render(request, "endpoint", fields(ep))


@each(
    api,
    ("PUT", "PATCH"),
    "/users/{user_id}/endpoints/{endpoint_id}/activate",
    responses=sc.responses(sc.EndpointOut, 403, 404),
)
async def activate_endpoint(request: Request, user_id: str, endpoint_id: str):
    svc, conn, actor = ctx(request)
    ep = await svc.monitoring.activate_endpoint(
        conn, actor, user_id_of(request, user_id), parse_id(endpoint_id, "endpoint")
    )
    return render(request, "endpoint", fields(ep))
