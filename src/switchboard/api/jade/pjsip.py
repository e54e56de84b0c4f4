"""jade PJSIP: pjsip.conf at file level, and the objects the engine loaded from it (endpoints,
aors, auths, contacts, outbound registrations) with Asterisk's defaults (asterisk/pjsip.py).
Auth secrets show as "********" (never in clear). Contacts are the registrar's live state."""

from __future__ import annotations

import orjson
from fastapi import Request

from switchboard.api.jade import envelope, trunks
from switchboard.api.jade.configs import add_config_routes
from switchboard.api.jade.routing import router
from switchboard.asterisk import pjsip
from switchboard.domain.errors import NotFound

api = router("pjsip")
add_config_routes(api, "/admin/pjsip", "pjsip", "pjsip.conf")

_DEVICE_TEXT = {
    "NOT_INUSE": "Not in use",
    "INUSE": "In use",
    "UNAVAILABLE": "Unavailable",
    "BUSY": "Busy",
    "RINGING": "Ringing",
    "RINGINUSE": "Ring+Inuse",
    "ONHOLD": "On Hold",
    "INVALID": "Invalid",
    "UNKNOWN": "Unknown",
}


def _cfg(request: Request):
    pbx = request.app.state.services.pbx
    return pbx, pbx.pjsip(), envelope.ts(pbx.pjsip_ns())


def _endpoint_state(pbx, cfg, name: str) -> tuple[str, str]:
    """(device state text, live channel names comma separated): what an endpoint's view shows of
    the engine's live state, so what its cached view is keyed on."""
    channels = pbx.channels_of(name)
    return _live(pbx.endpoint_state(cfg, name, channels), channels)


def _live(state: str, channels) -> tuple[str, str]:
    return _DEVICE_TEXT.get(state, "Unknown"), ",".join(ch.name for ch in channels)


def _endpoint(pbx, cfg, name: str, tm: str, state: tuple[str, str] | None = None) -> dict:
    """Rendered once per (configuration load, device state, live channels): ~115 fields with
    defaults applied. `active_channels` names the endpoint's live channels, comma separated."""
    state, active = state or _endpoint_state(pbx, cfg, name)
    key = ("endpoint", name, state, active)
    view = pbx.view_cache.get(key)
    if view is None:
        view = pbx.view_cache[key] = pjsip.endpoint_view(
            cfg, name, device_state=state, active_channels=active, tm_update=tm
        )
    return view


def _endpoint_bytes(pbx, cfg, name: str, tm: str, state: tuple[str, str]) -> bytes:
    """_endpoint's view as the JSON a list holds (keys sorted, as envelope.respond writes them),
    cached beside it: serialising ~115 fields per endpoint was most of a 100-endpoint list's cost.
    `state`: _endpoint_state's."""
    key = ("endpoint json", name, *state)
    text = pbx.view_cache.get(key)
    if text is None:
        text = pbx.view_cache[key] = orjson.dumps(_endpoint(pbx, cfg, name, tm, state), option=orjson.OPT_SORT_KEYS)
    return text


_IDLE = _live("UNAVAILABLE", ())  # Pbx.busy_endpoints leaves out the endpoints in this state


def _endpoint_list(pbx, cfg, tm: str) -> bytes:
    """The JSON array (its bytes) of every endpoint's view, kept by the live state of the busy endpoints (the
    others are idle): asked again while no endpoint changed state, the same array, whatever the
    number of endpoints (their live states are all it depends on, as each endpoint's JSON;
    configuration reloads empty the view cache)."""
    busy = {name: _live(state, channels) for name, (state, channels) in pbx.busy_endpoints(cfg).items()}
    key = ("endpoint list", frozenset(busy.items()))
    text = pbx.view_cache.get(key)
    if text is None:
        items = b",".join(_endpoint_bytes(pbx, cfg, name, tm, busy.get(name, _IDLE)) for name in cfg.endpoints)
        text = pbx.view_cache[key] = b"[%b]" % items
    return text


def _aor(pbx, cfg, name: str, tm: str) -> dict:
    return pjsip.aor_view(cfg, name, contacts=[b.uri for b in pbx.contacts_of(name)], tm_update=tm)


