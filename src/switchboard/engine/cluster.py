"""Several `serve` nodes on one PostgreSQL, one system: this node follows the others' changes.

Transport: the event bus that already crosses nodes (events/pgbridge.py: every node receives every
node's events, its own included, in one cluster-wide sequence through LISTEN/NOTIFY). Chosen over a
second LISTEN channel or polling: the bus already orders the events with the writes (each is
published after its transaction committed), and its `gap` event already says when a node may have
missed some. The events that change engine state carry the id of the node that made the change
(`node`, domain.cluster.NODE_ID); `ClusterSync` reads the bus and, for each event of another node,
re-reads the same thing from the database (never from the event's payload, which may be truncated,
except for live state that is not in the database):

- `config.reloaded` -> that family's file (pjsip.conf, extensions.conf, ...) is loaded again;
- `module.changed` -> the module's stored state is applied (res_pjsip unloaded: 503 here too);
- `devices.reloaded` -> the kazoo devices' SIP accounts; `trunks.changed` -> the trunks;
- `registration.added/refreshed/removed` -> those aors' bindings (bindings.refresh_aors), so a
  phone registered at another node is in this node's contacts and reached from this node's socket;
- `trunk.status` -> `Pbx.trunk_states` (the lease holder runs the trunks; every node shows them);
- `contact.status` -> the qualify status of that binding (qualify runs on one node);
- `node.joined` (published by each node when it starts following) -> the trunks' holder publishes
  every trunk's state again, so a node that starts later shows it too.

A `gap` (the LISTEN connection was lost and came back, or this reader fell behind the history)
means some events may be lost: everything is re-read (modules, every family, devices, trunks,
every binding). A failing step is logged and retried by the next full resync only."""

from __future__ import annotations

import asyncio
import logging

from switchboard import events
from switchboard.domain.cluster import NODE_ID
from switchboard.engine import bindings
from switchboard.engine.runtime import Pbx

log = logging.getLogger("switchboard.cluster")

_REGISTRATION = ("registration.added", "registration.refreshed", "registration.removed")


class ClusterSync:
    def __init__(self, pbx: Pbx, db, configs, kazoo, registrar, trunk_reload, *, announce_trunks=None, bus=None):
        self.pbx, self.db, self.configs, self.kazoo = pbx, db, configs, kazoo
        self.registrar, self.trunk_reload = registrar, trunk_reload
        self.announce_trunks = announce_trunks
        self.bus = bus or events.bus
        self.resyncs = 0
        self.applied = 0
        # this node's SIP worker processes (engine/workers.py): their changes are this node's own,
        # already applied through the hub
        self.local_nodes: set[str] = set()

    async def run(self) -> None:
        sub = self.bus.subscribe()
        events.publish("node.joined", {"node": NODE_ID})
        while True:
            batch = await sub.next()
            try:
                await self.apply(batch)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one bad step must not stop following the cluster
                log.exception("could not apply other nodes' changes; resyncing")
                await self._resync_logged()

    async def apply(self, batch) -> None:
        aors: set[str] = set()
        families: list[str] = []
        modules: list[str] = []
        devices = trunks = False
        for ev in batch:
            if ev.type == "gap":
                await self._resync_logged()
                aors.clear()
                families.clear()
                modules.clear()
                devices = trunks = False
                continue
            data = ev.data
            node = data.get("node")
            if node is None or node == NODE_ID or node in self.local_nodes:
                continue
            self.applied += 1
            kind = ev.type
            if kind in _REGISTRATION:
                aors.add(data.get("aor", ""))
            elif kind == "config.reloaded":
                if data.get("family") not in families:
                    families.append(data.get("family"))
            elif kind == "module.changed":
                modules.append(data.get("module"))
            elif kind == "devices.reloaded":
                devices = True
            elif kind == "trunks.changed":
                trunks = True
            elif kind == "trunk.status":
                self._trunk_status(data)
            elif kind == "contact.status":
                self._contact_status(data)
            elif kind == "node.joined" and self.announce_trunks is not None:
                self.announce_trunks()
        if modules or families or devices:
            async with self.db.transaction(write=False) as conn:
                for name in modules:
                    await self.pbx.load_modules(conn, only=name)
                for family in families:
                    await self.pbx.load_family(conn, self.configs, family, announce=False)
                if devices:
                    await self.pbx.load_devices(conn, self.kazoo, announce=False)
        if trunks:
            await self.trunk_reload()
        if aors:
            await bindings.refresh_aors(self.registrar, (a for a in aors if a))

    def _trunk_status(self, data: dict) -> None:
        tid = data.get("id")
        if not isinstance(tid, int):
            return
        fields = data.get("fields") if isinstance(data.get("fields"), dict) else {}
        state = self.pbx.trunk_states.setdefault(tid, {"online": False, "state": "Unregistered"})
        state.update(fields)
        state.update(online=data.get("status") == "ONLINE", state=data.get("state"), code=data.get("code"))
        self.pbx.view_cache.clear()

    def _contact_status(self, data: dict) -> None:
        b = (self.pbx.contacts.get(data.get("aor", "")) or {}).get(data.get("contact", ""))
        if b is not None:
            if b.status != data.get("status"):
                self.pbx.view_cache.clear()
            b.status, b.rtt_usec = data.get("status", b.status), data.get("rtt_usec")

    async def resync(self) -> None:
        """Re-read everything another node may have changed."""
        self.resyncs += 1
        async with self.db.transaction(write=False) as conn:
            await self.pbx.load_all(conn, self.configs, announce=False)
            await self.pbx.load_devices(conn, self.kazoo, announce=False)
        await self.trunk_reload()
        await bindings.sweep(self.registrar)
        log.info("resynced with the cluster (modules, configuration, devices, trunks, registrations)")

    async def _resync_logged(self) -> None:
        try:
            await self.resync()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the next gap or failure tries again
            log.exception("cluster resync failed")
