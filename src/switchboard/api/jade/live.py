"""jade live views: /agents, /device_states, /peers, /registries.

Agents are agents.conf's (engine/apps/agents.py): the list holds every configured id; the detail shows the
agent's status (AGENT_LOGGEDOFF, AGENT_IDLE, AGENT_ONCALL), its login time and its logged-in channel's fields
(null while logged out).

Each has a list (`GET /x`), a body-keyed detail (`GET /x/` with `{"id"}`, `{"device"}`,
`{"peer"}` or `{"account"}`, as the spec documents) and a path form (`GET /x/<key>`, URL-encoded).
They read the engine's state: peers are the PJSIP endpoints (`PJSIP/<name>`; `SIP/<name>` and
the bare name are accepted too), device states `PJSIP/<name>` (and `Agent:<id>`), registries
the outbound registrations of pjsip.conf as `user@host:port`. Registration and qualify state is
filled in by the SIP engine: peers show the registrar's bindings and qualify ("OK (N ms)",
"UNREACHABLE"), registries the trunks the engine registers ("Registered", "Request Sent",
"Rejected", "Unregistered") and the pjsip.conf registrations."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request

from switchboard.api.common import json_body
from switchboard.api.jade import envelope
from switchboard.api.jade.routing import router
from switchboard.domain.errors import Invalid, NotFound

api = router("live")


async def _key(request: Request, key: str) -> str:
    data = await json_body(request, required=False)
    value = data.get(key) if data else request.query_params.get(key)
    if not isinstance(value, str) or not value:
        raise Invalid(key, f'is required: send {{"{key}": "..."}} as the body')
    return value


def _pbx(request: Request):
    return request.app.state.services.pbx


def _add(path: str, key: str, names, detail, label: str) -> None:
    async def list_all(request: Request):
        return envelope.listing([{key: n} for n in names(_pbx(request))])

    async def by_body(request: Request):
        return envelope.respond(detail(_pbx(request), await _key(request, key)))

    async def by_path(request: Request, item: str):
        return envelope.respond(detail(_pbx(request), item))

    tag = path.strip("/")
    api.add_api_route(path, list_all, methods=["GET"], summary=f"All {label}s", operation_id=f"jade_{tag}_list")
    api.add_api_route(
        path + "/",
        by_body,
        methods=["GET"],
        summary=f'One {label}, named by the body {{"{key}"}}',
        operation_id=f"jade_{tag}_by_body",
    )
    api.add_api_route(
        path + "/{item:path}",
        by_path,
        methods=["GET"],
        summary=f"One {label}, named in the path",
        operation_id=f"jade_{tag}_show",
    )


# ---- agents -------------------------------------------------------------------------------------
def _agent(pbx, ident: str) -> dict:
    agent = pbx.agents.get(ident)
    if agent is None:
        raise NotFound("agent", ident)
    return agent.view()


_add("/agents", "id", lambda pbx: list(pbx.agents), _agent, "agent")


# ---- device states ---------------------------------------------------------------------------------
def _device(pbx, device: str) -> dict:
    if device not in pbx.devices():
        raise NotFound("device", device)
    return {"device": device, "state": pbx.device_state(device), "tm_update": envelope.ts(pbx.pjsip_ns())}


_add("/device_states", "device", lambda pbx: pbx.devices(), _device, "device state")


# ---- peers ------------------------------------------------------------------------------------------
def _peer_names(pbx) -> list[str]:
    cfg = pbx.pjsip()
    return [f"PJSIP/{n}" for n in (cfg.endpoints if cfg else {})]


def _peer(pbx, peer: str) -> dict:
    cfg = pbx.pjsip()
    name = peer.split("/", 1)[1] if "/" in peer else peer
    if cfg is None or name not in cfg.endpoints:
        raise NotFound("peer", peer)
    ep = cfg.endpoints[name]
    aors = [a.strip() for a in ep.get("aors", "").split(",") if a.strip()]
    contacts = [c for a in aors for c in pbx.contacts_of(a)]
    qualify = any(cfg.aor_policy(a).qualify_frequency > 0 for a in aors if a in cfg.aors)
    if contacts:
        c = contacts[-1]
        status = "Registered"
        address = c.via_address
        if not qualify:
            monitor = "Unmonitored"
        elif c.status == "Reachable" and c.rtt_usec is not None:
            monitor = f"OK ({round(c.rtt_usec / 1000)} ms)"
        else:
            monitor = "UNREACHABLE" if c.status == "Unreachable" else "UNKNOWN"
    else:
        status, address, monitor = "Unregistered", "", "UNKNOWN" if qualify else "Unmonitored"
    yn = {"yes", "true", "on", "1"}
    symmetric = ep.get("rtp_symmetric", "no").lower() in yn
    return {
        "acl": "yes" if ep.get("acl") else "no",
        "address": address,
        "auto_comedia": "no",
        "auto_force_port": "no",
        "chan_object_type": "peer",
        "channel_type": "PJSIP",
        "comedia": "yes" if symmetric else "no",
        "description": "",
        "dynamic": "yes" if aors else "no",
        "force_port": "yes" if ep.get("force_rport", "yes").lower() in yn else "no",
        "monitor_status": monitor,
        "peer": f"PJSIP/{name}",
        "realtime_device": "no",
        "status": status,
        "text_support": "no",
        "tm_update": envelope.ts(pbx.pjsip_ns()),
        "video_support": "no",
    }


_add("/peers", "peer", _peer_names, _peer, "peer")


# ---- registries ------------------------------------------------------------------------------------------
def _uri_parts(uri: str) -> tuple[str, str, int]:
    u = uri.strip().strip("<>")
    if ":" in u and not u.startswith("//"):
        u = "//" + u.split(":", 1)[1]
    parts = urlsplit(u)
    try:
        port = parts.port or 5060
    except ValueError:
        port = 5060
    return parts.username or "", parts.hostname or "", port


def _registries(pbx) -> dict[str, dict]:
    cfg = pbx.pjsip()
    out = {}
    for trunk in pbx.trunks.values():  # trunks the engine registers (providers, /manager/trunks)
        if not trunk.registers:
            continue
        state = pbx.trunk_states.get(trunk.id, {})
        host, port = (
            (trunk.outbound_server, trunk.outbound_server_port or 5060)
            if trunk.outbound_server
            else (trunk.hostname, trunk.port or 5060)
        )
        account = f"{trunk.auth_id}@{trunk.hostname}:{trunk.port or 5060}"
        out[account] = {
            "account": account,
            "domain": trunk.hostname,
            "domain_port": trunk.port or 5060,
            "host": host,
            "port": port,
            "refresh": state.get("refresh", trunk.reregister_interval),
            "registration_time": state.get("registration_time", 0),
            "state": state.get("state", "Unregistered"),
            "tm_update": envelope.ts(state.get("tm_update", pbx.started_ns)),
            "username": trunk.auth_id,
            "name": trunk.name,
        }
    for name, reg in (cfg.registrations if cfg else {}).items():
        user, domain, dport = _uri_parts(reg.get("client_uri", ""))
        _, host, port = _uri_parts(reg.get("server_uri", ""))
        account = f"{user}@{host}:{port}"
        out[account] = {
            "account": account,
            "domain": domain,
            "domain_port": dport,
            "host": host,
            "port": port,
            "refresh": int(reg.get("expiration") or 3600),
            "registration_time": 0,
            "state": "Unregistered",
            "tm_update": envelope.ts(pbx.pjsip_ns()),
            "username": user,
            "name": name,
        }
    return out


def _registry(pbx, account: str) -> dict:
    regs = _registries(pbx)
    if account in regs:
        return regs[account]
    for reg in regs.values():  # "user@host" without the port, as the spec's example asks
        if f"{reg['username']}@{reg['host']}" == account:
            return reg
    raise NotFound("registry", account)


_add("/registries", "account", lambda pbx: list(_registries(pbx)), _registry, "registry")
