"""Spear servers (probe servers): /servers[/{id}[/activate]].

The spec documents list, show, PATCH update, DELETE cancel and PATCH activate; creation is
ours: `POST /servers {"server": {...}}`. Admins create community servers (or private ones with
`"private": true`); users create private servers only. The creation response carries the
one-time `agent_key` the probe software logs in with; only its hash is kept. PUT is accepted
wherever the spec says PATCH. The spec's activate example still shows deleted_at set; activate
clears it (as the issue and the word "re-activate" say)."""

from __future__ import annotations

from fastapi import Request

from switchboard.api.common import ctx, parse_bool, parse_id
from switchboard.api.spear import schemas as sc
from switchboard.api.spear.envelope import render, render_list
from switchboard.api.spear.routing import body_of, each, location, router, status_of
from switchboard.domain.entities import Server

api = router("servers")


def fields(s: Server):
    return (
        ("id", s.id),
        ("name", s.name),
        ("ip_address", s.ip_address),
        ("description", s.description),
        ("private", s.private),
        ("region", s.region),
        ("version", s.version),
        ("last_login_date", s.last_login_date),
        ("last_login_ip", s.last_login_ip),
        ("created_at", s.created_at),
        ("deleted_at", s.deleted_at),
    )


@api.get("/servers", responses=sc.responses(sc.collection(sc.ServerOut), 422))
async def list_servers(
    request: Request,
    name: str | None = None,
    ip_address: str | None = None,
    community: str | None = None,
    private: str | None = None,
    status: str | None = None,
    deleted: str | None = None,
):
    """Community servers and your own private ones (admins: all). `community=false` or
    `private=false` leave that kind out; `status` is active (default), cancelled or all."""
    svc, conn, actor = ctx(request)
    servers = await svc.monitoring.list_servers(
        conn,
        actor,
        name=name,
        ip_address=ip_address,
        community=parse_bool(community, "community", True),
        private=parse_bool(private, "private", True),
        status=status_of(status, deleted),
    )
    return render_list(request, "servers", "server", [fields(s) for s in servers])


@api.get("/servers/{server_id}", responses=sc.responses(sc.ServerOut, 404))
async def show_server(request: Request, server_id: str):
    svc, conn, actor = ctx(request)
    server = await svc.monitoring.get_server(conn, actor, parse_id(server_id, "server"))
    return render(request, "server", fields(server))


@api.post(
    "/servers",
    status_code=201,
    responses=sc.responses(sc.ServerCreatedOut, 400, 403, 422),
    openapi_extra=sc.body("server", sc.SERVER_IN, required=["name", "ip_address"]),
)
async def create_server(request: Request):
    svc, conn, actor = ctx(request)
    server, agent_key = await svc.monitoring.create_server(conn, actor, await body_of(request, "server"))
    return render(
        request, "server", (*fields(server), ("agent_key", agent_key)), 201, location(request, f"/servers/{server.id}")
    )


@each(
    api,
    ("PATCH", "PUT"),
    "/servers/{server_id}",
    responses=sc.responses(sc.ServerOut, 400, 403, 404, 422),
    openapi_extra=sc.body("server", sc.SERVER_IN),
)
async def update_server(request: Request, server_id: str):
    """name, ip_address, description (and region). Users may change only their private servers."""
    svc, conn, actor = ctx(request)
    server = await svc.monitoring.update_server(
        conn, actor, parse_id(server_id, "server"), await body_of(request, "server")
    )
    return render(request, "server", fields(server))


@api.delete("/servers/{server_id}", responses=sc.responses(sc.ServerOut, 403, 404))
async def cancel_server(request: Request, server_id: str):
    svc, conn, actor = ctx(request)
    return render(
        request, "server", fields(await svc.monitoring.cancel_server(conn, actor, parse_id(server_id, "server")))
    )


@each(api, ("PATCH", "PUT"), "/servers/{server_id}/activate", responses=sc.responses(sc.ServerOut, 403, 404))
async def activate_server(request: Request, server_id: str):
    svc, conn, actor = ctx(request)
    return render(
        request, "server", fields(await svc.monitoring.activate_server(conn, actor, parse_id(server_id, "server")))
    )