def contact_views(pbx, cfg) -> list[dict]:
    """Registered contacts (the registrar's bindings) with their qualify state."""
    out = []
    for aor in cfg.aors if cfg else {}:
        policy = cfg.aor_policy(aor)
        for b in pbx.contacts_of(aor):
            out.append(
                pjsip.contact_view(
                    aor=aor,
                    endpoint_name=b.endpoint,
                    uri=b.uri,
                    call_id=b.call_id,
                    user_agent=b.user_agent,
                    via_address=b.via_address,
                    reg_expire=b.expires_at,
                    status=b.status,
                    round_trip_usec=str(b.rtt_usec) if b.rtt_usec is not None else "N/A",
                    qualify_frequency=policy.qualify_frequency,
                    qualify_timeout=policy.qualify_timeout,
                    authentication_qualify=policy.authenticate_qualify,
                    path=b.path,
                    tm_update=envelope.ts(b.registered_at * 1_000_000_000),
                )
            )
    return out


def _registration(pbx, cfg, name: str, tm: str) -> dict:
    return pjsip.registration_view(cfg, name, tm_update=tm)


def _auth(pbx, cfg, name: str, tm: str) -> dict:
    return pjsip.auth_view(cfg, name, tm_update=tm)


# kind: (the loaded table, its view, the view as a list item (a dict or its JSON), the label)
_KINDS = {
    "endpoints": ("endpoints", _endpoint, _endpoint, "endpoint"),  # (its list: _endpoint_list)
    "aors": ("aors", _aor, _aor, "aor"),
    "auths": ("auths", _auth, _auth, "auth"),
    "registration_outbounds": ("registrations", _registration, _registration, "registration"),
}


def _add(kind: str) -> None:
    table, view, item, label = _KINDS[kind]

    async def list_all(request: Request):
        pbx, cfg, tm = _cfg(request)
        names = getattr(cfg, table) if cfg else {}
        if kind == "endpoints":
            # from the busy endpoints' live states alone: looked up one by one among all channels
            # and contacts, the states were most of a 100-endpoint list's cost
            return envelope.listing(_endpoint_list(pbx, cfg, tm) if cfg else [], stamped=True)
        items = [item(pbx, cfg, n, tm) for n in names]
        if kind == "registration_outbounds":  # the trunks the engine registers are outbound registrations too
            items += [
                trunks.registration_view(pbx, t) for t in pbx.trunks.values() if t.registers and t.name not in names
            ]
        return envelope.listing(items, stamped=True)

    async def show(request: Request, detail: str):
        pbx, cfg, tm = _cfg(request)
        if cfg is None or detail not in getattr(cfg, table):
            if kind == "registration_outbounds":
                for t in pbx.trunks.values():
                    if t.registers and t.name == detail:
                        return envelope.respond(trunks.registration_view(pbx, t), stamped=True)
            raise NotFound(label, detail)
        return envelope.respond(view(pbx, cfg, detail, tm), stamped=True)

    api.add_api_route(
        f"/admin/pjsip/{kind}",
        list_all,
        methods=["GET"],
        summary=f"All {label}s",
        operation_id=f"jade_pjsip_{kind}_list",
    )
    api.add_api_route(
        f"/admin/pjsip/{kind}/{{detail}}",
        show,
        methods=["GET"],
        summary=f"One {label}",
        operation_id=f"jade_pjsip_{kind}_show",
    )


for _kind in _KINDS:
    _add(_kind)


@api.get("/admin/pjsip/contacts", summary="Registered contacts")
async def contacts_list(request: Request):
    pbx, cfg, _ = _cfg(request)
    return envelope.listing(contact_views(pbx, cfg))


@api.get("/admin/pjsip/contacts/{detail}", summary="One contact by its id (aor;@hash)")
async def contacts_show(request: Request, detail: str):
    pbx, cfg, _ = _cfg(request)
    for c in contact_views(pbx, cfg):
        if c["id"] == detail:
            return envelope.respond(c)
    raise NotFound("contact", detail)
