"""The PBX as the engine runs it: which modules are loaded and what configuration each loaded.

Module registry: each module is a feature of the engine with the configuration file it loads.
Unloading one switches the feature off for real (the jade views backed by it go empty and the
engine stops using it; `res_pjsip` unloaded makes the SIP engine answer 503 to every request).
Loading brings it back; reloading re-reads its file from the database. The chosen state is
stored (`modules` table), so it survives a restart.

Configuration is loaded from the database at start, after every API write to a file (once the
write has committed), and on module reload. Each of these changes is announced on the event bus
with this node's id (`config.reloaded`, `module.changed`, `devices.reloaded`, `trunks.changed`);
with several nodes on one PostgreSQL the other nodes receive it through LISTEN/NOTIFY and re-read
the same thing from the database (engine/cluster.py), without announcing it again.

Live call state (channels, parked calls, queue entries, agents) lives here too; it is empty
until the call handling arrives (the SIP issues fill it), but the views already read it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from switchboard import events
from switchboard.asterisk import agents as agents_conf
from switchboard.asterisk import conf, dialplan, parking, pjsip
from switchboard.asterisk.files import FILES
from switchboard.domain import pbxconf
from switchboard.domain.cluster import NODE_ID
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
    cause_text,
)
from switchboard.engine.queuelive import MEMBER_STATES, QueueLive, queue_conf
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
    # calls parked now, by the parkee's unique id (engine.apps.parking.ParkedCall: `.view()` is jade's object)
    parked_calls: dict[str, Any] = field(default_factory=dict)
    queue_live: QueueLive = field(default_factory=QueueLive)  # app_queue's live state (engine/queuelive.py)
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
    # rendered views of loaded objects (dicts, and the JSON of some), dropped whenever the
    # configuration reloads
    view_cache: dict[tuple, Any] = field(default_factory=dict)
    # SIP workers (engine/workers.py): fn(kind, name) -> awaitable or None, called after this process
    # (re)loaded something the workers must load too ("family", "module", "devices"); awaited where
    # the caller can wait, so an API write returns once every worker has the change
    sync_hooks: list = field(default_factory=list)
    # kazoo devices with `voice.sip` credentials: SIP accounts the registrar accepts, by username
    sip_devices: dict[str, DeviceAccount] = field(default_factory=dict)
    # the dialplan calls run: extensions.conf plus res_parking's contexts (built on first use after a load)
    _plan: dialplan.Dialplan | None = field(default=None, repr=False)
    # _aors_of's (configuration, {endpoint: its aors}, {aor: its endpoints}) for the loaded pjsip.conf
    _endpoint_aors: tuple[Any, dict, dict] | None = field(default=None, repr=False)

    async def load_devices(self, conn: AsyncConnection, kazoo: KazooService, *, announce: bool = True) -> None:
        """(Re)load the kazoo devices' SIP accounts (after a committed device write, and at start);
        `announce`: tell the other nodes (`devices.reloaded`), which reload theirs."""
        self.sip_devices = {
            a["username"]: DeviceAccount(a["username"], a["password"], a["device_id"], a["account_id"], a["realm"])
            for a in await kazoo.sip_accounts(conn)
        }
        self.view_cache.clear()
        if announce:
            events.publish("devices.reloaded", {"count": len(self.sip_devices), "node": NODE_ID})
        await self._synced("devices", None)

    def _sync(self, kind: str, name: str | None) -> list:
        return [w for hook in self.sync_hooks if (w := hook(kind, name)) is not None]

    async def _synced(self, kind: str, name: str | None) -> None:
        for waiting in self._sync(kind, name):
            await waiting

    # ---- loading ----------------------------------------------------------------------------
    async def load_all(self, conn: AsyncConnection, configs, *, announce: bool = True) -> None:
        await self.load_modules(conn)
        for family in ("dialplan", "pjsip", "queue", "park", "agent"):
            await self.load_family(conn, configs, family, announce=announce)

    async def load_modules(self, conn: AsyncConnection, only: str | None = None) -> None:
        """The modules' stored state (all, or the one named `only`), applied."""
        query = select(t.modules.c.name, t.modules.c.loaded, t.modules.c.updated_ns)
        if only is not None:
            query = query.where(t.modules.c.name == only)
        for name, loaded, ns in (await conn.execute(query)).all():
            if name in MODULES and (self.loaded_modules.get(name) != loaded or self.module_ns.get(name) != ns):
                self.apply_module(name, loaded, announce=False)
                self.module_ns[name] = ns

    async def load_family(self, conn: AsyncConnection, configs, family: str, *, announce: bool = True) -> None:
        """(Re)load one family from the database. The stored text was validated when written; a
        file that no longer loads (e.g. written by an older version) leaves the previous state."""
        text, _ = await configs.live(conn, family)
        if family == "dialplan":
            text += "\n" + dialplan.compile_adpmas(await configs.adpmas(conn), await configs.adps(conn))
        provided = await configs.provided_contexts(conn, family) if family == "dialplan" else ()
        try:
            value = pbxconf.validate_text(family, text, provided)
        except Exception:  # noqa: BLE001 - keep running on the previous configuration
            log.exception("could not load %s; keeping the previous one", FILES[family])
            return
        self.config[family] = Loaded(value, time.time_ns())
        self.reloaded_ns = time.time_ns()
        if announce:
            events.publish("config.reloaded", {"family": family, "file": FILES[family], "node": NODE_ID})
        self.view_cache.clear()
        self._plan = None
        if family == "agent":
            self.sync_agents()
        await self._synced("family", family)

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
        ch.live = True
        events.publish("channel.created", ch.view())

    def end_channel(self, ch: Channel) -> None:
        """The call engine: a channel ended (after ch.mark_gone). Drops it from the live channels,
        counts it in processed_calls and calls on_channel_ended listeners. Calling it twice counts
        once. (CDRs are not written here: the call engine gives each caller's channel to the CDR
        writer itself, `Services.cdr_writer.channel_ended`.)"""
        if self.channels.pop(ch.uniqueid, None) is None:
            return
        ch.live = False
        events.publish(
            "channel.hangup", {**ch.view(), "cause": ch.hangup_cause, "cause_txt": cause_text(ch.hangup_cause)}
        )
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
            events.publish("trunks.changed", {"node": NODE_ID})
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

    def apply_module(self, name: str, loaded: bool, *, announce: bool = True) -> None:
        """Load or unload (or reload: `loaded` unchanged) a module on this node; `announce`: tell the
        other nodes (`module.changed`), which read its stored state and do the same."""
        self.view_cache.clear()
        self._plan = None
        self.loaded_modules[name] = loaded
        self.module_ns[name] = time.time_ns()
        if name == "app_agent_pool":
            self.sync_agents()
        if announce:
            events.publish("module.changed", {"module": name, "loaded": loaded, "node": NODE_ID})
        self._sync("module", name)  # the workers re-read its stored state (not awaited: this is sync)

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
        """The dialplan calls run: extensions.conf's with res_parking's contexts merged in (as res_parking
        registers its extensions into the PBX: the lots' park and space extensions, hints, park-dial).
        Built once per load of either file (or module change); an extension extensions.conf defines in the
        same context wins over the generated one. The park-dial extensions a timeout adds go into the
        merged plan (and so last until the next load, as Asterisk's last until a reload of res_parking)."""
        if not self.feature("dialplan") or "dialplan" not in self.config:
            return None
        if self._plan is None:
            self._plan = _merge_plan(self.config["dialplan"].value, parking.contexts(self.parking_lots()))
        return self._plan

    def _conf(self, family: str) -> tuple[conf.ConfFile | None, int]:
        if not self.feature(family) or family not in self.config:
            return None, 0
        return self.config[family].value, self.config[family].loaded_ns

    def parking_lots(self) -> dict[str, parking.Lot]:
        """The lots res_parking runs (asterisk.parking.lots: the `default` lot always exists); none when
        res_parking is not loaded."""
        if not self.feature("park") or "park" not in self.config:
            return {}
        return parking.lots(self.config["park"].value)

    def parkinglots(self) -> list[dict]:
        """jade's loaded lots (asterisk.parking.lots)."""
        _, ns = self._conf("park")
        return [
            {
                "name": lot.name,
                "start_space": str(lot.start),
                "stop_spcae": str(lot.stop),
                "stop_space": str(lot.stop),
                "timeout": lot.parkingtime,
                "tm_update": ns,
            }
            for lot in self.parking_lots().values()
        ]

    def _queue_confs(self) -> list:
        cf, _ = self._conf("queue")
        if cf is None:
            return []
        out = []
        for name in cf.names():
            qc = queue_conf(cf, name)
            if qc is not None:
                out.append(qc)
        return out

    def queues(self) -> list[dict]:
        """The loaded queues with their live counters (engine/queuelive.py): calls waiting, calls
        completed and abandoned, the averaged hold and talk times, the service level performance."""
        cf, ns = self._conf("queue")
        if cf is None:
            return []
        live = self.queue_live
        out = []
        for qc in self._queue_confs():
            s = live.stats.get(qc.name)
            perf = round(s.completed_in_sl * 100.0 / s.completed, 1) if s and s.completed else 0.0
            out.append(
                {
                    "name": qc.name,
                    "strategy": qc.strategy,
                    "max": qc.maxlen,
                    "weight": qc.weight,
                    "calls": len(live.entries.get(qc.name, [])),
                    "completed": s.completed if s else 0,
                    "abandoned": s.abandoned if s else 0,
                    "hold_time": s.holdtime if s else 0,
                    "talk_time": s.talktime if s else 0,
                    "service_level": qc.servicelevel,
                    "service_level_perf": perf,
                    "tm_update": max(ns, int(s.updated * 1e9)) if s else ns,
                }
            )
        return out

    def queue_member_state(self, spec) -> str:
        """A member's device state: a MEMBER_STATES hook for its state interface's prefix, else Pbx.device_state."""
        iface = spec.state_if
        for prefix, fn in MEMBER_STATES.items():
            if iface.startswith(prefix):
                try:
                    return fn(iface)
                except Exception:  # noqa: BLE001 - a failing hook makes the member unknown, not the view
                    log.exception("member state hook for %s failed", iface)
                    return "UNKNOWN"
        return self.device_state(iface)

    def queue_members(self) -> list[dict]:
        """Members of every queue: static ones from queues.conf (`member => interface[,penalty[,name[,
        state_interface[,ringinuse[,wrapuptime]]]]]`) and dynamic ones (AddQueueMember), with their live
        status (device state), pause, calls taken, last call and whether they are in a call."""
        cf, ns = self._conf("queue")
        if cf is None:
            return []
        live = self.queue_live
        out = []
        for qc in self._queue_confs():
            for spec in live.member_specs(qc):
                m = live.members.get((qc.name, spec.interface))
                out.append(
                    {
                        "id": f"{spec.interface}@{qc.name}",
                        "name": spec.display,
                        "queue_name": qc.name,
                        "status": DEVICE_STATE_NUM.get(self.queue_member_state(spec), 0),
                        "membership": spec.membership,
                        "state_interface": spec.state_if,
                        "location": spec.interface,
                        "paused": int(m.paused) if m else 0,
                        "paused_reason": m.paused_reason if m else "",
                        "penalty": spec.penalty,
                        "calls_taken": m.calls if m else 0,
                        "in_call": int(m.in_call) if m else 0,
                        "last_call": int(m.lastcall) if m else 0,
                        "last_pause": m.last_pause if m else 0,
                        "ring_inuse": None if spec.ringinuse is None else int(spec.ringinuse),
                        "tm_update": max(ns, int(m.updated * 1e9)) if m else ns,
                    }
                )
        return out

    def queue_entry_views(self) -> list[dict]:
        """Callers waiting in queues (jade's /admin/queue/entries): position and seconds waited."""
        out = []
        now = time.time()
        for name, entries in self.queue_live.entries.items():
            for pos, e in enumerate(entries, 1):
                ch = e.channel
                out.append(
                    {
                        "unique_id": ch.uniqueid,
                        "queue_name": name,
                        "channel": ch.name,
                        "caller_id_name": ch.caller_name or "<unknown>",
                        "caller_id_num": ch.caller_num or "<unknown>",
                        "connected_line_name": ch.connected_name or "<unknown>",
                        "connected_line_num": ch.connected_num or "<unknown>",
                        "position": pos,
                        "wait": int(now - e.joined),
                        "tm_update": int(e.updated * 1e9),
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
        if device.lower().startswith("park:"):  # res_parking's metermaids: park:<space>@<context>
            space, _, context = device[5:].partition("@")
            taken = any(str(pc.space) == space and pc.context == context for pc in self.parked_calls.values())
            return "INUSE" if taken else "NOT_INUSE"
        tech, _, name = device.partition("/")
        cfg = self.pjsip()
        if tech.upper() == "PJSIP" and cfg is not None and name in cfg.endpoints:
            return self.endpoint_state(cfg, name, self.channels_of(name))
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
        return _channels_state(self.channels_of(endpoint))

    def endpoint_state(
        self, cfg: pjsip.PjsipConfig, name: str, channels: list[Channel], now: float | None = None
    ) -> str:
        """device_state of `PJSIP/<name>` (an endpoint of `cfg`) given its live channels
        (channels_of(name), or live_channels()'s entry): theirs when it has any, else NOT_INUSE
        when one of its aors holds a live contact that qualify has not found unreachable,
        UNAVAILABLE otherwise."""
        if channels:
            return _channels_state(channels)
        now = time.time() if now is None else now
        for aor in self._aors_of(cfg)[0][name]:
            bindings = self.contacts.get(aor)
            if bindings and _reachable(bindings, now):
                return "NOT_INUSE"
        return "UNAVAILABLE"

    def busy_endpoints(self, cfg: pjsip.PjsipConfig) -> dict[str, tuple[str, list[Channel]]]:
        """(device state, live channels) of each endpoint of `cfg` that is not idle, idle being
        endpoint_state's UNAVAILABLE with no channel. The same rule as endpoint_state's, taken
        from the other side: from the live channels and from the aors that hold a reachable
        contact, so its cost follows the calls and registrations, not the number of endpoints."""
        now, endpoints = time.time(), cfg.endpoints
        out = {name: (_channels_state(chs), chs) for name, chs in self.live_channels().items() if name in endpoints}
        users = self._aors_of(cfg)[1]
        for aor, bindings in self.contacts.items():
            names = users.get(aor)
            if names and _reachable(bindings, now):
                for name in names:
                    if name not in out:
                        out[name] = ("NOT_INUSE", [])
        return out

    def _aors_of(self, cfg: pjsip.PjsipConfig) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
        """Each endpoint's aors, and each aor's endpoints, parsed once per configuration load."""
        memo = self._endpoint_aors
        if memo is None or memo[0] is not cfg:
            aors = {
                name: tuple(a.strip() for a in opts.get("aors", "").split(",") if a.strip())
                for name, opts in cfg.endpoints.items()
            }
            users: dict[str, tuple[str, ...]] = {}
            for name, names in aors.items():
                for aor in names:
                    users[aor] = (*users.get(aor, ()), name)
            memo = self._endpoint_aors = (cfg, aors, users)
        return memo[1], memo[2]

    def live_channels(self) -> dict[str, list[Channel]]:
        """channels_of for every resource at once (one pass over the channels, for a list view)."""
        out: dict[str, list[Channel]] = {}
        for ch in self.channels.values():
            if not ch.hung_up:
                out.setdefault(ch.resource, []).append(ch)
        return out

    def devices(self) -> list[str]:
        cfg = self.pjsip()
        out = [f"PJSIP/{n}" for n in (cfg.endpoints if cfg else {})]
        out += [f"Agent:{a}" for a in self.agents]
        return out


def _reachable(bindings: dict, now: float) -> bool:
    """Does an aor's bindings hold a live contact that qualify has not found unreachable?"""
    return any(b.expires_at > now and b.status != "Unreachable" for b in bindings.values())


def _channels_state(channels: list[Channel]) -> str | None:
    """The aggregate device state of an endpoint's live channels (Pbx.channel_state)."""
    if not channels:
        return None
    state, ringing, inuse = "INVALID", False, False
    for ch in channels:
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


def _merge_plan(plan: dialplan.Dialplan, generated: dict[str, dialplan.Context]) -> dialplan.Dialplan:
    """`plan` with the generated contexts added; into a context the file defines too, the generated
    extensions it does not define itself (the file's contexts are copied, never changed)."""
    contexts = dict(plan.contexts)
    for name, gen in generated.items():
        mine = contexts.get(name)
        if mine is None:
            contexts[name] = dialplan.Context(name, list(gen.extensions))
            continue
        have = {(e.exten, e.callerid) for e in mine.extensions}
        contexts[name] = dialplan.Context(
            name,
            list(mine.extensions) + [e for e in gen.extensions if (e.exten, None) not in have],
            list(mine.includes),
            list(mine.ignorepats),
            list(mine.switches),
        )
    return dataclasses.replace(plan, contexts=contexts)
