"""jade core: the system (one: this node), the module registry, and live channels.

- systems: id "1" is this process: `ast_version` is "Switchboard <version>", startup is the
  process start, reload the last configuration load, `current_calls` the live channel count,
  `max_file_handles` the process's open-file limit, `run_user`/`run_group` the process's.
  `ami_version` is "" (there is no AMI).
- modules: see engine/runtime.py. `load` is "Running" or "Not Running"; `size` is the byte size of
  the module's implementation. POST loads, PUT reloads (re-reads its file), DELETE unloads; the
  choice is stored and survives a restart. Unknown module → 404.
- channels: the engine's live calls (engine.channel.Channel, rendered by `Channel.view()`);
  DELETE hangs one up for real (the call engine's channel sends BYE, or CANCEL/an error before
  answer; cause 16) and answers once it did; unknown id → 404.
- originate (Switchboard's addition, ARI-like): `POST /admin/core/channels` with
  `{"endpoint", "context", "exten", "priority"?, "caller_id"?, "timeout"?, "variables"?}` (rules in
  domain/calls.py) starts a call through the call engine (`Services.calls`, a
  domain.calls.Originator) and answers `{"result": <channel>}` at once, before the call is
  answered. Bad input → 400, unknown endpoint or trunk (or one with no registered contact) → 404,
  no call engine → 503.
- systems also show `processed_calls`: channels ended since the start; `cdr_enabled` is "Yes"
  (CDRs are written by the call engine: /admin/cdr/cdrs).
"""

from __future__ import annotations

import grp
import os
import pwd
import resource
import socket
from datetime import UTC, datetime

from fastapi import Request

from switchboard import __version__
from switchboard.api.common import HttpStatus, after_commit, ctx, json_body
from switchboard.api.jade import envelope
from switchboard.api.jade.auth import JadeAdminCallRoute
from switchboard.api.jade.routing import doc, router
from switchboard.domain.calls import parse_originate
from switchboard.domain.errors import NotFound
from switchboard.engine.channel import NORMAL_CLEARING, ChannelGone

api = router("core")
calls_api = router("core", route_class=JadeAdminCallRoute)  # routes that await the call engine


def _date_time(ns: int) -> tuple[str, str]:
    dt = datetime.fromtimestamp(ns / 1e9, UTC)
    return dt.strftime("%Y-%m-%d"), dt.strftime("%H:%M:%S")


def _system(request: Request) -> dict:
    pbx = request.app.state.services.pbx
    start_d, start_t = _date_time(pbx.started_ns)
    reload_d, reload_t = _date_time(pbx.reloaded_ns)
    try:
        user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    except KeyError:
        user, group = str(os.getuid()), str(os.getgid())
    return {
        "ami_version": "",
        "ast_version": f"Switchboard {__version__}",
        "cdr_enabled": "Yes",
        "current_calls": len(pbx.channels),
        "http_enabled": "Yes",
        "id": "1",
        "max_calls": 0,
        "max_file_handles": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "max_load_avg": 0.0,
        "processed_calls": pbx.processed_calls,
        "real_time_enabled": "No",
        "reload_date": reload_d,
        "reload_time": reload_t,
        "run_group": group,
        "run_user": user,
        "startup_date": start_d,
        "startup_time": start_t,
        "system_name": socket.gethostname(),
        "tm_update": envelope.ns_timestamp(),
    }


@api.get("/admin/core/systems", summary="This system")
async def systems_list(request: Request):
    return envelope.listing([_system(request)])


@api.get("/admin/core/systems/{detail}", summary="One system (id 1)")
async def systems_show(request: Request, detail: str):
    if detail != "1":
        raise NotFound("system", detail)
    return envelope.respond(_system(request))


@api.get("/admin/core/modules", summary="The engine's modules")
async def modules_list(request: Request):
    pbx = request.app.state.services.pbx
    from switchboard.engine.runtime import MODULES

    return envelope.listing([pbx.module_view(n) for n in MODULES])


@api.get("/admin/core/modules/{detail}", summary="One module")
async def modules_show(request: Request, detail: str):
    return envelope.respond(request.app.state.services.pbx.module_view(detail))


async def _set_loaded(request: Request, name: str, loaded: bool):
    services, conn, _ = ctx(request)
    pbx = services.pbx
    await pbx.store_module(conn, name, loaded)
    info = pbx.module(name)

    async def apply() -> None:
        pbx.apply_module(name, loaded)
        if loaded and info.family:
            await pbx.after_write(services, info.family)()

    after_commit(request, apply)
    return envelope.ok()


@api.post("/admin/core/modules/{detail}", summary="Load a module")
async def modules_load(request: Request, detail: str):
    return await _set_loaded(request, detail, True)


@api.put("/admin/core/modules/{detail}", summary="Reload a module (re-read its configuration)")
async def modules_reload(request: Request, detail: str):
    services, _, _ = ctx(request)
    pbx = services.pbx
    info = pbx.module(detail)

    async def apply() -> None:
        pbx.apply_module(detail, pbx.is_loaded(detail))
        if info.family:
            await pbx.after_write(services, info.family)()

    after_commit(request, apply)
    return envelope.ok()


@api.delete("/admin/core/modules/{detail}", summary="Unload a module")
async def modules_unload(request: Request, detail: str):
    return await _set_loaded(request, detail, False)


@api.get("/admin/core/channels", summary="Live channels")
async def channels_list(request: Request):
    channels = list(request.app.state.services.pbx.channels.values())
    return envelope.listing([ch.view() for ch in channels], stamped=True)


def _channel(request: Request, detail: str):
    ch = request.app.state.services.pbx.channels.get(detail)
    if ch is None:
        raise NotFound("channel", detail)
    return ch


@api.get("/admin/core/channels/{detail}", summary="One channel by unique id")
async def channels_show(request: Request, detail: str):
    return envelope.respond(_channel(request, detail).view(), stamped=True)


@calls_api.delete("/admin/core/channels/{detail}", summary="Hang up a channel (cause 16, normal clearing)")
async def channels_hangup(request: Request, detail: str):
    ch = _channel(request, detail)
    if not ch.hung_up:
        try:
            await ch.hangup(NORMAL_CLEARING)
        except ChannelGone:  # it ended meanwhile: hung up all the same
            pass
    return envelope.ok()


@calls_api.post(
    "/admin/core/channels",
    summary="Originate a call (Switchboard's addition, ARI-like); result: the new channel",
    description="Body: `endpoint` (`PJSIP/<endpoint>` or `PJSIP/<number>@<trunk>`), `context`, `exten`, "
    "`priority` (default 1), `caller_id` (`name <num>` or a number), `timeout` (seconds to wait for an "
    "answer, default 30), `variables` (channel variables). Answers at once with the new channel (before "
    "it is answered). 400 bad input, 404 unknown endpoint or trunk, 503 when calls are not available.",
    openapi_extra=doc("originate"),
)
async def channels_originate(request: Request):
    services, _, _ = ctx(request)
    pbx = services.pbx
    cfg = pbx.pjsip()
    req = parse_originate(
        await json_body(request),
        endpoint_exists=lambda name: cfg is not None and name in cfg.endpoints,
        trunk_exists=lambda name: any(t.name == name for t in pbx.trunks.values()),
    )
    if services.calls is None:
        raise HttpStatus(503, "calls are not available")
    try:
        ch = await services.calls.originate(**req.arguments())
    except LookupError:  # it exists but has nothing to call: no registered contact, a host that does not resolve
        raise NotFound("reachable contact of", req.resource) from None
    return envelope.respond(ch.view(), stamped=True)
