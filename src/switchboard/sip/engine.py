"""The SIP engine's asyncio side: UDP and TCP on one port. The only code that touches sockets.

It drives the sans-I/O parts: bytes in → `message.parse` → the transaction layer
(`transaction.py`: retransmissions, timers A–K, absorbing retransmitted requests) → the
application (`handler`, e.g. the registrar) → responses out the way the request came (UDP: to the
source address, RFC 3581 symmetric response with `received`/`rport` on the top Via; TCP: the same
connection). Client requests (`request`) go through client transactions too, over UDP from the
listening socket (so answers come back to it) or over a TCP connection the engine opens and reads.

Malformed input: a request that cannot be parsed but whose request line and Via/From/To/Call-ID/
CSeq can be salvaged gets 400 Bad Request; anything else is dropped and counted (`stats`). The
engine never dies on input: a failing handler answers 500 and is logged.

Limits: inbound TCP connections are capped per source address and in total (a connection past a
cap is closed at once, before it is read); a connection that sends nothing for `tcp_idle` seconds
is closed unless `tcp_bound()` names its address (a registration is bound to it, so the phone is
reached through it); a TCP message larger than 64 KiB is answered 513 and the connection closed
(its framing is lost). `rate_limit` (requests per second per source, 0 = none) drops the excess
before parsing (sip/limits.py).

The handler answers with a Message, None, a `Deferred` (settled later, e.g. by the registrar once
a binding is committed; answered at that moment, without a task) or any awaitable (run in a task).

Non-INVITE server transactions (RFC 3261 figure 8), which are nearly all the traffic, are kept as
cheaply as the figure allows. A request the handler answers at once with a final response goes from
trying to completed in that one step (nothing else can happen in between): no transaction object is
made, and over UDP the completed state is an entry of `completed` (transaction.CompletedTable: its
key, the response bytes and the peer) that answers retransmissions until timer J; over TCP timer J
is 0 and nothing is kept. A request answered later, or provisionally, gets a ServerTransaction in
`table` to absorb retransmissions meanwhile; its final response over UDP moves it to `completed`
too (`_retire`). Expiry is lazy (when entries are added, and every second): no event-loop timer per
transaction, and nothing the garbage collector has to walk through.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from switchboard import __version__
from switchboard.sip import transaction as tx_mod
from switchboard.sip.limits import SourceRateLimit
from switchboard.sip.message import Message, ParseError, frame, parse, response_to
from switchboard.sip.transaction import (
    TERMINATED,
    CancelTimer,
    ClientTransaction,
    CompletedTable,
    Deliver,
    Send,
    ServerTransaction,
    StartTimer,
    Terminated,
    TransactionTable,
    new_branch,
    server_key,
)

log = logging.getLogger("switchboard.sip")

USER_AGENT = f"Switchboard/{__version__}"
ALLOW = "OPTIONS, REGISTER"  # what we answer today (calls arrive with the call issues)


@dataclass(frozen=True)
class Source:
    """Where a message came from, and how to answer it."""

    ip: str
    port: int
    transport: str  # "UDP" | "TCP"
    writer: asyncio.StreamWriter | None = field(default=None, compare=False, repr=False)

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"


class Deferred:
    """A response a handler gives later, without a task and without waiting for another turn of the
    event loop: the handler returns a Deferred and calls `resolve(response)` (None: no response) or
    `fail(exception)` (answered 500) once it knows; the engine sends the response right then.
    (An asyncio future works too, but its callbacks only run on the loop's next turn.)"""

    __slots__ = ("_callback", "_outcome")

    def __init__(self) -> None:
        self._callback: Callable[[Message | None, BaseException | None], None] | None = None
        self._outcome: tuple[Message | None, BaseException | None] | None = None

    @property
    def done(self) -> bool:
        return self._outcome is not None

    def resolve(self, response: Message | None) -> None:
        self._settle((response, None))

    def fail(self, exc: BaseException) -> None:
        self._settle((None, exc))

    def then(self, callback: Callable[[Message | None, BaseException | None], None]) -> None:
        """Call `callback(response, exception)` once settled (now, if it already is)."""
        if self._outcome is not None:
            callback(*self._outcome)
        else:
            self._callback = callback

    def _settle(self, outcome: tuple[Message | None, BaseException | None]) -> None:
        if self._outcome is not None:
            return
        self._outcome = outcome
        callback, self._callback = self._callback, None
        if callback is not None:
            callback(*outcome)


Handler = Callable[[Message, Source], "Message | None | Deferred | Awaitable[Message | None]"]


def _with_received(req: Message, host: str, port: int) -> None:
    """RFC 3261 §18.2.1 `received` and RFC 3581 `rport` on the top Via."""
    for i, (n, v) in enumerate(req.headers):
        if n != "Via":
            continue
        top = v.split(",")[0] if "," in v and v.count("SIP/") > 1 else v
        if top.endswith(";rport") and top.count("rport") == 1:  # the common case: one valueless rport, last
            req.headers[i] = (n, f"{top}={port};received={host}{v[len(top):]}")
            return
        params = top.split(";")
        sent_by = params[0].split()[-1] if params[0].split() else ""
        names = [p.strip().split("=")[0].lower() for p in params[1:]]
        if "rport" in names:
            params = [f"rport={port}" if p.strip().lower() == "rport" else p for p in params]
            params.append(f"received={host}")
        elif sent_by.rsplit(":", 1)[0].strip("[]") != host:
            params.append(f"received={host}")
        else:
            return
        req.headers[i] = (n, ";".join(params) + v[len(top):])
        return


def default_respond(req: Message) -> Message | None:
    """What the engine answers without an application: OPTIONS 200, others 501."""
    if req.method == "ACK":
        return None
    if req.method == "OPTIONS":
        return options_ok(req)
    return response_to(req, 501, headers=[("Server", USER_AGENT), ("Allow", ALLOW)])


def options_ok(req: Message) -> Message:
    return response_to(req, 200, headers=[("Server", USER_AGENT), ("Allow", ALLOW), ("Accept", "application/sdp"),
                                          ("Supported", "path, replaces")])


_BLANK = (b"\r", b"\n", b"\0", b" ", b"")


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, engine: SipEngine):
        self.engine = engine
        self.transport: asyncio.DatagramTransport | None = None
        self._sources: dict[tuple, Source] = {}  # peer address -> its (immutable) Source

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data: bytes, addr):
        if data[:1] in _BLANK and not data.strip(b"\r\n\0 "):  # keep-alive (RFC 5626 CRLF): no answer
            return
        source = self._sources.get(addr)
        if source is None:
            if len(self._sources) >= 10_000:
                self._sources.clear()
            source = self._sources[addr] = Source(addr[0], addr[1], "UDP")
        self.engine.receive(data, source)

    def error_received(self, exc):  # ICMP unreachable etc.: the client transaction times out
        log.debug("UDP error: %s", exc)


