"""SIP worker processes: the SIP UDP port served by several processes, behaving as one.

`SWITCHBOARD_SIP_WORKERS=N` (N > 1): `serve` (worker 0, the main process: HTTP, calls, qualify,
trunk registration, the sweeper, TCP) starts N-1 `switchboard sip-worker` processes. Every process
binds the SIP UDP port with SO_REUSEPORT, and the kernel spreads datagrams over them at random, one
by one (a classic BPF program, sip/engine.spread_randomly; by a hash of the peer's address where
the kernel refuses it, which puts all of one peer's traffic in one process); `sip/steer.py` says
which process must handle each one, and the receiving process
passes it there over the hub (below) with its source address, so the owner
answers from the same port as if it had received it. What must be shared is made shared:

1. **nonce replay state** — a REGISTER with credentials is handled by the owner of its aor, and the
   nonce a client got in its challenge is signed with that owner's key wherever the challenge was
   made (a REGISTER without credentials over UDP is challenged statelessly by the process it reaches:
   sip/engine.SipEngine.challenge, registrar.stateless_challenge), so the nonce comes back to the
   process that can check it and counts its nc there. Each process has its own key; a nonce shown to
   another process (an INVITE reusing a REGISTER's nonce) is not accepted there but answered 401
   stale=true (registrar.worker_secrets): replay is refused exactly as in one process, and an honest
   client just authenticates again. While a worker is gone the main process takes its aors and checks
   their nonces with the gone worker's key.
2. **per-aor ordering** — one process decides an aor's bindings, in its registrar's per-aor queue.
   A REGISTER arriving over TCP (only the main process listens on TCP) is passed to its aor's owner
   too, with a relay that writes the owner's answer back on the connection.
3. **responses to our own requests** — only the main process sends requests (qualify, trunk
   registration, calls), and every response is steered to it.
4. **configuration reloads** — after the main process (re)loads a configuration family, the kazoo
   devices or a module's state (Pbx.sync_hooks), every worker re-reads it from the database and
   acknowledges; the API write that caused it returns after the acknowledgements (5 s at most).

Bindings: a worker commits before it answers 200 (as ever), and its `registration.*` events go to
the main process's event bus (the SSE stream; on PostgreSQL, the other nodes), whose copy of the
bindings takes each change from the event itself (a binding added, refreshed or removed: the event
carries what the views, qualify and calls read; WorkerHub._applied), re-reading an aor from the
database only for what an event cannot say (as ClusterSync does for another node's). The worker
answers its REGISTERs only once the main process confirms it has applied them (one round trip per
commit group), so when a phone holds its 200, jade's views and the call engine
know its binding, as in one process. The main process forwards the
`registration.*` events of the others to each worker, which re-reads the aors it owns (a TCP
REGISTER handled elsewhere, a binding the sweeper expired).

5. **the authentication failure throttle** — the main process's throttle counts every process's
   failed authentications (a worker reports each one and waits for the answer before it refuses),
   so the per-pair, per-source and per-account limits are the node's, as in one process. When the
   bans change (a limit reached, an admin lifting one through jade), the main process gives every
   worker the bans in force and waits for their acknowledgements before the refusal (or the API
   answer) goes out: the next attempt is refused wherever it lands. Each process exempts the
   (source, account) pairs it has seen succeed, as one process does: an aor's successes are seen by
   its owner, which is where its REGISTERs are checked.

Known difference from one process, small: the per-source request rate limit is applied where a
datagram arrives, each process allowing 1/N of the rate (each sees 1/N of a source's datagrams).

The hub: each worker connects to the main process's Unix stream socket (in a 0700 directory);
messages are framed by a 4-byte length, first byte = kind:
  P <transport> NUL <ip> NUL <port> NUL <conn> NUL <SIP message>   a message for the receiver to handle
  F <index> NUL <P message>                                        worker -> main: pass to worker <index>
  W <conn> NUL <bytes>                                             worker -> main: write on TCP conn
  E <event json>                                                   an event (both ways)
  L <json {token, kind, name}>  /  A <token>                       reload, and its acknowledgement
  B <token>  /  b <token>                                          worker -> main: "apply my events so far"; done
  H <index> NUL <node id>                                          worker -> main: ready
  T <token> NUL <json [source, aor]>  /  t <token>                 worker -> main: a failed authentication; counted
  K <json {token, bans}>  /  A <token>                             main -> worker: the bans in force; held
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import orjson

from switchboard import events
from switchboard.engine import bindings
from switchboard.sip.endpoint import Source
from switchboard.sip.steer import LOCAL, aor_owner, owner

log = logging.getLogger("switchboard.workers")

_REGISTRATION = ("registration.added", "registration.refreshed", "registration.removed")
_SOCKBUF = 4 << 20
RELOAD_TIMEOUT = 5.0


def hub_path(run_dir: Path) -> str:
    return str(run_dir / "sip-hub.sock")


def _packet(data: bytes, source: Source, conn: int = 0) -> bytes:
    return b"P%s\0%s\0%d\0%d\0%s" % (source.transport.encode(), source.ip.encode(), source.port, conn, data)


def _unpack(msg: bytes) -> tuple[str, str, int, int, bytes]:
    transport, ip, port, conn, data = msg[1:].split(b"\0", 4)
    return transport.decode(), ip.decode(), int(port), int(conn), data


class _Peer(Protocol):
    """What the hub uses of a connection: a `_Link` (or a stand-in that records what is sent, in tests; a
    Protocol, not the class, because the compiled module checks declared classes at run time)."""

    index: int | None

    def send(self, msg: bytes) -> bool: ...

    def close(self) -> None: ...


class _Link(asyncio.Protocol):
    """One connection of the hub (a Unix stream socket in a private directory): messages framed by
    a 4-byte length. A stream, not datagrams: a Unix datagram socket queues at most
    net.unix.max_dgram_qlen (10 by default) messages, far fewer than a burst of REGISTERs."""

    def __init__(self, on_message: Callable[[bytes, _Link], None]) -> None:
        self.on_message = on_message
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._loop = asyncio.get_running_loop()
        self.closed = self._loop.create_future()
        self.index: int | None = None  # the worker at the other end (main process's side)
        self._out: list[bytes] = []  # framed messages sent in this turn of the loop, written at its end

    def connection_made(self, transport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            for opt in (socket.SO_SNDBUF, socket.SO_RCVBUF):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, opt, _SOCKBUF)

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        pos, end = 0, len(buf)
        while end - pos >= 4:
            size = int.from_bytes(buf[pos : pos + 4], "big")
            if end - pos - 4 < size:
                break
            msg = bytes(buf[pos + 4 : pos + 4 + size])
            pos += 4 + size
            try:
                self.on_message(msg, self)
            except Exception:  # noqa: BLE001 - one bad message must not stop the hub
                log.exception("SIP worker hub: could not handle a %r message", msg[:1])
        del buf[:pos]

    def send(self, msg: bytes) -> bool:
        """Queue one message; what is sent during a turn of the event loop goes out in one write at
        its end (one system call, one wake-up of the other process, for all the datagrams steered,
        events published and barriers asked for in that turn), in the order sent."""
        t = self.transport
        if t is None or t.is_closing():
            return False
        out = self._out
        if not out:
            self._loop.call_soon(self.flush)
        out.append(len(msg).to_bytes(4, "big"))
        out.append(msg)
        return True

    def flush(self) -> None:
        out, self._out = self._out, []
        t = self.transport
        if out and t is not None and not t.is_closing():
            t.write(b"".join(out))

    def close(self) -> None:
        """Write what is queued, then close."""
        self.flush()
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc) -> None:
        if not self.closed.done():
            self.closed.set_result(exc)


class WorkerHub:
    """The main process's side: starts the workers, steers, relays, forwards events and reloads."""

    def __init__(self, engine, registrar, workers: int, run_dir: Path):
        self.engine, self.registrar, self.workers = engine, registrar, workers
        self.run_dir = Path(run_dir)
        self.procs: list[subprocess.Popen] = []
        self._server: asyncio.base_events.Server | None = None
        self.links: dict[int, _Peer] = {}
        self._ready_event = asyncio.Event()
        # the workers' node ids: their events need not go back to them, and ClusterSync leaves them
        # to the hub (ClusterSync.local_nodes is this set)
        self.nodes: set[str] = set()
        self._acks: dict[int, tuple[set[int], asyncio.Future]] = {}
        self._tokens = itertools.count(1)
        self._conns: dict[int, Any] = {}  # TCP relay id -> the connection's writer
        self._conn_ids: dict[Any, int] = {}
        self._refresh: set[str] = set()  # aors to re-read from the database
        self._reading: set[str] = set()  # aors being re-read
        self._refreshing: asyncio.Task | None = None
        self._watcher: asyncio.Task | None = None
        self._argv: list[str] = []
        self._env: dict = {}

    async def start(self, argv: list[str], env: dict, timeout: float = 60.0) -> None:
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(lambda: _Link(self._message), hub_path(self.run_dir))
        self._argv, self._env = argv, env
        self.procs = [self._spawn(index) for index in range(1, self.workers)]
        deadline = time.monotonic() + timeout
        while len(self.links) < self.workers - 1:
            if any(p.poll() is not None for p in self.procs):
                raise RuntimeError("a SIP worker process exited during start-up")
            if time.monotonic() > deadline:
                raise RuntimeError("the SIP worker processes did not start in time")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready_event.wait(), 0.2)
            self._ready_event.clear()
        self.engine.steer = self.steer
        self.registrar.pbx.sync_hooks.append(self.reload)
        self.registrar.throttle.shared = self.share_bans
        events.bus.taps.append(self._forward)
        self._watcher = asyncio.ensure_future(self._watch())
        log.info("SIP workers: %d processes share UDP port %d", self.workers, self.engine.port)

    def _spawn(self, index: int) -> subprocess.Popen:
        cmd = [*self._argv, "--index", str(index), "--workers", str(self.workers)]
        cmd += ["--hub-dir", str(self.run_dir), "--sip-port", str(self.engine.port)]
        return subprocess.Popen(cmd, env=self._env)  # noqa: S603 - our own executable

    async def _watch(self, every: float = 0.5) -> None:
        """A worker that dies is started again; meanwhile this process handles its aors (its
        clients' nonces get a stale answer here and they authenticate again)."""
        while True:
            await asyncio.sleep(every)
            for i, proc in enumerate(self.procs):
                if proc.poll() is None:
                    continue
                index = i + 1
                log.error("SIP worker %d exited with %s; starting it again", index, proc.returncode)
                link = self.links.pop(index, None)
                if link is not None:
                    link.close()
                self.registrar.worker_gone(index)  # its aors are served here now, its nonce-counts lost
                self.procs[i] = self._spawn(index)

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        self.engine.steer = None
        with contextlib.suppress(ValueError):
            self.registrar.pbx.sync_hooks.remove(self.reload)
        if self.registrar.throttle.shared == self.share_bans:
            self.registrar.throttle.shared = None
        with contextlib.suppress(ValueError):
            events.bus.taps.remove(self._forward)
        if self._refreshing is not None:
            self._refreshing.cancel()
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                await asyncio.to_thread(p.wait, 10)
            except subprocess.TimeoutExpired:
                p.kill()
                await asyncio.to_thread(p.wait)
        if self._server is not None:
            self._server.close()
        for link in self.links.values():
            link.close()

    def _send(self, index: int, msg: bytes) -> bool:
        link = self.links.get(index)
        # a worker that is gone loses it, as a lost datagram: the client retransmits
        return link is not None and link.send(msg)

    # ---- steering --------------------------------------------------------------------------------
    def steer(self, data: bytes, source: Source) -> bool:
        index = owner(data, self.workers)
        if index == LOCAL or index == 0 or index not in self.links:  # (a worker being restarted)
            return False
        conn = 0
        if source.transport == "TCP":
            writer = source.writer
            known = self._conn_ids.get(writer)
            if known is not None:
                conn = known
            else:
                conn = next(self._tokens)
                self._conn_ids[writer] = conn
                self._conns[conn] = writer
                if len(self._conns) > 10_000:  # forget closed connections now and then
                    for cid, w in list(self._conns.items()):
                        if w.is_closing():
                            del self._conns[cid]
                            self._conn_ids.pop(w, None)
        self._send(index, _packet(data, source, conn))
        return True  # never handled here: another process owns it (lost if that one is gone)

    def _message(self, msg: bytes, link: _Peer) -> None:
        kind = msg[:1]
        if kind == b"P":
            transport, ip, port, _, data = _unpack(msg)
            self.engine.receive(data, Source(ip, port, transport), check_rate=False)
        elif kind == b"F":  # worker -> another worker, through here (or handled here while it restarts)
            target, inner = msg[1:].split(b"\0", 1)
            if int(target) in self.links:
                self._send(int(target), inner)
            else:
                self._message(inner, link)
        elif kind == b"W":
            conn, data = msg[1:].split(b"\0", 1)
            writer = self._conns.get(int(conn))
            if writer is not None and not writer.is_closing():
                writer.write(data)
        elif kind == b"E":
            ev = orjson.loads(msg[1:])
            events.publish(ev["type"], ev["data"], ev.get("owner"))
            if ev["type"] in _REGISTRATION and not self._applied(ev):
                self._refresh.add(ev["data"].get("aor") or "")
                if self._refreshing is None or self._refreshing.done():
                    self._refreshing = asyncio.ensure_future(self._refresh_aors())
        elif kind == b"B":  # the worker answers its REGISTERs once the events before this are applied
            refreshing = self._refreshing
            if refreshing is None or refreshing.done():
                link.send(b"b" + msg[1:])
            else:
                refreshing.add_done_callback(lambda _: link.send(b"b" + msg[1:]))
        elif kind == b"A":
            token, acked = (int(x) for x in msg[1:].split(b"\0"))
            waiting = self._acks.get(token)
            if waiting is not None:
                waiting[0].discard(acked)
                if not waiting[0] and not waiting[1].done():
                    waiting[1].set_result(None)
        elif kind == b"H":
            number, node = msg[1:].split(b"\0")
            link.index = int(number)
            self.links[link.index] = link
            self.nodes.add(node.decode())
            bans = self.registrar.throttle.snapshot()
            if bans:  # a restarted worker: the bans in force
                link.send(b"K" + orjson.dumps({"token": 0, "bans": bans}))
            self._ready_event.set()
        elif kind == b"T":  # a worker's failed authentication: counted here, answered once shared
            ticket, body = msg[1:].split(b"\0", 1)
            asyncio.ensure_future(self._count_failure(link, int(ticket), *orjson.loads(body)))

    def _applied(self, ev: dict) -> bool:
        """A worker's change to bindings (the steady load of a registrar: phones re-registering, a phone
        that moved replacing its binding) applied to this process's copy from the event itself, without
        a database read: the event carries every field the views, qualify and the call engine use. The
        Call-ID and CSeq are left as they were (empty for a new binding): they only matter to the aor's
        owner, which decides its REGISTERs. A new binding's registration time is the event's arrival,
        within the second of the owner's. False, and the aor is re-read from the database, for anything
        else (another event, an aor being re-read: the re-read may be older than this event)."""
        data = ev["data"]
        kind = ev["type"]
        aor, uri = data.get("aor") or "", data.get("contact") or ""
        if not aor or not uri or aor in self._refresh or aor in self._reading:
            return False
        registrar = self.registrar
        contacts = registrar.pbx.contacts
        current = contacts.get(aor) or {}
        b = current.get(uri)
        if kind == "registration.removed":
            if b is not None:
                rest = {u: other for u, other in current.items() if u != uri}
                if rest:
                    contacts[aor] = rest
                else:
                    contacts.pop(aor, None)
        else:
            expires = data.get("expires")
            if not isinstance(expires, int) or kind not in ("registration.added", "registration.refreshed"):
                return False
            now = int(time.time())
            if b is None:
                b = bindings.Binding(aor, uri, data.get("endpoint") or "", "", 0, "", "", "UDP", "", now, now)
                contacts[aor] = {**current, uri: b}
            b.expires_at = now + expires
            b.via_address = data.get("via_address", b.via_address)
            b.transport = data.get("transport", b.transport)
            b.user_agent = data.get("user_agent", b.user_agent)
            b.path = data.get("path", b.path)
        if b is not None and kind != "registration.refreshed":  # a sweep reading meanwhile keeps this copy
            registrar.generation[aor] = registrar.generation.get(aor, 0) + 1
        registrar.pbx.view_cache.clear()
        return True

    async def _refresh_aors(self) -> None:
        while self._refresh:
            aors, self._refresh = self._refresh, set()
            self._reading = aors
            try:
                await bindings.refresh_aors(self.registrar, (a for a in aors if a))
            except Exception:  # noqa: BLE001 - the next event of the aor re-reads it
                log.exception("could not re-read bindings the SIP workers changed")
            finally:
                self._reading = set()

    # ---- events and reloads ----------------------------------------------------------------------
    def _forward(self, ev: events.Event) -> None:
        """A registration event not made by a worker (an expiry the sweeper deleted, a binding the
        API removed, another node's change) reaches the worker that owns its aor, which re-reads
        it; the aors this process owns (its own REGISTERs: the steady load) concern no worker.
        A tap on the bus (EventBus.taps): no task woken per event."""
        if ev.type not in _REGISTRATION or ev.data.get("node") in self.nodes:
            return
        index = aor_owner(ev.data.get("aor") or "", self.workers)
        if index:
            self._send(index, b"E" + orjson.dumps({"type": ev.type, "data": ev.data}))

    async def _count_failure(self, link: _Peer, token: int, source: str, aor: str) -> None:
        try:
            if self.registrar.throttle.failed(source, aor):
                await self.share_bans()
        finally:
            link.send(b"t%d" % token)

    def share_bans(self) -> asyncio.Future:
        """Give every worker the bans in force (FailureThrottle.shared, after they changed); the
        future resolves when all hold them, or after RELOAD_TIMEOUT (logged)."""
        return self._to_all(
            lambda token: b"K" + orjson.dumps({"token": token, "bans": self.registrar.throttle.snapshot()}),
            "the SIP bans",
        )

    def reload(self, kind: str, name: str | None) -> asyncio.Future:
        """Tell every worker to re-read `kind` (`name`) from the database; the future resolves
        when all have acknowledged, or after RELOAD_TIMEOUT (logged)."""
        return self._to_all(
            lambda token: b"L" + orjson.dumps({"token": token, "kind": kind, "name": name}), f"reloading {kind} {name}"
        )

    def _to_all(self, message, what: str) -> asyncio.Future:
        """message(token) to every worker; resolves when each has answered A <token>."""
        loop = asyncio.get_running_loop()
        token = next(self._tokens)
        fut = loop.create_future()
        self._acks[token] = (set(self.links), fut)
        msg = message(token)
        for index in list(self.links):
            self._send(index, msg)
        if not self.links:
            fut.set_result(None)

        def give_up() -> None:
            if not fut.done():
                log.warning("SIP workers %s did not confirm %s", sorted(self._acks[token][0]), what)
                fut.set_result(None)

        handle = loop.call_later(RELOAD_TIMEOUT, give_up)

        def settled(_: asyncio.Future) -> None:
            handle.cancel()
            self._acks.pop(token, None)

        fut.add_done_callback(settled)
        return fut


