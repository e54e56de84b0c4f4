"""Trunks on the wire: outbound registration for REGISTER_AUTH trunks with `require_register`,
OPTIONS qualify for the others.

Registration (RFC 3261 §10.2): REGISTER to `outbound_server:outbound_server_port` when set, else
`hostname:port`, over the trunk's protocol (UDP/TCP); Request-URI `sip:hostname[:port]`,
To/From `sip:auth_id@hostname`, our Contact, Expires = `reregister_interval`. A 401/407 is
answered once with digest credentials (`auth_id` / the decrypted password; SHA-256 preferred,
MD5 otherwise — sip/digest.py). On 200 the trunk is ONLINE and the registration is refreshed
before it runs out (at 85% of the granted expiry, at most `reregister_interval`). A refusal or a
timeout makes it OFFLINE and the engine retries with back-off (SWITCHBOARD_TRUNK_RETRY_MIN,
doubling up to SWITCHBOARD_TRUNK_RETRY_MAX). Deleting or changing a trunk unregisters the old
registration (Expires: 0) first.

While registered, the registrar is also pinged with OPTIONS every qualify interval, so a registrar
that goes away turns the trunk OFFLINE within about one interval (not at the next refresh), and
the engine registers again (with back-off) until it answers.

Once per cluster: with several nodes on one PostgreSQL only the node holding the `trunks` lease
(domain/cluster.py) runs the sessions (`run_leased`); every node keeps `Pbx.trunks` current
(`reload` without sessions when not active) and takes the holder's `trunk.status` events into its
`Pbx.trunk_states` (engine/cluster.py), so every node shows the same status. When the holder dies
its lease expires and another node registers the trunks (from its own address) within the lease
time.

Qualify: IP_AUTH trunks (and REGISTER_AUTH ones that do not register) get an OPTIONS every
SWITCHBOARD_TRUNK_QUALIFY_INTERVAL seconds; any answer means ONLINE.

State, per trunk id in `Pbx.trunk_states` (what the providers `status`, jade `/registries` and
`registration_outbounds` show): online, state ("Registered", "Request Sent", "Rejected",
"Unregistered", or "Reachable"/"Unreachable" for qualify), refresh, registration_time, last
response code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from switchboard import events
from switchboard.domain.cluster import NODE_ID
from switchboard.domain.trunks import Trunk, TrunkService
from switchboard.engine.runtime import Pbx
from switchboard.sip import digest
from switchboard.sip.engine import USER_AGENT, SipEngine
from switchboard.sip.headers import contact_uri_and_params, split_contacts
from switchboard.sip.message import Message, new_tag

log = logging.getLogger("switchboard.trunks")


def _hostport(host: str, port: int) -> str:
    return host if port in (0, 5060) else f"{host}:{port}"


class TrunkSession:
    """One trunk's registration or qualify loop."""

    def __init__(self, owner: TrunkRegistrar, trunk: Trunk, password: str):
        self.owner, self.trunk, self.password = owner, trunk, password
        self.call_id = f"{new_tag()}{new_tag()}@switchboard"
        self.from_tag = new_tag()
        self.cseq = 0
        self.registered = False
        self.task: asyncio.Task | None = None

    @property
    def target(self) -> tuple[str, int]:
        t = self.trunk
        if t.outbound_server:
            return t.outbound_server, t.outbound_server_port or 5060
        return t.hostname, t.port or 5060

    def _state(self, **values) -> None:
        state = self.owner.pbx.trunk_states.setdefault(self.trunk.id, {"online": False, "state": "Unregistered"})
        before = (state.get("online"), state.get("state"))
        state.update(values, tm_update=time.time_ns())
        if before != (state.get("online"), state.get("state")):
            self.announce()

    def announce(self) -> None:
        """Publish this trunk's state (`trunk.status`): on each change, and for a node that joined."""
        state = self.owner.pbx.trunk_states.get(self.trunk.id)
        if state is None:
            return
        events.publish(
            "trunk.status",
            {
                "id": self.trunk.id,
                "name": self.trunk.name,
                "status": "ONLINE" if state.get("online") else "OFFLINE",
                "state": state.get("state"),
                "code": state.get("code"),
                "node": NODE_ID,
                "fields": dict(state),  # what the other nodes' views show (engine/cluster.py)
            },
        )

    def _request(self, method: str, expires: int | None) -> Message:
        t = self.trunk
        host, _ = self.target
        local = self.owner.engine.local_host_for(host)
        self.cseq += 1
        aor = f"sip:{t.auth_id or 'switchboard'}@{_hostport(t.hostname, t.port)}"
        transport = "" if t.protocol == "UDP" else ";transport=tcp"
        headers = [
            ("Max-Forwards", "70"),
            ("From", f"<{aor}>;tag={self.from_tag}"),
            ("To", f"<{aor if method == 'REGISTER' else 'sip:' + _hostport(t.hostname, t.port)}>"),
            ("Call-ID", self.call_id),
            ("CSeq", f"{self.cseq} {method}"),
            ("User-Agent", USER_AGENT),
        ]
        if method == "REGISTER":
            headers += [
                ("Contact", f"<sip:{t.auth_id or 'switchboard'}@{local}:{self.owner.engine.port}{transport}>"),
                ("Expires", str(expires if expires is not None else t.reregister_interval)),
            ]
        return Message(method=method, uri=f"sip:{_hostport(t.hostname, t.port)}", headers=headers)

    async def _send(self, method: str, expires: int | None = None, timeout: float = 32) -> Message | None:
        """One request, answering a digest challenge once."""
        host, port = self.target
        engine = self.owner.engine
        req = self._request(method, expires)
        resp = await engine.request(req, host, port, transport=self.trunk.protocol, timeout=timeout)
        if resp is not None and resp.status in (401, 407) and self.trunk.auth_id:
            header = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
            try:
                creds = digest.DigestClient(self.trunk.auth_id, self.password).authorize(
                    method, req.uri or "", resp.get_all(header)
                )
            except digest.DigestError as e:
                log.warning("trunk %s: cannot answer the challenge: %s", self.trunk.name, e)
                return resp
            retry = self._request(method, expires)
            retry.headers.append(("Authorization" if resp.status == 401 else "Proxy-Authorization", creds))
            resp = await engine.request(retry, host, port, transport=self.trunk.protocol, timeout=timeout)
        return resp

    def _granted(self, resp: Message) -> int:
        """The expiry the registrar granted us: our Contact's expires, else Expires, else ours."""
        default = self.trunk.reregister_interval
        ours = f"{self.trunk.auth_id or 'switchboard'}@"
        for contact in split_contacts(resp.get_all("Contact")):
            uri, params = contact_uri_and_params(contact)
            if ours in uri and params.get("expires", "").isdigit():
                return int(params["expires"])
        exp = (resp.get("Expires") or "").strip()
        return int(exp) if exp.isdigit() else default

    async def run(self) -> None:
        retry = self.owner.retry_min
        while True:
            if self.trunk.registers:
                self._state(state="Request Sent")
                resp = await self._send("REGISTER")
                if resp is not None and 200 <= (resp.status or 0) < 300:
                    granted = max(1, min(self._granted(resp), self.trunk.reregister_interval))
                    self.registered = True
                    self._state(
                        online=True,
                        state="Registered",
                        refresh=granted,
                        registration_time=int(time.time()),
                        code=resp.status,
                    )
                    retry = self.owner.retry_min
                    if await self._keepalive(max(1.0, granted * 0.85)):
                        continue  # time to refresh
                    self.registered = False
                    self._state(online=False, state="Request Sent", registration_time=0)
                    log.info("trunk %s: registrar stopped answering; registering again", self.trunk.name)
                    delay = 0
                else:
                    self.registered = False
                    code = resp.status if resp is not None else None
                    self._state(
                        online=False, state="Rejected" if code else "Request Sent", code=code, registration_time=0
                    )
                    log.info(
                        "trunk %s: registration failed (%s); retry in %.0f s",
                        self.trunk.name,
                        code or "no answer",
                        retry,
                    )
                    delay, retry = retry, min(retry * 2, self.owner.retry_max)
            else:
                started = time.perf_counter()
                resp = await self._send("OPTIONS", timeout=self.owner.ping_timeout)
                online = resp is not None
                self._state(
                    online=online,
                    state="Reachable" if online else "Unreachable",
                    code=resp.status if resp is not None else None,
                    rtt_usec=int((time.perf_counter() - started) * 1e6) if online else None,
                )
                delay = self.owner.qualify_interval
            await asyncio.sleep(delay)

    async def _keepalive(self, until: float) -> bool:
        """Between refreshes, an OPTIONS to the registrar every qualify interval: False as soon as
        one goes unanswered (the registrar is gone: the trunk is OFFLINE until it registers again),
        True when it is time to refresh."""
        deadline = time.monotonic() + until
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(left, self.owner.qualify_interval))
            if deadline - time.monotonic() <= 0:
                break
            if await self._send("OPTIONS", timeout=self.owner.ping_timeout) is None:
                return False
        return True

    async def unregister(self) -> None:
        if self.trunk.registers and self.registered:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._send("REGISTER", expires=0), 10)
            self.registered = False


