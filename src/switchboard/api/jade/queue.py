"""jade queues: queues.conf (file level and per queue), the loaded queues with their counters,
their static members (from `member =>` lines) and the callers waiting (entries).

A member is addressed as `/admin/queue/members/<member name>?queue_name=<queue>` (the name may
hold `/`, URL-encoded or not); without queue_name the first queue holding that member answers."""

from __future__ import annotations

from fastapi import Request

from switchboard.api.jade import envelope
from switchboard.api.jade.configs import add_config_routes, add_section_routes
from switchboard.api.jade.routing import router
from switchboard.domain.errors import NotFound

api = router("queue")
add_config_routes(api, "/admin/queue", "queue", "queues.conf")
add_section_routes(api, "/admin/queue/cfg_queues", "queue", "queue")


@api.get("/admin/queue/queues", summary="Queues the engine has loaded, with their counters")
async def queues_list(request: Request):
    return envelope.listing(request.app.state.services.pbx.queues())


@api.get("/admin/queue/queues/{detail}", summary="One queue")
async def queues_show(request: Request, detail: str):
    for q in request.app.state.services.pbx.queues():
        if q["name"] == detail:
            return envelope.respond(q)
    raise NotFound("queue", detail)


@api.get("/admin/queue/members", summary="Members of every queue")
async def members_list(request: Request, queue_name: str | None = None):
    members = request.app.state.services.pbx.queue_members()
    if queue_name is not None:
        members = [m for m in members if m["queue_name"] == queue_name]
    return envelope.listing(members)


@api.get("/admin/queue/members/{detail:path}", summary="One member (?queue_name=)")
async def members_show(request: Request, detail: str, queue_name: str | None = None):
    for m in request.app.state.services.pbx.queue_members():
        if m["name"] in (detail,) or m["location"] == detail:
            if queue_name is None or m["queue_name"] == queue_name:
                return envelope.respond(m)
    raise NotFound("queue member", detail)


@api.get("/admin/queue/entries", summary="Callers waiting in queues")
async def entries_list(request: Request):
    return envelope.listing(request.app.state.services.pbx.queue_entry_views())


@api.get("/admin/queue/entries/{detail}", summary="One waiting caller by unique id")
async def entries_show(request: Request, detail: str):
    entry = next((e for e in request.app.state.services.pbx.queue_entry_views() if e["unique_id"] == detail), None)
    if entry is None:
        raise NotFound("queue entry", detail)
    return envelope.respond(entry)
