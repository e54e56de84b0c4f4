"""jade PJSIP: pjsip.conf at file level, and the objects the engine loaded from it (endpoints,
aors, auths, contacts, outbound registrations) with Asterisk's defaults (pbx/pjsip.py).
Auth secrets show as "********" (never in clear). Contacts are the registrar's live state."""

from __future__ import annotations

from fastapi import Request

from switchboard.api.jade import envelope
from switchboard.api.jade.configs import add_config_routes
from switchboard.api.jade.routing import router
from switchboard.domain.errors import NotFound
from switchboard.pbx import pjsip

api = router("pjsip")
add_config_routes(api, "/admin/pjsip", "pjsip", "pjsip.conf")

_DEVICE_TEXT = {"NOT_INUSE": "Not in use", "INUSE": "In use", "UNAVAILABLE": "Unavailable", "BUSY": "Busy",
                "RINGING": "Ringing", "ONHOLD": "On Hold", "INVALID": "Invalid", "UNKNOWN": "Unknown"}


def _cfg(request: Request):
    pbx = request.app.state.services.pbx
    return pbx, pbx.pjsip(), envelope.ts(pbx.pjsip_ns())


def _endpoint(pbx, cfg, name: str, tm: str) -> dict:
    """Rendered once per (configuration load, device state): ~115 fields with defaults applied."""
    state = _DEVICE_TEXT.get(pbx.device_state(f"PJSIP/{name}"), "Unknown")
    key = ("endpoint", name, state)
    view = pbx.view_cache.get(key)
    if view is None:
        view = pbx.view_cache[key] = pjsip.endpoint_view(cfg, name, device_state=state, tm_update=tm)
    return view


def _aor(pbx, cfg, name: str, tm: str) -> dict:
    return pjsip.aor_view(cfg, name, contacts=[c["uri"] for c in pbx.contacts_of(name)], tm_update=tm)


def _contacts(pbx, cfg) -> list[dict]:
    out = []
    for aor in cfg.aors if cfg else {}:
        out += [c["view"] for c in pbx.contacts_of(aor)]
    return out


def _registration(pbx, cfg, name: str, tm: str) -> dict:
    return pjsip.registration_view(cfg, name, tm_update=tm)


_KINDS = {
    "endpoints": ("endpoints", _endpoint, "endpoint"),
    "aors": ("aors", _aor, "aor"),
    "auths": ("auths", lambda pbx, cfg, n, tm: pjsip.auth_view(cfg, n, tm_update=tm), "auth"),
    "registration_outbounds": ("registrations", _registration, "registration"),
}


def _add(kind: str) -> None:
    table, view, label = _KINDS[kind]

    async def list_all(request: Request):
        pbx, cfg, tm = _cfg(request)
        names = getattr(cfg, table) if cfg else {}
        return envelope.listing([view(pbx, cfg, n, tm) for n in names], stamped=True)

    async def show(request: Request, detail: str):
        pbx, cfg, tm = _cfg(request)
        if cfg is None or detail not in getattr(cfg, table):
            raise NotFound(label, detail)
        return envelope.respond(view(pbx, cfg, detail, tm), stamped=True)

    api.add_api_route(f"/admin/pjsip/{kind}", list_all, methods=["GET"], summary=f"All {label}s",
                      operation_id=f"jade_pjsip_{kind}_list")
    api.add_api_route(f"/admin/pjsip/{kind}/{{detail}}", show, methods=["GET"], summary=f"One {label}",
                      operation_id=f"jade_pjsip_{kind}_show")


for _kind in _KINDS:
    _add(_kind)


@api.get("/admin/pjsip/contacts", summary="Registered contacts")
async def contacts_list(request: Request):
    pbx, cfg, _ = _cfg(request)
    return envelope.listing(_contacts(pbx, cfg))


@api.get("/admin/pjsip/contacts/{detail}", summary="One contact by its id (aor;@hash)")
async def contacts_show(request: Request, detail: str):
    pbx, cfg, _ = _cfg(request)
    for c in _contacts(pbx, cfg):
        if c["id"] == detail:
            return envelope.respond(c)
    raise NotFound("contact", detail)