class TrunkRegistrar:
    def __init__(
        self,
        pbx: Pbx,
        engine: SipEngine,
        db,
        trunks: TrunkService,
        *,
        retry_min: float = 5.0,
        retry_max: float = 300.0,
        qualify_interval: float = 30.0,
    ):
        self.pbx, self.engine, self.db, self.trunks = pbx, engine, db, trunks
        self.retry_min, self.retry_max, self.qualify_interval = retry_min, retry_max, qualify_interval
        self.ping_timeout = max(2.0, min(10.0, qualify_interval))
        self.sessions: dict[int, TrunkSession] = {}
        self._lock = asyncio.Lock()
        # False: this node keeps Pbx.trunks current but runs no session (another node holds the lease)
        self.active = True

    def announce(self) -> None:
        """Every running trunk's state again (a node joined the cluster: engine/cluster.py)."""
        if self.active:
            for session in self.sessions.values():
                session.announce()

    async def run_leased(self) -> None:
        """The `trunks` lease's job: run the sessions while this node holds it (until cancelled)."""
        self.active = True
        try:
            await self.reload()
            await asyncio.Event().wait()
        finally:
            self.active = False
            with contextlib.suppress(Exception):
                await asyncio.shield(self.stop())

    async def reload(self) -> None:
        """Start sessions for new trunks, restart changed ones, stop (and unregister) removed ones."""
        async with self._lock:
            async with self.db.transaction(write=False) as conn:
                current = {t.id: t for t in await self.trunks.all(conn)}
            self.pbx.trunks = dict(current)
            if not self.active:
                return
            for tid in list(self.sessions):
                session = self.sessions[tid]
                if tid not in current or current[tid] != session.trunk:
                    await self._stop(tid)
            for tid, trunk in current.items():
                if tid not in self.sessions:
                    try:
                        password = self.trunks.password(trunk)
                    except ValueError:
                        log.error("trunk %s: its password cannot be decrypted with this key", trunk.name)
                        password = ""
                    session = TrunkSession(self, trunk, password)
                    self.sessions[tid] = session
                    session.task = asyncio.ensure_future(session.run())

    async def _stop(self, tid: int) -> None:
        session = self.sessions.pop(tid)
        if session.task:
            session.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await session.task
        await session.unregister()
        self.pbx.trunk_states.pop(tid, None)

    async def stop(self) -> None:
        for tid in list(self.sessions):
            await self._stop(tid)
