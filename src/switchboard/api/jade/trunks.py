"""jade trunks: `/manager/trunks` (CRUD) and the trunks' place in `/admin/pjsip/registration_outbounds`.

One trunk model (domain/trunks.py) behind the providers dialect and these routes: a trunk created
here is a PortSIP provider there and vice versa. `/manager/trunks/<detail>` names a trunk by its
name (jade names objects), or by its numeric id. Bodies use the providers' field names
(name, auth_mode, protocol, require_register, auth_id, password, hostname, port, outbound_server,
outbound_server_port, reregister_interval, ips, ...). The spec documents the routes without an
example; the view is the trunk with its live `status` (ONLINE/OFFLINE) and registration `state`;
the password shows as "********"."""

from __future__ import annotations

from fastapi import Request

from switchboard.api.common import MASK, after_commit, ctx, json_body
from switchboard.api.jade import envelope
from switchboard.api.jade.routing import router
from switchboard.domain.errors import NotFound

api = router("trunks")


def trunk_view(pbx, trunk) -> dict:
    state = pbx.trunk_states.get(trunk.id, {})
    return {
        "id": trunk.id,
        "uuid": trunk.uuid,
        "name": trunk.name,
        "auth_mode": trunk.auth_mode,
        "protocol": trunk.protocol,
        "require_register": trunk.require_register,
        "auth_id": trunk.auth_id,
        "password": MASK if trunk.password_enc else "",
        "hostname": trunk.hostname,
        "port": trunk.port,
        "outbound_server": trunk.outbound_server,
        "outbound_server_port": trunk.outbound_server_port,
        "reregister_interval": trunk.reregister_interval,
        "ips": list(trunk.ips),
        "provider_in_lan": trunk.provider_in_lan,
        "single_via_header": trunk.single_via_header,
        "status": pbx.trunk_status(trunk.id),
        "state": state.get("state", "Unregistered"),
        "tm_create": trunk.created_at,
        "tm_update": trunk.updated_at,
    }


def registration_view(pbx, trunk) -> dict:
    """A registering trunk as Asterisk shows an outbound `registration` object."""
    state = pbx.trunk_states.get(trunk.id, {})
    host = f"{trunk.hostname}:{trunk.port}" if trunk.port not in (0, 5060) else trunk.hostname
    proxy = f"sip:{trunk.outbound_server}:{trunk.outbound_server_port or 5060}" if trunk.outbound_server else ""
    return {
        "auth_rejection_permanent": "true",
        "client_uri": f"sip:{trunk.auth_id}@{host}",
        "contact_user": "",
        "endpoint": "",
        "expiration": trunk.reregister_interval,
        "fatal_retry_interval": 0,
        "forbidden_retry_interval": 0,
        "line": "false",
        "max_retries": 10,
        "next_reg": state.get("registration_time", 0) + state.get("refresh", 0) if state.get("online") else 0,
        "object_name": trunk.name,
        "object_type": "registration",
        "outbound_auth": trunk.name,
        "outbound_proxy": proxy,
        "retry_interval": 60,
        "server_uri": f"sip:{host}",
        "status": "Registered" if state.get("online") else state.get("state", "Unregistered"),
        "support_path": "false",
        "tm_update": envelope.ts(state.get("tm_update", pbx.started_ns)),
        "transport": f"transport-{trunk.protocol.lower()}",
    }


async def _find(request: Request, detail: str):
    services, conn, _ = ctx(request)
    trunk = await services.trunks.by_name(conn, detail)
    if trunk is None and detail.isascii() and detail.isdigit() and len(detail) < 19:
        trunk = await services.trunks.find(conn, int(detail))
    if trunk is None:
        raise NotFound("trunk", detail)
    return trunk


@api.get("/manager/trunks", summary="All trunks, with live status")
async def trunks_list(request: Request):
    services, conn, _ = ctx(request)
    return envelope.listing([trunk_view(services.pbx, t) for t in await services.trunks.all(conn)])


@api.post("/manager/trunks", summary="Create a trunk (the providers' fields)")
async def trunks_create(request: Request):
    services, conn, _ = ctx(request)
    await services.trunks.create(conn, await json_body(request))
    after_commit(request, services.pbx.trunks_changed())
    return envelope.ok()


@api.get("/manager/trunks/{detail}", summary="One trunk by name or id")
async def trunks_show(request: Request, detail: str):
    return envelope.respond(trunk_view(request.app.state.services.pbx, await _find(request, detail)))


@api.put("/manager/trunks/{detail}", summary="Update a trunk (partial)")
async def trunks_update(request: Request, detail: str):
    services, conn, _ = ctx(request)
    trunk = await _find(request, detail)
    await services.trunks.update(conn, trunk.id, await json_body(request))
    after_commit(request, services.pbx.trunks_changed())
    return envelope.ok()


@api.delete("/manager/trunks/{detail}", summary="Delete a trunk (the engine unregisters it)")
async def trunks_delete(request: Request, detail: str):
    services, conn, _ = ctx(request)
    trunk = await _find(request, detail)
    await services.trunks.delete(conn, trunk.id)
    after_commit(request, services.pbx.trunks_changed())
    return envelope.ok()