@dataclass(slots=True)
class _Conn:
    """An open TCP connection: where it goes, when the peer last sent a byte, who opened it."""

    source: Source
    last_rx: float
    inbound: bool


class SipEngine:
    def __init__(self, host: str, port: int, *, available: Callable[[], bool] = lambda: True,
                 handler: Handler | None = None, tcp_idle: float = 300.0, tcp_max_per_source: int = 128,
                 tcp_max: int = 4096, rate_limit: float = 0.0,
                 tcp_bound: Callable[[], set[str]] | None = None):
        self.host, self.port = host, port
        self.tcp_idle, self.tcp_max_per_source, self.tcp_max = tcp_idle, tcp_max_per_source, tcp_max
        self.tcp_bound = tcp_bound  # "ip:port" of the connections registrations are bound to
        self._limiter = SourceRateLimit(rate_limit) if rate_limit > 0 else None
        self.available = available  # is the SIP stack (res_pjsip) loaded?
        self.handler = handler
        self.running = False
        self.stats: Counter[str] = Counter()
        self.table = TransactionTable(max_size=50_000)  # live transactions
        # completed non-INVITE server transactions over UDP, until timer J: their key, response bytes and
        # peer only (see CompletedTable); a retransmitted request is answered from here
        self.completed = CompletedTable(64 * tx_mod.T1, max_size=100_000)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.base_events.Server | None = None
        self._conns: dict[asyncio.StreamWriter, _Conn] = {}
        self._inbound_per_ip: Counter[str] = Counter()
        self._reaper: asyncio.TimerHandle | None = None
        self._out_conns: dict[tuple[str, int], asyncio.StreamWriter] = {}
        self._timers: dict[int, dict[str, asyncio.TimerHandle]] = {}  # transaction id -> its pending timers
        self._peers: dict[int, Source] = {}  # transaction id -> where its messages go
        self._waiters: dict[int, asyncio.Future] = {}  # client transaction id -> final response
        self._tasks: set[asyncio.Task] = set()

    # ---- receiving -----------------------------------------------------------------------------
    def receive(self, data: bytes, source: Source) -> None:
        self.stats["received"] += 1
        if self._limiter is not None and not self._limiter.allow(source.ip, time.monotonic()):
            self.stats["rate_limited"] += 1
            return
        try:
            msg = parse(data)
        except ParseError as e:
            self._malformed(data, source, e)
            return
        if msg.method is not None:
            _with_received(msg, source.ip, source.port)
            self._on_request(msg, source)
        else:
            self._on_response(msg)

    def _malformed(self, data: bytes, source: Source, err: Exception) -> None:
        from switchboard.sip import message

        salvage = getattr(message, "salvage", None)
        msg = salvage(data) if salvage else None
        if msg is not None and msg.is_request and msg.method != "ACK":
            self.stats["bad_request"] += 1
            _with_received(msg, source.ip, source.port)
            status = getattr(err, "status", 400)  # 505 wrong SIP version, 513 too large, else 400
            reason = f"Bad Request ({err})"[:120] if status == 400 else None
            self._send(response_to(msg, status, reason, headers=[("Server", USER_AGENT)]), source)
        else:
            self.stats["dropped"] += 1
            log.debug("dropping unparsable SIP from %s: %s", source.address, err)

    def _on_request(self, msg: Message, source: Source) -> None:
        try:
            key = server_key(msg)
        except (ParseError, ValueError) as e:
            key, bad = None, e
        if key is not None:
            existing = self.table.get_server(key)
            if existing is not None:
                self.stats["retransmissions"] += 1
                self._run(existing, existing.on_request(msg))
                return
            if key in self.completed:  # figure 8, completed: answer with the final response again
                payload = self.completed.get(key, time.monotonic())
                if payload is not None:
                    self.stats["retransmissions"] += 1
                    self._resend(key, payload)
                    return
        if msg.method == "ACK":  # for a 2xx (no dialogs yet) or a transaction already gone
            return
        if msg.method == "CANCEL":
            target = self.table.cancel_target(msg)
            status = 200 if target is not None else 481
            self._send(response_to(msg, status, headers=[("Server", USER_AGENT)]), source)
            return
        if key is None:
            self._malformed(msg.to_bytes(), source, bad)
            return
        if msg.method != "INVITE":
            self._serve(msg, key, source)
            return
        try:
            tx = ServerTransaction(msg, reliable=source.transport != "UDP", key=key)
        except (ValueError, ParseError) as e:
            self._malformed(msg.to_bytes(), source, e)
            return
        self._peers[id(tx)] = source
        for dropped in self.table.add(tx):
            self._forget(dropped)
        self._run(tx, tx.start())

    def _serve(self, req: Message, key, source: Source) -> None:
        """A new non-INVITE request (figure 8): its transaction delivers it to the TU at once. When the
        TU answers at once with a final response, trying and completed follow each other in this one
        step, with nothing else able to happen in between: the response is sent and, over UDP, the
        completed state is recorded in `completed` (see _retire); over TCP timer J is 0, so the
        transaction ends there. Only a request answered later (or provisionally) gets a
        ServerTransaction object, in trying, to absorb retransmissions meanwhile."""
        out = self._call_handler(req, source)
        if isinstance(out, Message) and out.status is not None and out.status >= 200:
            data = self._send(out, source)
            if data is not None and source.transport == "UDP":
                self.completed.add(key, (data, source.ip, source.port), time.monotonic())
            return
        tx = ServerTransaction(req, reliable=source.transport != "UDP", key=key)
        tx.start()  # trying; its one action, Deliver(req), is what just happened
        self._peers[id(tx)] = source
        for dropped in self.table.add(tx):
            self._forget(dropped)
        self._follow(tx, req, source, out)

    def _on_response(self, msg: Message) -> None:
        tx = self.table.match_response(msg)
        if tx is None:
            self.stats["stray_responses"] += 1
            return
        self._run(tx, tx.on_response(msg))

    # ---- the application --------------------------------------------------------------------------
    def _dispatch(self, tx: ServerTransaction, req: Message) -> None:
        source = self._peers.get(id(tx))
        if source is None:
            return
        self._follow(tx, req, source, self._call_handler(req, source))

    def _call_handler(self, req: Message, source: Source):
        """What the TU answers: a Message, None, a Deferred or an awaitable (503 while the SIP stack
        is unloaded; 500 when the handler fails)."""
        if not self.available():
            return response_to(req, 503, headers=[("Server", USER_AGENT), ("Retry-After", "60")])
        try:
            return self.handler(req, source) if self.handler else default_respond(req)
        except Exception:  # never die on input
            log.exception("SIP handler failed for %s from %s", req.method, source.address)
            return response_to(req, 500, headers=[("Server", USER_AGENT)])

    def _follow(self, tx: ServerTransaction, req: Message, source: Source, out) -> None:
        """Send the TU's answer through `tx`, now or once it is ready."""
        if out is None:
            return
        if isinstance(out, Message):
            self._answer(tx, out)
        elif isinstance(out, Deferred):  # answered when it settles: a callback, no task per request
            out.then(functools.partial(self._settled, tx, req, source))
        elif inspect.isawaitable(out):
            task = asyncio.ensure_future(self._finish(tx, req, source, out))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            raise TypeError(f"the SIP handler returned {type(out).__name__}")

    def _settled(self, tx: ServerTransaction, req: Message, source: Source, out: Message | None,
                 exc: BaseException | None) -> None:
        try:
            if exc is not None:
                log.error("SIP handler failed for %s from %s", req.method, source.address, exc_info=exc)
                out = response_to(req, 500, headers=[("Server", USER_AGENT)])
            if out is not None and tx in self.table:
                self._answer(tx, out)
        except Exception:  # never let a handler's caller (e.g. a registrar's commit loop) see our failure
            log.exception("answering %s from %s failed", req.method, source.address)

    async def _finish(self, tx: ServerTransaction, req: Message, source: Source, pending) -> None:
        try:
            out = await pending
        except Exception:
            log.exception("SIP handler failed for %s from %s", req.method, source.address)
            out = response_to(req, 500, headers=[("Server", USER_AGENT)])
        if out is not None and tx in self.table:
            self._answer(tx, out)

    def _answer(self, tx: ServerTransaction, resp: Message) -> None:
        try:
            self._run(tx, tx.respond(resp))
        except tx_mod.TransactionError:
            log.debug("late response for a finished transaction %r", tx)

    # ---- running transaction actions --------------------------------------------------------------
    def _run(self, tx, actions) -> None:
        sent = None  # the bytes of this batch's last Send
        for action in actions:
            kind = action.__class__
            if kind is Send:
                sent = self._send(action.message, self._peers.get(id(tx)), tx)
            elif kind is StartTimer:
                if tx.state == TERMINATED:  # the Send before it failed
                    continue
                if action.name == "J" and action.delay == self.completed.lifetime and sent is not None:
                    self._retire(tx, sent)
                    continue
                timers = self._timers.get(id(tx))
                if timers is None:
                    timers = self._timers[id(tx)] = {}
                old = timers.get(action.name)
                if old is not None:
                    old.cancel()
                loop = self._loop or asyncio.get_running_loop()
                timers[action.name] = loop.call_later(action.delay, self._fire, tx, action.name)
            elif kind is CancelTimer:
                timers = self._timers.get(id(tx))
                handle = timers.pop(action.name, None) if timers else None
                if handle is not None:
                    handle.cancel()
            elif kind is Deliver:
                if isinstance(tx, ServerTransaction):
                    self._dispatch(tx, action.message)
                elif action.message.status is not None and action.message.status >= 200:
                    fut = self._waiters.get(id(tx))
                    if fut is not None and not fut.done():
                        fut.set_result(action.message)
            elif kind is Terminated:
                self.table.remove(tx)
                self._forget(tx)

    def _retire(self, tx: ServerTransaction, data: bytes) -> None:
        """Timer J of a non-INVITE server transaction over UDP: keep only what its completed state
        does (resend `data`, the final response, to its peer) in `completed` until J fires."""
        peer = self._peers.get(id(tx))
        self.table.remove(tx)
        self._forget(tx)
        if peer is not None:
            self.completed.add(tx.key, (data, peer.ip, peer.port), time.monotonic())

    def _resend(self, key, payload) -> None:
        data, ip, port = payload
        try:
            if self._udp is not None:
                self._udp.sendto(data, (ip, port))
                self.stats["sent"] += 1
        except OSError as e:  # a transport error ends the transaction
            log.debug("send to %s:%s failed: %s", ip, port, e)
            self.completed.discard(key)

    def _expire(self) -> None:
        """Every second: drop completed transactions whose timer J fired (also when nothing arrives)."""
        self.completed.expire(time.monotonic())
        if self.running and self._loop is not None:
            self._expiry = self._loop.call_later(1.0, self._expire)

    def _fire(self, tx, name: str) -> None:
        timers = self._timers.get(id(tx))
        if timers is not None:
            timers.pop(name, None)
        self._run(tx, tx.on_timer(name))

    def _forget(self, tx) -> None:
        timers = self._timers.pop(id(tx), None)
        if timers:
            for handle in timers.values():
                handle.cancel()
        self._peers.pop(id(tx), None)
        fut = self._waiters.pop(id(tx), None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _send(self, msg: Message, dest: Source | None, tx=None) -> bytes | None:
        """Serialise and transmit; the bytes sent, or None (no destination, or the transport failed)."""
        if dest is None:
            return None
        data = msg.to_bytes()
        try:
            if dest.transport == "UDP":
                if self._udp is None:
                    return None
                self._udp.sendto(data, (dest.ip, dest.port))
            elif dest.writer is not None and not dest.writer.is_closing():
                dest.writer.write(data)
            else:
                raise ConnectionError("connection closed")
            self.stats["sent"] += 1
            return data
        except (OSError, ConnectionError) as e:
            log.debug("send to %s failed: %s", dest.address, e)
            if tx is not None:
                self._run(tx, tx.on_transport_error())
            return None

    # ---- client requests ----------------------------------------------------------------------------
    def local_host_for(self, dest_ip: str) -> str:
        """The address peers reach us at: the bound address, or (bound to 0.0.0.0) the one the
        kernel routes toward dest_ip."""
        if self.host not in ("0.0.0.0", "", "::"):
            return self.host
        with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((dest_ip, 9))
            return s.getsockname()[0]
        return "127.0.0.1"

    def via(self, dest_ip: str, transport: str = "UDP") -> str:
        return f"SIP/2.0/{transport} {self.local_host_for(dest_ip)}:{self.port};branch={new_branch()};rport"

    async def request(self, msg: Message, host: str, port: int, *, transport: str = "UDP",
                      timeout: float | None = None, t1: float = tx_mod.T1) -> Message | None:
        """Send a request in a client transaction; return the final response, or None on timeout
        or transport failure. A top Via with a fresh branch is added here."""
        transport = transport.upper()
        ip = await self._resolve(host)
        if ip is None:
            return None
        msg.headers.insert(0, ("Via", self.via(ip, transport)))
        if transport == "TCP":
            writer = await self._connect(ip, port)
            if writer is None:
                return None
            dest = Source(ip, port, "TCP", writer)
        else:
            dest = Source(ip, port, "UDP")
        tx = ClientTransaction(msg, reliable=transport != "UDP", t1=t1)
        fut = asyncio.get_running_loop().create_future()
        self._waiters[id(tx)] = fut
        self._peers[id(tx)] = dest
        for dropped in self.table.add(tx):
            self._forget(dropped)
        self._run(tx, tx.start())
        try:
            return await asyncio.wait_for(fut, timeout) if timeout else await fut
        except TimeoutError:
            return None
        finally:
            if tx in self.table:
                self.table.remove(tx)
                self._forget(tx)

    async def _resolve(self, host: str) -> str | None:
        try:
            socket.inet_pton(socket.AF_INET, host)
            return host
        except OSError:
            pass
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None, family=socket.AF_INET,
                                                                 type=socket.SOCK_DGRAM)
        except OSError:
            return None
        return infos[0][4][0] if infos else None

    async def _connect(self, ip: str, port: int) -> asyncio.StreamWriter | None:
        writer = self._out_conns.get((ip, port))
        if writer is not None and not writer.is_closing():
            return writer
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), 5)
        except (OSError, TimeoutError):
            return None
        self._out_conns[(ip, port)] = writer
        task = asyncio.ensure_future(self._read_stream(reader, writer, Source(ip, port, "TCP", writer)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return writer

    def send_raw(self, data: bytes, ip: str, port: int) -> None:
        """One datagram from the listening socket, outside any transaction (probes)."""
        if self._udp is not None:
            self._udp.sendto(data, (ip, port))

    # ---- TCP ---------------------------------------------------------------------------------------
    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        peer = writer.get_extra_info("peername")
        ip = peer[0]
        inbound = self._inbound_per_ip
        if inbound[ip] >= self.tcp_max_per_source or inbound.total() >= self.tcp_max:
            self.stats["tcp_refused"] += 1
            log.debug("TCP connection from %s:%s refused: connection limit", ip, peer[1])
            writer.transport.abort()  # the descriptor goes now, not after a close handshake
            return
        inbound[ip] += 1
        try:
            await self._read_stream(reader, writer, Source(ip, peer[1], "TCP", writer), inbound=True)
        finally:
            inbound[ip] -= 1
            if inbound[ip] <= 0:
                del inbound[ip]

    async def _read_stream(self, reader, writer, source: Source, *, inbound: bool = False) -> None:
        conn = self._conns[writer] = _Conn(source, time.monotonic(), inbound)
        buffer = b""
        try:
            while chunk := await reader.read(65536):
                conn.last_rx = time.monotonic()
                buffer += chunk
                while True:
                    try:
                        framed = frame(buffer)
                    except ParseError as e:  # framing lost: answer what can be answered (513, 400), then close
                        self._malformed(buffer, source, e)
                        await self._lingering_close(reader, writer)
                        return
                    if framed is None:
                        break
                    data, buffer = framed
                    if data.strip(b"\r\n"):
                        self.receive(data, source)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._conns.pop(writer, None)
            for key, w in list(self._out_conns.items()):
                if w is writer:
                    del self._out_conns[key]
            writer.close()

    @staticmethod
    async def _lingering_close(reader, writer, seconds: float = 2.0, limit: int = 1 << 20) -> None:
        """Half-close after a last answer and discard what the peer still sends (for a while, up to
        `limit` bytes): closing with unread input would reset the connection, and the peer could
        lose the answer (a 513 for a message it is still sending)."""
        with contextlib.suppress(OSError, RuntimeError, ConnectionError):
            if writer.can_write_eof():
                writer.write_eof()
        deadline = time.monotonic() + seconds
        discarded = 0
        with contextlib.suppress(OSError, ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            while discarded < limit and (left := deadline - time.monotonic()) > 0:
                chunk = await asyncio.wait_for(reader.read(65536), left)
                if not chunk:
                    break
                discarded += len(chunk)

    def _reap_idle(self) -> None:
        """Close the inbound connections idle for `tcp_idle` seconds, except those registrations are
        bound to (the phone is reached through them); runs every few seconds."""
        now = time.monotonic()
        idle = [(w, c) for w, c in self._conns.items() if c.inbound and now - c.last_rx >= self.tcp_idle]
        if idle:
            bound = self.tcp_bound() if self.tcp_bound is not None else set()
            for writer, conn in idle:
                if conn.source.address in bound:
                    continue
                self.stats["tcp_idle_closed"] += 1
                log.debug("closing idle TCP connection from %s", conn.source.address)
                writer.transport.abort()
        if self.running and self._loop is not None:
            self._reaper = self._loop.call_later(min(5.0, max(0.05, self.tcp_idle / 4)), self._reap_idle)

    @property
    def tcp_connections(self) -> int:
        return len(self._conns)

    # ---- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for attempt in range(20):  # port 0: UDP picks a free port, TCP must get the same number
            self._udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), local_addr=(self.host, self.port))
            port = self._udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, self.host, port)
            except OSError:
                self._udp.close()
                if self.port != 0 or attempt == 19:
                    raise
                continue
            self.port = port  # port 0 -> the one the OS gave
            break
        self.started_at = time.time()
        self.running = True
        self._loop = loop
        self._expiry = loop.call_later(1.0, self._expire)
        self._reap_idle()

    async def stop(self) -> None:
        self.running = False
        for task in list(self._tasks):
            task.cancel()
        for timers in self._timers.values():
            for handle in timers.values():
                handle.cancel()
        self._timers.clear()
        if self._expiry is not None:
            self._expiry.cancel()
        if self._reaper is not None:
            self._reaper.cancel()
        self.completed.clear()
        if self._tcp is not None:
            self._tcp.close()
            for w in list(self._conns):
                w.close()
            await self._tcp.wait_closed()
        if self._udp is not None:
            self._udp.close()
