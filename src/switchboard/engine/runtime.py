"""The PBX as the engine runs it: which modules are loaded and what configuration each loaded.

Module registry: each module is a feature of the engine with the configuration file it loads.
Unloading one switches the feature off for real (the jade views backed by it go empty and the
engine stops using it; `res_pjsip` unloaded makes the SIP engine answer 503 to every request).
Loading brings it back; reloading re-reads its file from the database. The chosen state is
stored (`modules` table), so it survives a restart.

Configuration is loaded from the database at start, after every API write to a file (once the
write has committed), and on module reload. Several nodes sharing one PostgreSQL each load on
their own writes and reloads; a node sees another node's write after a reload of that module.

Live call state (channels, parked calls, queue entries, agents) lives here too; it is empty
until the call handling arrives (the SIP issues fill it), but the views already read it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from switchboard.asterisk import agents as agents_conf
from switchboard.asterisk import conf, dialplan, pjsip
from switchboard.asterisk.conf import option_value
from switchboard.asterisk.files import FILES
from switchboard.asterisk.parking import parse_parkpos
from switchboard.domain import pbxconf
from switchboard.domain.errors import NotFound
from switchboard.domain.kazoo import KazooService
from switchboard.engine.channel import (
    BUSY,
    DIALING,
    DIALING_OFFHOOK,
    DOWN,
    OFFHOOK,
    PRERING,
    RING,
    RINGING,
    RSRVD,
    UP,
    Channel,
)
from switchboard.store import tables as t

log = logging.getLogger("switchboard.pbx")

_PKG = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ModuleInfo:
    name: str
    family: str | None  # the configuration file family it loads
    description: str
    sources: tuple[str, ...]  # the package files implementing it (their size is the module's size)


MODULES: dict[str, ModuleInfo] = {
    m.name: m
    for m in (
        ModuleInfo(
            "res_pjsip",
            "pjsip",
            "SIP stack and pjsip.conf objects",
            ("sip/engine.py", "sip/message.py", "asterisk/pjsip.py"),
        ),
        ModuleInfo(
            "chan_pjsip", "pjsip", "PJSIP channel driver (endpoints, peers, device states)", ("asterisk/pjsip.py",)
        ),
        ModuleInfo("res_pjsip_registrar", "pjsip", "Registrar: REGISTER for aors", ("asterisk/pjsip.py",)),
        ModuleInfo("res_pjsip_outbound_registration", "pjsip", "Outbound (trunk) registration", ("asterisk/pjsip.py",)),
        ModuleInfo(
            "pbx_config",
            "dialplan",
            "Dialplan from extensions.conf and the async dialplan",
            ("asterisk/dialplan.py", "asterisk/conf.py"),
        ),
        ModuleInfo(
            "app_queue",
            "queue",
            "Call queues from queues.conf",
            ("engine/runtime.py", "asterisk/conf.py", "asterisk/queues.py"),
        ),
        ModuleInfo(
            "res_parking",
            "park",
            "Call parking lots from res_parking.conf",
            ("engine/runtime.py", "asterisk/conf.py", "asterisk/parking.py"),
        ),
        ModuleInfo(
            "app_agent_pool",
            "agent",
            "Call center agent pool (AgentLogin, AgentRequest) from agents.conf",
            ("engine/apps/agents.py", "asterisk/agents.py"),
        ),
    )
}

_FEATURE_MODULES = {
    "pjsip": ("res_pjsip", "chan_pjsip"),
    "dialplan": ("pbx_config",),
    "queue": ("app_queue",),
    "park": ("res_parking",),
    "agent": ("app_agent_pool",),
}

# Asterisk's AST_DEVICE_* numbers, as queue members show them
DEVICE_STATE_NUM = {
    "UNKNOWN": 0,
    "NOT_INUSE": 1,
    "INUSE": 2,
    "BUSY": 3,
    "INVALID": 4,
    "UNAVAILABLE": 5,
    "RINGING": 6,
    "RINGINUSE": 7,
    "ONHOLD": 8,
}


# ast_state_chan2dev: the device state one channel in a given state gives
CHAN_DEVICE_STATE = {
    DOWN: "NOT_INUSE",
    RSRVD: "INUSE",
    OFFHOOK: "INUSE",
    DIALING: "INUSE",
    RING: "INUSE",
    RINGING: "RINGING",
    UP: "INUSE",
    BUSY: "BUSY",
    DIALING_OFFHOOK: "INUSE",
    PRERING: "RINGING",
}
# ast_devstate_aggregate_add's precedence (higher wins; ringing plus in use is RINGINUSE)
_AGGREGATE_ORDER = {
    "INVALID": 0,
    "UNKNOWN": 1,
    "UNAVAILABLE": 2,
    "NOT_INUSE": 3,
    "ONHOLD": 4,
    "RINGING": 5,
    "INUSE": 6,
    "BUSY": 7,
    "RINGINUSE": 8,
}


def _size(info: ModuleInfo) -> int:
    return sum((_PKG / s).stat().st_size for s in info.sources if (_PKG / s).exists())


@dataclass(frozen=True)
class DeviceAccount:
    """A kazoo device's SIP credentials, as the registrar uses them."""

    username: str
    password: str
    device_id: str
    account_id: str | None
    realm: str | None