class _Relay:
    """A TCP connection of the main process, as a worker writes to it (through the hub)."""

    __slots__ = ("link", "conn")

    def __init__(self, link: WorkerLink, conn: int):
        self.link, self.conn = link, conn

    def write(self, data: bytes) -> None:
        self.link.send(b"W%d\0%s" % (self.conn, data))

    def is_closing(self) -> bool:
        return False


class WorkerLink:
    """A worker's side: receives what the main process steers here, sends its events to it, reloads."""

    def __init__(self, engine, registrar, reload, index: int, workers: int, run_dir: Path):
        self.engine, self.registrar, self.reload_fn = engine, registrar, reload
        self.index, self.workers = index, workers
        self.path = hub_path(Path(run_dir))
        self.link: _Link | None = None
        self._work: asyncio.Queue = asyncio.Queue()
        self._aors: set[str] = set()  # to re-read at the next queued (E, None)
        self._task: asyncio.Task | None = None
        self._relays: dict[int, _Relay] = {}
        self._barriers: dict[int, asyncio.Future] = {}
        self._tokens = itertools.count(1)

    async def report_failure(self, source: str, aor: str) -> None:
        """Registrar.report_failure: the main process counts it (and gives every process the bans
        it causes) before this returns; counted here if the main process does not answer."""
        token = next(self._tokens)
        fut = self._barriers[token] = asyncio.get_running_loop().create_future()
        try:
            if self.send(b"T%d\0%s" % (token, orjson.dumps([source, aor]))):
                await asyncio.wait_for(fut, RELOAD_TIMEOUT)
                return
        except TimeoutError:
            log.warning("SIP worker %d: the main process did not count a failed authentication", self.index)
        finally:
            self._barriers.pop(token, None)
        self.registrar.throttle.failed(source, aor)

    def main_knows(self) -> asyncio.Future:
        """A future that resolves once the main process has applied the events this process sent
        before (or after RELOAD_TIMEOUT, logged; at once when the main process is gone). A future
        with a timer rather than a coroutine under wait_for: one is awaited per commit group."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        token = next(self._tokens)
        if not self.send(b"B%d" % token):
            fut.set_result(None)
            return fut
        self._barriers[token] = fut

        def give_up() -> None:
            if not fut.done():
                log.warning("SIP worker %d: the main process did not confirm new bindings in time", self.index)
                fut.set_result(None)

        handle = loop.call_later(RELOAD_TIMEOUT, give_up)

        def settled(_: asyncio.Future) -> None:
            handle.cancel()
            self._barriers.pop(token, None)

        fut.add_done_callback(settled)
        return fut

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        _, self.link = await loop.create_unix_connection(lambda: _Link(self._message), self.path)
        self.engine.steer = self.steer
        events.bus._outbound = self._publish  # every event of this process goes to the main one
        self._task = asyncio.ensure_future(self._apply())
        self.send(b"H%d\0%s" % (self.index, events.NODE_ID.encode()))

    @property
    def closed(self) -> asyncio.Future:
        assert self.link is not None, "start() first"
        return self.link.closed

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self.link is not None:
            self.link.close()

    def send(self, msg: bytes) -> bool:
        return self.link is not None and self.link.send(msg)

    def _publish(self, ev) -> None:
        self.send(b"E" + orjson.dumps({"type": ev.type, "data": ev.data, "owner": ev.owner}))

    def steer(self, data: bytes, source: Source) -> bool:
        index = owner(data, self.workers)
        if index == LOCAL or index == self.index:
            return False
        packet = _packet(data, source)
        self.send(packet if index == 0 else b"F%d\0%s" % (index, packet))
        return True

    def _message(self, msg: bytes, _link: _Link) -> None:
        kind = msg[:1]
        if kind == b"P":
            transport, ip, port, conn, data = _unpack(msg)
            writer = None
            if transport == "TCP":
                writer = self._relays.get(conn)
                if writer is None:
                    if len(self._relays) > 10_000:
                        self._relays.clear()
                    writer = self._relays[conn] = _Relay(self, conn)
            self.engine.receive(data, Source(ip, port, transport, writer), check_rate=False)
        elif kind == b"K":  # the node's bans (counted by the main process)
            body = orjson.loads(msg[1:])
            self.registrar.throttle.mirror(body["bans"])
            if body["token"]:
                self.send(b"A%d\0%d" % (body["token"], self.index))
        elif kind in (b"b", b"t"):
            fut = self._barriers.get(int(msg[1:]))
            if fut is not None and not fut.done():
                fut.set_result(None)
        elif kind == b"L":
            self._work.put_nowait((kind, orjson.loads(msg[1:])))
        elif kind == b"E":  # another process changed bindings: re-read those of the aors owned here
            data = orjson.loads(msg[1:])["data"]
            aor = data.get("aor") or ""
            if aor and data.get("node") != events.NODE_ID and aor_owner(aor, self.workers) == self.index:
                if not self._aors:
                    self._work.put_nowait((kind, None))
                self._aors.add(aor)

    async def _apply(self) -> None:
        """Reloads and re-reads, one after the other in the order they came."""
        while True:
            kind, body = await self._work.get()
            try:
                if kind == b"L":
                    await self.reload_fn(body["kind"], body["name"])
                    self.send(b"A%d\0%d" % (body["token"], self.index))
                else:  # the aors gathered since this re-read was queued
                    aors, self._aors = self._aors, set()
                    await bindings.refresh_aors(self.registrar, aors)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep following
                log.exception("SIP worker %d: could not apply %r", self.index, kind)


def worker_argv() -> list[str]:
    """How the main process starts a worker: this interpreter, our CLI."""
    return [sys.executable, "-m", "switchboard.cli", "sip-worker"]
