"""jade dialplan: the async dialplan (adpmas, adps), extensions.conf at file level
(configurations) and per context (sdps; also under /manager/sdialplans). See
domain/pbxconf.py for the storage and compile rules."""

from __future__ import annotations

from fastapi import Request

from switchboard.api.common import ctx, json_body
from switchboard.api.jade import envelope
from switchboard.api.jade.configs import add_config_routes, reload_after
from switchboard.api.jade.routing import doc, router
from switchboard.domain.errors import Invalid

api = router("dialplan")
add_config_routes(api, "/admin/dialplan", "dialplan", "extensions.conf")


def _adpma(m: dict) -> dict:
    return {
        "detail": m["detail"],
        "name": m["name"],
        "tm_create": m["created_ns"],
        "tm_update": m["updated_ns"],
        "uuid": m["uuid"],
    }


def _adp(a: dict) -> dict:
    return {
        "command": a["command"],
        "detail": a["detail"],
        "dpma_uuid": a["dpma_uuid"],
        "name": a["name"],
        "sequence": a["sequence"],
        "tm_create": a["created_ns"],
        "tm_update": a["updated_ns"],
        "uuid": a["uuid"],
    }


@api.get("/admin/dialplan/adpmas", summary="All adpmas (async dialplan groups)")
async def adpmas_list(request: Request):
    services, conn, _ = ctx(request)
    return envelope.listing([_adpma(m) for m in await services.configs.adpmas(conn)])


@api.post("/admin/dialplan/adpmas", summary="Create an adpma: {name, detail}", openapi_extra=doc("adpma"))
async def adpmas_create(request: Request):
    services, conn, _ = ctx(request)
    await services.configs.create_adpma(conn, await json_body(request))
    reload_after(request, "dialplan")
    return envelope.ok()


@api.get("/admin/dialplan/adpmas/{detail}", summary="One adpma")
async def adpmas_show(request: Request, detail: str):
    services, conn, _ = ctx(request)
    return envelope.respond(_adpma(await services.configs.adpma(conn, detail)))


@api.put("/admin/dialplan/adpmas/{detail}", summary="Update an adpma", openapi_extra=doc("adpma"))
async def adpmas_update(request: Request, detail: str):
    services, conn, _ = ctx(request)
    await services.configs.update_adpma(conn, detail, await json_body(request))
    reload_after(request, "dialplan")
    return envelope.ok()


@api.delete("/admin/dialplan/adpmas/{detail}", summary="Delete an adpma and its adps")
async def adpmas_delete(request: Request, detail: str):
    services, conn, _ = ctx(request)
    await services.configs.delete_adpma(conn, detail)
    reload_after(request, "dialplan")
    return envelope.ok()


@api.get("/admin/dialplan/adps", summary="All adps, by adpma then sequence")
async def adps_list(request: Request):
    services, conn, _ = ctx(request)
    return envelope.listing([_adp(a) for a in await services.configs.adps(conn)])


@api.post(
    "/admin/dialplan/adps",
    summary="Create an adp: {dpma_uuid, sequence, name, detail, command}",
    openapi_extra=doc("adp"),
)
async def adps_create(request: Request):
    services, conn, _ = ctx(request)
    await services.configs.create_adp(conn, await json_body(request))
    reload_after(request, "dialplan")
    return envelope.ok()


@api.get("/admin/dialplan/adps/{detail}", summary="One adp")
async def adps_show(request: Request, detail: str):
    services, conn, _ = ctx(request)
    return envelope.respond(_adp(await services.configs.adp(conn, detail)))


@api.put("/admin/dialplan/adps/{detail}", summary="Update an adp", openapi_extra=doc("adp_update"))
async def adps_update(request: Request, detail: str):
    services, conn, _ = ctx(request)
    await services.configs.update_adp(conn, detail, await json_body(request))
    reload_after(request, "dialplan")
    return envelope.ok()


@api.delete("/admin/dialplan/adps/{detail}", summary="Delete an adp")
async def adps_delete(request: Request, detail: str):
    services, conn, _ = ctx(request)
    await services.configs.delete_adp(conn, detail)
    reload_after(request, "dialplan")
    return envelope.ok()


# ---- sdps: extensions.conf per context -------------------------------------------------------------
async def _sdp_body(request: Request):
    data = await json_body(request)
    items = data.get("data")
    if items is None:
        raise Invalid("data", 'is required: a list like [{"exten": "> 100,1,NoOp()"}]')
    return data, items


def _add_sdp_routes(prefix: str, tag: str) -> None:
    async def sdps_list(request: Request):
        services, conn, _ = ctx(request)
        return envelope.listing(await services.configs.sdps(conn))

    async def sdps_create(request: Request):
        services, conn, _ = ctx(request)
        data, items = await _sdp_body(request)
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            raise Invalid("name", "can't be blank")
        if any(s["name"] == name for s in await services.configs.sdps(conn)):
            from switchboard.domain.errors import Conflict

            raise Conflict("name", "has already been taken")
        await services.configs.put_sdp(conn, name, items)
        reload_after(request, "dialplan")
        return envelope.ok()

    async def sdp_show(request: Request, detail: str):
        services, conn, _ = ctx(request)
        return envelope.respond(await services.configs.sdp(conn, detail))

    async def sdp_put(request: Request, detail: str):
        services, conn, _ = ctx(request)
        _, items = await _sdp_body(request)
        await services.configs.put_sdp(conn, detail, items)
        reload_after(request, "dialplan")
        return envelope.ok()

    async def sdp_delete(request: Request, detail: str):
        services, conn, _ = ctx(request)
        await services.configs.delete_sdp(conn, detail)
        reload_after(request, "dialplan")
        return envelope.ok()

    api.add_api_route(
        prefix, sdps_list, methods=["GET"], summary="Every context of extensions.conf", operation_id=f"jade_{tag}_list"
    )
    api.add_api_route(
        prefix,
        sdps_create,
        methods=["POST"],
        summary="Add a context: {name, data: [...]}",
        openapi_extra=doc("sdp"),
        operation_id=f"jade_{tag}_create",
    )
    api.add_api_route(
        prefix + "/{detail}", sdp_show, methods=["GET"], summary="One context", operation_id=f"jade_{tag}_show"
    )
    api.add_api_route(
        prefix + "/{detail}",
        sdp_put,
        methods=["PUT"],
        summary="Create or replace a context: {data: [{exten: ...}, {same: ...}]}",
        openapi_extra=doc("sdp_update"),
        operation_id=f"jade_{tag}_put",
    )
    api.add_api_route(
        prefix + "/{detail}",
        sdp_delete,
        methods=["DELETE"],
        summary="Delete a context",
        operation_id=f"jade_{tag}_delete",
    )


_add_sdp_routes("/admin/dialplan/sdps", "sdps")
_add_sdp_routes("/manager/sdialplans", "sdialplans")
