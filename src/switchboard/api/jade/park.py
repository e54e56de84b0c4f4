"""jade parking: res_parking.conf (file level and per lot), the loaded lots, parked calls.

`/admin/park/parkinglots` is what the engine loaded from res_parking.conf: name, start_space,
timeout, and the stop space under both the documented key `stop_spcae` and the corrected
`stop_space`. PUT writes the lot's options into the file (creating the lot if absent, the way the
spec's example creates `test_parkinglot`) and DELETE removes the lot from it; both reload
res_parking once committed. Parked calls are the engine's live state (engine/apps/parking.py's
ParkedCall: `view()` renders the spec's object as of the request); DELETE hangs the parkee up (BYE)."""

from __future__ import annotations

from fastapi import Request

from switchboard.api.common import ctx, json_body
from switchboard.api.jade import envelope
from switchboard.api.jade.configs import add_config_routes, add_section_routes, reload_after
from switchboard.api.jade.routing import doc, router
from switchboard.domain.errors import NotFound
from switchboard.domain.pbxconf import data_options

api = router("park")
add_config_routes(api, "/admin/park", "park", "res_parking.conf")
add_section_routes(api, "/admin/park/cfg_parkinglots", "park", "parking lot")


@api.get("/admin/park/parkinglots", summary="Parking lots the engine has loaded")
async def lots_list(request: Request):
    return envelope.listing(request.app.state.services.pbx.parkinglots())


@api.get("/admin/park/parkinglots/{detail}", summary="One loaded parking lot")
async def lots_show(request: Request, detail: str):
    for lot in request.app.state.services.pbx.parkinglots():
        if lot["name"] == detail:
            return envelope.respond(lot)
    raise NotFound("parking lot", detail)


@api.put(
    "/admin/park/parkinglots/{detail}",
    summary="Create or replace a lot's options in res_parking.conf",
    openapi_extra=doc("section_update"),
)
async def lots_put(request: Request, detail: str):
    services, conn, _ = ctx(request)
    data = await json_body(request)
    await services.configs.put_section(
        conn, "park", detail, data_options(data.get("data", data) if isinstance(data.get("data"), dict) else data)
    )
    reload_after(request, "park")
    return envelope.ok()


@api.delete("/admin/park/parkinglots/{detail}", summary="Remove a lot from res_parking.conf")
async def lots_delete(request: Request, detail: str):
    services, conn, _ = ctx(request)
    await services.configs.delete_section(conn, "park", detail)
    reload_after(request, "park")
    return envelope.ok()


@api.get("/admin/park/parkedcalls", summary="Calls parked now")
async def parked_list(request: Request):
    calls = request.app.state.services.pbx.parked_calls.values()
    return envelope.listing([pc.view() for pc in sorted(calls, key=lambda pc: (pc.lot.name, pc.space))])


@api.get("/admin/park/parkedcalls/{detail}", summary="One parked call by the parkee's unique id")
async def parked_show(request: Request, detail: str):
    call = request.app.state.services.pbx.parked_calls.get(detail)
    if call is None:
        raise NotFound("parked call", detail)
    return envelope.respond(call.view())


@api.delete("/admin/park/parkedcalls/{detail}", summary="Hang up a parked call")
async def parked_delete(request: Request, detail: str):
    """The parked channel is hung up for real (BYE); it leaves the lot at once."""
    pbx = request.app.state.services.pbx
    call = pbx.parked_calls.get(detail)
    if call is None:
        raise NotFound("parked call", detail)
    await call.hangup()
    pbx.parked_calls.pop(detail, None)
    return envelope.ok()