@dataclass
class Loaded:
    """What one configuration family gave the engine, and when it was loaded (ns)."""

    value: Any
    loaded_ns: int


@dataclass
class Pbx:
    started_ns: int = field(default_factory=time.time_ns)
    reloaded_ns: int = field(default_factory=time.time_ns)
    loaded_modules: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(MODULES, True))
    module_ns: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MODULES, time.time_ns()))
    config: dict[str, Loaded] = field(default_factory=dict)
    # live call state, keyed by unique id: the call engine's channels (engine.channel.Channel)
    channels: dict[str, Channel] = field(default_factory=dict)
    # channels that ended since the start (jade's systems `processed_calls`)
    processed_calls: int = 0
    # called with the channel when one ends (end_channel)
    on_channel_ended: list = field(default_factory=list)
    parked_calls: dict[str, dict] = field(default_factory=dict)
    queue_entries: dict[str, dict] = field(default_factory=dict)
    # the agent pool (engine.apps.agents.Agent by agent id), kept in step with agents.conf by sync_agents
    agents: dict[str, Any] = field(default_factory=dict)
    # registered contacts by aor and contact URI (engine.registrar.Binding), kept by the registrar
    contacts: dict[str, dict] = field(default_factory=dict)
    # the trunks the engine runs (domain.trunks.Trunk by id), as of its last reload
    trunks: dict[int, object] = field(default_factory=dict)
    # live state of trunk registration / qualify, by trunk id (written by the trunk registrar)
    trunk_states: dict[int, dict] = field(default_factory=dict)
    # called (no arguments) after a committed change to trunks: the engine re-reads them
    on_trunks_changed: list = field(default_factory=list)
    # rendered views of loaded objects, dropped whenever the configuration reloads
    view_cache: dict[tuple, dict] = field(default_factory=dict)
    # kazoo devices with `voice.sip` credentials: SIP accounts the registrar accepts, by username
    sip_devices: dict[str, DeviceAccount] = field(default_factory=dict)

    async def load_devices(self, conn: AsyncConnection, kazoo: KazooService) -> None:
        """(Re)load the kazoo devices' SIP accounts (after a committed device write, and at start)."""
        self.sip_devices = {
            a["username"]: DeviceAccount(a["username"], a["password"], a["device_id"], a["account_id"], a["realm"])
            for a in await kazoo.sip_accounts(conn)
        }
        self.view_cache.clear()

    # ---- loading ----------------------------------------------------------------------------
    async def load_all(self, conn: AsyncConnection, configs) -> None:
        rows = (await conn.execute(select(t.modules.c.name, t.modules.c.loaded, t.modules.c.updated_ns))).all()
        for name, loaded, ns in rows:
            if name in MODULES:
                self.loaded_modules[name], self.module_ns[name] = loaded, ns
        for family in ("dialplan", "pjsip", "queue", "park", "agent"):
            await self.load_family(conn, configs, family)

    async def load_family(self, conn: AsyncConnection, configs, family: str) -> None:
        """(Re)load one family from the database. The stored text was validated when written; a
        file that no longer loads (e.g. written by an older version) leaves the previous state."""
        text, _ = await configs.live(conn, family)
        if family == "dialplan":
            text += "\n" + dialplan.compile_adpmas(await configs.adpmas(conn), await configs.adps(conn))
        try:
            value = pbxconf.validate_text(family, text)
        except Exception:  # noqa: BLE001 - keep running on the previous configuration
            log.exception("could not load %s; keeping the previous one", FILES[family])
            return
        self.config[family] = Loaded(value, time.time_ns())
        self.reloaded_ns = time.time_ns()
        self.view_cache.clear()
        if family == "agent":
            self.sync_agents()

    def after_write(self, services, family: str):
        """The after-commit step of an API write to a family's file."""

        async def reload() -> None:
            async with services.db.transaction(write=False) as conn:
                await self.load_family(conn, services.configs, family)

        return reload

    # ---- live channels ----------------------------------------------------------------------------
    def add_channel(self, ch: Channel) -> None:
        """The call engine made a channel: it is live (the jade views show it) until end_channel."""
        self.channels[ch.uniqueid] = ch
        self.view_cache.clear()  # endpoint views show device states and active channels

    def end_channel(self, ch: Channel) -> None:
        """The call engine: a channel ended (after ch.mark_gone). Drops it from the live channels,
        counts it in processed_calls and calls on_channel_ended listeners. Calling it twice counts
        once. (CDRs are not written here: the call engine gives each caller's channel to the CDR
        writer itself, `Services.cdr_writer.channel_ended`.)"""
        if self.channels.pop(ch.uniqueid, None) is None:
            return
        self.processed_calls += 1
        self.view_cache.clear()
        for fn in self.on_channel_ended:
            try:
                fn(ch)
            except Exception:  # noqa: BLE001 - a failing listener must not break the call engine
                log.exception("channel-ended listener failed for %s", ch.name)

    def channels_of(self, endpoint: str) -> list[Channel]:
        """The live channels of a PJSIP endpoint (or trunk), by `ch.resource`, oldest first."""
        return [ch for ch in self.channels.values() if ch.resource == endpoint and not ch.hung_up]

    # ---- trunks ---------------------------------------------------------------------------------
    def trunk_status(self, trunk_id: int) -> str:
        """ONLINE when the engine holds a live registration (REGISTER_AUTH) or the last OPTIONS
        qualify was answered (IP_AUTH); OFFLINE otherwise. Never taken from a client's input."""
        state = self.trunk_states.get(trunk_id)
        return "ONLINE" if state and state.get("online") else "OFFLINE"

    def trunks_changed(self):
        """The after-commit step of a trunk write: tell the engine to re-read the trunks."""

        async def notify() -> None:
            for fn in self.on_trunks_changed:
                res = fn()
                if hasattr(res, "__await__"):
                    await res

        return notify

    # ---- modules ------------------------------------------------------------------------------
    def is_loaded(self, name: str) -> bool:
        return self.loaded_modules.get(name, False)

    def feature(self, family: str) -> bool:
        """Are the modules serving this family loaded (res_pjsip and chan_pjsip for pjsip, etc.)?"""
        loaded = self.loaded_modules
        for name in _FEATURE_MODULES[family]:
            if not loaded.get(name, False):
                return False
        return True

    def module(self, name: str) -> ModuleInfo:
        info = MODULES.get(name)
        if info is None:
            raise NotFound("module", name)
        return info

    def module_view(self, name: str) -> dict:
        info = self.module(name)
        return {
            "load": "Running" if self.is_loaded(name) else "Not Running",
            "name": name,
            "size": _size(info),
            "description": info.description,
            "tm_update": self.module_ns[name],
        }

    async def store_module(self, conn: AsyncConnection, name: str, loaded: bool) -> None:
        self.module(name)
        values = {"name": name, "loaded": loaded, "updated_ns": time.time_ns()}
        ins = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(t.modules).values(**values)
        await conn.execute(
            ins.on_conflict_do_update(
                index_elements=["name"], set_={"loaded": loaded, "updated_ns": values["updated_ns"]}
            )
        )

    def apply_module(self, name: str, loaded: bool) -> None:
        self.view_cache.clear()
        self.loaded_modules[name] = loaded
        self.module_ns[name] = time.time_ns()
        if name == "app_agent_pool":
            self.sync_agents()

    # ---- agents ----------------------------------------------------------------------------------
    def agent_configs(self) -> dict:
        """The agents agents.conf defines (asterisk.agents.AgentConfig by id); none while app_agent_pool is unloaded."""
        cf, _ = self._conf("agent")
        return agents_conf.agents(cf) if cf is not None else {}

    def sync_agents(self) -> None:
        """Bring the agent pool in step with the loaded agents.conf (engine.apps.agents.sync): new agents
        appear logged out, those not logged in take the new options (the others at their next call), and
        a removed agent that is logged in is logged off."""
        from switchboard.engine.apps import agents

        agents.sync(self)

    # ---- what the views read ---------------------------------------------------------------
    def pjsip(self) -> pjsip.PjsipConfig | None:
        if not self.feature("pjsip") or "pjsip" not in self.config:
            return None
        return self.config["pjsip"].value

    def pjsip_ns(self) -> int:
        return self.config["pjsip"].loaded_ns if "pjsip" in self.config else self.started_ns

    def dialplan(self) -> dialplan.Dialplan | None:
        if not self.feature("dialplan") or "dialplan" not in self.config:
            return None
        return self.config["dialplan"].value

    def _conf(self, family: str) -> tuple[conf.ConfFile | None, int]:
        if not self.feature(family) or family not in self.config:
            return None, 0
        return self.config[family].value, self.config[family].loaded_ns

    def parkinglots(self) -> list[dict]:
        """Loaded lots. Asterisk always has a `default` lot (701-750, 45 s) unless configured."""
        cf, ns = self._conf("park")
        if cf is None:
            return []
        lots = {}
        for name in cf.names():
            if name == "general":
                continue
            opts = {k: option_value(v) for k, v in cf.resolved(name).items()}
            lo, hi = parse_parkpos(opts.get("parkpos", "701-750"), name)
            lots[name] = {
                "name": name,
                "start_space": str(lo),
                "stop_spcae": str(hi),
                "stop_space": str(hi),
                "timeout": int(opts.get("parkingtime") or 45),
                "tm_update": ns,
            }
        if "default" not in lots:
            lots = {
                "default": {
                    "name": "default",
                    "start_space": "701",
                    "stop_spcae": "750",
                    "stop_space": "750",
                    "timeout": 45,
                    "tm_update": ns,
                },
                **lots,
            }
        return list(lots.values())

    def queues(self) -> list[dict]:
        cf, ns = self._conf("queue")
        if cf is None:
            return []
        out = []
        for name in cf.names():
            if name == "general" or (cf.get(name) and cf.get(name).template):
                continue
            opts = {k: option_value(v) for k, v in cf.resolved(name).items()}
            waiting = [e for e in self.queue_entries.values() if e.get("queue_name") == name]
            out.append(
                {
                    "name": name,
                    "strategy": (opts.get("strategy") or "ringall").lower(),
                    "max": int(opts.get("maxlen") or 0),
                    "weight": int(opts.get("weight") or 0),
                    "calls": len(waiting),
                    "completed": 0,
                    "abandoned": 0,
                    "hold_time": 0,
                    "talk_time": 0,
                    "service_level": int(opts.get("servicelevel") or 0),
                    "service_level_perf": 0.0,
                    "tm_update": ns,
                }
            )
        return out

    def queue_members(self) -> list[dict]:
        """Static members from queues.conf (`member => interface[,penalty[,name[,state_interface[,ringinuse]]]]`)."""
        cf, ns = self._conf("queue")
        if cf is None:
            return []
        out = []
        for q in self.queues():
            for raw in cf.multi(q["name"], "member"):
                parts = [p.strip() for p in option_value(raw).split(",")]
                parts += [""] * (5 - len(parts))
                iface, penalty, mname, state_if, ringinuse = parts[:5]
                out.append(
                    {
                        "id": f"{iface}@{q['name']}",
                        "name": mname or iface,
                        "queue_name": q["name"],
                        "status": DEVICE_STATE_NUM[self.device_state(state_if or iface)],
                        "membership": "static",
                        "state_interface": state_if or iface,
                        "location": iface,
                        "paused": 0,
                        "paused_reason": "",
                        "penalty": int(penalty or 0),
                        "calls_taken": 0,
                        "in_call": 0,
                        "last_call": 0,
                        "last_pause": 0,
                        "ring_inuse": (1 if ringinuse.lower() in ("yes", "true", "1") else 0) if ringinuse else None,
                        "tm_update": ns,
                    }
                )
        return out

    # ---- device state ---------------------------------------------------------------------------
    def contacts_of(self, aor: str) -> list:
        """The live (unexpired) bindings of an aor (engine.registrar.Binding), oldest first."""
        bindings = self.contacts.get(aor)
        if not bindings:
            return []
        now = time.time()
        return sorted((b for b in bindings.values() if b.expires_at > now), key=lambda b: b.registered_at)

    def device_state(self, device: str) -> str:
        """Asterisk's device state. A PJSIP endpoint with live channels (by `ch.resource`) takes
        their aggregate (channel_state): a channel up → INUSE, ringing → RINGING, both →
        RINGINUSE, on hold (`ch.on_hold`) → ONHOLD (held plus another in use: INUSE), busy → BUSY.
        Without channels: NOT_INUSE when registered (UNAVAILABLE when qualify finds every contact
        unreachable), else UNAVAILABLE. `Agent:<id>` is the agent's (engine.apps.agents.Agent.devstate:
        UNAVAILABLE logged out, NOT_INUSE waiting for a call, INUSE alerted, on a call or in wrapup)."""
        tech, _, name = device.partition("/")
        cfg = self.pjsip()
        if tech.upper() == "PJSIP" and cfg is not None and name in cfg.endpoints:
            if state := self.channel_state(name):
                return state
            aors = [a.strip() for a in cfg.endpoints[name].get("aors", "").split(",") if a.strip()]
            if any(self.contacts_of(a) for a in aors):  # registered: reachable unless qualify says not
                if all(b.status == "Unreachable" for a in aors for b in self.contacts_of(a)):
                    return "UNAVAILABLE"
                return "NOT_INUSE"
            return "UNAVAILABLE"
        if device.startswith("Agent:") and device[6:] in self.agents:
            return self.agents[device[6:]].devstate()
        return "INVALID"

    def extension_state(self, context: str, exten: str) -> str:
        """The state of an extension's hint (`exten => 100,hint,PJSIP/alice&PJSIP/bob`), as Asterisk's
        ast_extension_state: its devices' states aggregated (ringing and in use together →
        RINGINUSE, else the most telling one); NOT_INUSE for a hint whose devices are idle, and
        "" when the extension has no hint (the EXTENSION_STATE function then says UNKNOWN)."""
        plan = self.dialplan()
        ctx = plan.contexts.get(context) if plan is not None else None
        hint = next((e.hint for e in (ctx.extensions if ctx else []) if e.exten == exten and e.hint), None)
        if not hint:
            return ""
        state, ringing, inuse = "INVALID", False, False
        for device in (d.strip() for d in hint.split("&") if d.strip()):
            dev = self.device_state(device)
            dev = "UNKNOWN" if dev not in _AGGREGATE_ORDER else dev
            ringing |= dev in ("RINGING", "RINGINUSE")
            inuse |= dev in ("INUSE", "ONHOLD", "BUSY", "RINGINUSE")
            if ringing and inuse:
                state = "RINGINUSE"
            elif _AGGREGATE_ORDER[dev] > _AGGREGATE_ORDER[state]:
                state = dev
        return state

    def channel_state(self, endpoint: str) -> str | None:
        """The device state an endpoint's live channels give (None: no channel), as chan_pjsip:
        each channel counts as ONHOLD when on hold, else by its state (CHAN_DEVICE_STATE), and
        the states aggregate as ast_devstate_aggregate does."""
        chans = self.channels_of(endpoint)
        if not chans:
            return None
        state, ringing, inuse = "INVALID", False, False
        for ch in chans:
            dev = "ONHOLD" if ch.on_hold else CHAN_DEVICE_STATE.get(ch.state, "UNKNOWN")
            if dev == "RINGING":
                ringing = True
            elif dev in ("INUSE", "ONHOLD", "BUSY"):
                inuse = True
            if ringing and inuse:
                state = "RINGINUSE"
            elif _AGGREGATE_ORDER[dev] > _AGGREGATE_ORDER[state]:
                state = dev
        return state

    def devices(self) -> list[str]:
        cfg = self.pjsip()
        out = [f"PJSIP/{n}" for n in (cfg.endpoints if cfg else {})]
        out += [f"Agent:{a}" for a in self.agents]
        return out
