"""The SIP engine's asyncio side: UDP and TCP on one port. The only code that touches sockets.

It is a thin driver of the sans-I/O `endpoint.Endpoint` (see its docstring for the routing rules:
transactions, CANCEL, stray ACKs, malformed input, Via received/rport, timer J): bytes from a
socket go in with the clock (`time.monotonic()`), and the actions that come out are carried out
here — `Transmit` on the UDP socket or the TCP connection, `SetTimer`/`ClearTimer` with
`loop.call_later`, `DeliverRequest` by calling the application (`handler`, e.g. the registrar), and
`DeliverResponse`/`TransactionEnded` by settling whoever waits in `request`. Responses go out the
way the request came (UDP: to the source address, RFC 3581 symmetric response; TCP: the same
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
cheaply as the figure allows (the endpoint's fast path): a request the handler answers at once with
a final response makes no transaction object; over UDP its completed state is an entry of
`completed` until timer J. The engine answers synchronously whenever the handler does, so the
fast path applies; a Deferred or an awaitable makes the request `pending` (a transaction in
`table`). Expiry of `completed` is lazy (when entries are added, and every second).

An OPTIONS outside a dialog over UDP (keep-alives, monitoring, a proxy's qualify: most of the traffic that is
not REGISTER) is answered statelessly when the handler says it answers every such OPTIONS alike (its
`options_headers`, as `SipApp`): RFC 3261 §8.2.7, as Kamailio's `sl_send_reply`. It makes no transaction and
keeps no completed state; a retransmission is answered again with the same bytes, from whichever SIP worker
process it reaches (`Endpoint.answer_options`). Measured in-process (the datagram handed to the protocol, the
answer to a socket stub): 10.3 us per OPTIONS through a Message and `response_to`, 7.5 us from
`message.checked`'s values; the full stateful path took 15.5-17.5. The server's CPU per OPTIONS (2 SIP workers,
kernel included) went from 24-36 us to 16-23 us.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import inspect
import logging
import re
import socket
import struct
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from switchboard import __version__
from switchboard.sip import transaction as tx_mod
from switchboard.sip.dialog import UasInvite
from switchboard.sip.endpoint import (
    Cancelled,
    ClearTimer,
    DeliverRequest,
    DeliverResponse,
    Endpoint,
    SetTimer,
    Source,
    TransactionEnded,
    Transmit,
)
from switchboard.sip.headers import with_received as _with_received  # noqa: F401  (kept importable here)
from switchboard.sip.limits import SourceRateLimit
from switchboard.sip.message import Message, ParseError, frame, header_lines, response_to
from switchboard.sip.transaction import TERMINATED, CompletedTable, TransactionTable, new_branch

log = logging.getLogger("switchboard.sip")

USER_AGENT = f"Switchboard/{__version__}"
ALLOW = "OPTIONS, REGISTER"  # what we answer without the call engine
CALL_ALLOW = "OPTIONS, REGISTER, INVITE, ACK, CANCEL, BYE, INFO, UPDATE, PRACK, REFER, NOTIFY"
# requests the call engine (`call_handler`) takes when one is attached (plus every in-dialog request)
CALL_METHODS = frozenset({"INVITE", "BYE", "INFO", "UPDATE", "PRACK", "REFER", "NOTIFY"})

__all__ = [
    "ALLOW",
    "USER_AGENT",
    "Deferred",
    "Handler",
    "SipEngine",
    "Source",
    "default_respond",
    "options_headers",
    "options_ok",
]


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


def default_respond(req: Message) -> Message | None:
    """What the engine answers without an application: OPTIONS 200, others 501."""
    if req.method == "ACK":
        return None
    if req.method == "OPTIONS":
        return options_ok(req)
    return response_to(req, 501, headers=[("Server", USER_AGENT), ("Allow", ALLOW)])


def options_headers(allow: str = ALLOW) -> list[tuple[str, str]]:
    """What a 200 to an OPTIONS says after the echoed headers: what we take and support."""
    return [("Server", USER_AGENT), ("Allow", allow), ("Accept", "application/sdp"), ("Supported", "path, replaces")]


def options_ok(req: Message, allow: str = ALLOW) -> Message:
    return response_to(req, 200, headers=options_headers(allow))


_BLANK = (b"\r", b"\n", b"\0", b" ", b"")
# an Authorization header line (the name is case-insensitive; it has no compact form)
_AUTHORIZATION = re.compile(rb"\nauthorization[ \t]*:", re.IGNORECASE)


# classic BPF for SO_ATTACH_REUSEPORT_CBPF: A = a random u32 (SKF_AD_RANDOM); A %= N; return A,
# the index of the socket in the port's reuseport group that gets the datagram
_SO_ATTACH_REUSEPORT_CBPF = 51
_BPF_LD_W_ABS, _BPF_ALU_MOD_K, _BPF_RET_A = 0x20, 0x94, 0x16
_SKF_AD_RANDOM = (-0x1000 + 56) & 0xFFFFFFFF


def spread_randomly(sock: socket.socket, processes: int) -> bool:
    """Spread the datagrams of a SO_REUSEPORT UDP port over its `processes` sockets at random,
    each datagram on its own, instead of by the kernel's hash of the peer's address and port.

    By the hash, all the traffic of one peer (an SBC, a proxy, a load generator: one address and
    port) lands in one process, which then steers most of it elsewhere (sip/steer.py) while the
    others idle: measured, that one process saturated at ~21,000 OPTIONS/s with the other at a few
    %. Spread, every process answers its share of out-of-dialog OPTIONS and steers the rest as
    before (steering never depended on where a datagram lands). An index past the group's size
    (a worker being restarted) falls back to the hash. False where the kernel refuses."""
    program = b"".join(
        struct.pack("HBBI", code, 0, 0, k)
        for code, k in ((_BPF_LD_W_ABS, _SKF_AD_RANDOM), (_BPF_ALU_MOD_K, processes), (_BPF_RET_A, 0))
    )
    try:
        _attach_cbpf(sock, ctypes.create_string_buffer(program, len(program)))
    except OSError as e:
        log.warning("SIP UDP: datagrams stay spread by address hash (SO_ATTACH_REUSEPORT_CBPF: %s)", e)
        return False
    return True


def _attach_cbpf(sock: socket.socket, buf: ctypes.Array) -> None:
    """SO_ATTACH_REUSEPORT_CBPF with the program in `buf`: the kernel copies it during the call. The
    buffer is an argument so that it lives until the call returns (compiled by mypyc, a local would
    be released after its last use, addressof(), and the kernel would read freed memory)."""
    fprog = struct.pack("HL", len(buf) // 8, ctypes.addressof(buf))  # struct sock_fprog {u16 len; filter *}
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_REUSEPORT_CBPF, fprog)


UDP_RCVBUF = 4 << 20  # bytes asked for the SIP UDP socket's receive buffer


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, engine: SipEngine):
        self.engine = engine
        self.transport: asyncio.DatagramTransport | None = None
        self._sources: dict[tuple, Source] = {}  # peer address -> its (immutable) Source

    def connection_made(self, transport):
        self.transport = transport
        # a receive buffer for bursts: the kernel's default (~200 KB, ~150 small datagrams) overflows
        # during a 50-100 ms pause of the loop at a few thousand requests/s, and each drop costs the
        # peer a 500 ms retransmission; the kernel caps the value at net.core.rmem_max
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RCVBUF)
            engine = self.engine
            if engine.spread > 1 and spread_randomly(sock, engine.spread) and engine._limiter is not None:
                # each process now sees 1/N of every source's datagrams: its share of the limit
                engine._limiter = SourceRateLimit(engine._limiter.rate / engine.spread)

    def datagram_received(self, data: bytes, addr):
        if data[:1] in _BLANK and not data.strip(b"\r\n\0 "):  # keep-alive (RFC 5626 CRLF): no answer
            return
        source = self._sources.get(addr)
        if source is None:
            if len(self._sources) >= 10_000:
                self._sources.clear()
            source = self._sources[addr] = Source(addr[0], addr[1], "UDP")
        engine = self.engine
        limiter = engine._limiter
        if limiter is not None and not limiter.allow(source.ip, engine.clock()):
            engine.stats["rate_limited"] += 1  # (with SIP workers: where it arrives, at this process's share)
            return
        if data[:8] == b"OPTIONS " and engine.stateless_options is not None and engine.answer_options(data, source):
            return  # outside a dialog: answered here, statelessly, whichever SIP worker process it reached
        if data[:9] == b"REGISTER " and engine.stateless_challenge is not None and engine.challenge(data, source):
            return  # without credentials: challenged here, statelessly, whichever SIP worker process it reached
        steer = engine.steer
        if steer is not None and steer(data, source):  # SIP workers (engine/workers.py): another process's
            return
        engine.receive(data, source, check_rate=False)

    def error_received(self, exc):  # ICMP unreachable etc.: the client transaction times out
        log.debug("UDP error: %s", exc)


@dataclass(slots=True)
class _Conn:
    """An open TCP connection: where it goes, when the peer last sent a byte, who opened it."""

    source: Source
    last_rx: float
    inbound: bool


class SipEngine:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        available: Callable[[], bool] = lambda: True,
        handler: Handler | None = None,
        tcp_idle: float = 300.0,
        tcp_max_per_source: int = 128,
        tcp_max: int = 4096,
        rate_limit: float = 0.0,
        tcp_bound: Callable[[], set[str]] | None = None,
        dialogs: bool = False,
        reuse_port: bool = False,
        spread: int = 0,
        tcp: bool = True,
    ):
        self.host, self.port = host, port
        self.clock: Callable[[], float] = time.monotonic  # the transactions' clock (a test may set its own)
        self.tcp_idle, self.tcp_max_per_source, self.tcp_max = tcp_idle, tcp_max_per_source, tcp_max
        self.tcp_bound = tcp_bound  # "ip:port" of the connections registrations are bound to
        self._limiter = SourceRateLimit(rate_limit) if rate_limit > 0 else None
        self.available = available  # is the SIP stack (res_pjsip) loaded?
        self.handler = handler
        # a handler that answers every OPTIONS outside a dialog with 200 and the same headers (SipApp: its
        # `options_headers`) lets the engine answer them itself, statelessly (Endpoint.answer_options): no
        # handler call, no transaction; None: every OPTIONS goes through the handler
        self.stateless_options: list[tuple[str, str]] | None = getattr(handler, "options_headers", None)
        self._options_tail = b""  # those headers serialised, with Content-Length: 0
        if self.stateless_options is not None:
            self._options_tail = f"{header_lines(self.stateless_options)}Content-Length: 0\r\n\r\n".encode()
        # a handler that can challenge a request without keeping anything (SipApp: the registrar's
        # `stateless_challenge(request, source, to_tag)`, a 401 Message or None) lets the engine challenge
        # a REGISTER without credentials over UDP statelessly (`challenge`): no transaction, no timer J
        # entry, and with SIP workers no trip to the aor's owner
        self.stateless_challenge: Callable[[Message, Source, str], Message | None] | None = getattr(
            handler, "stateless_challenge", None
        )
        # the same challenge's headers alone (SipApp: the registrar's `challenge_headers(to, source)`: what
        # follows the echoed Via, From, To, Call-ID and CSeq in that 401, or None where `stateless_challenge`
        # declines) let the engine write the 401 to a plain request from its header values, without a Message
        # (Endpoint.stateless_head); any other request is challenged through `stateless_challenge`
        self.challenge_headers: Callable[[str, Source], list[tuple[str, str]] | None] | None = getattr(
            handler, "challenge_headers", None
        )
        self.running = False
        # SIP workers (engine/workers.py): every process binds the UDP port with SO_REUSEPORT; a worker
        # other than the main process has no TCP listener; `steer(data, source)` takes a datagram
        # that belongs to another process (True) before this one handles it
        self.reuse_port, self.tcp = reuse_port, tcp
        # how many processes share the port: datagrams are spread over them at random (below)
        self.spread = spread
        self.steer: Callable[[bytes, Source], bool] | None = None
        # the sans-I/O core: transactions, matching, CANCEL, malformed input, Via rewrite, timer J
        self.endpoint = Endpoint(server=USER_AGENT, max_transactions=50_000, max_completed=100_000)
        self.stats: Counter[str] = self.endpoint.stats
        if dialogs:  # the dialog layer (sip/dialog.py): 481/500 for in-dialog requests, ACKs of 2xx
            from switchboard.sip.dialog import DialogTable

            self.endpoint.dialogs = DialogTable()
        # the call engine: takes INVITEs and in-dialog requests (the DeliverRequest itself, to answer
        # through `provisional` / `answer_invite` / `respond`), hears CANCELs, 2xx retransmissions
        # that match no transaction, and UAS 2xx that were never ACKed
        self.call_handler: Callable[[DeliverRequest], object] | None = None
        self.on_cancelled: Callable[[object], None] | None = None
        self.on_stray_response: Callable[[Message], None] | None = None
        self.on_unacked: Callable[[object], None] | None = None
        self._listeners: dict[int, Callable[[Message | None], None]] = {}  # client tx id -> every response
        self._ep_receive = self.endpoint.receive  # bound once: the per-message path calls these
        self._respond_at_once = self.endpoint.respond_at_once
        self._loop: asyncio.AbstractEventLoop | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.base_events.Server | None = None
        self._conns: dict[asyncio.StreamWriter, _Conn] = {}
        self._inbound_per_ip: Counter[str] = Counter()
        self._reaper: asyncio.TimerHandle | None = None
        self._out_conns: dict[tuple[str, int], asyncio.StreamWriter] = {}
        self._timers: dict[int, dict[str, asyncio.TimerHandle]] = {}  # transaction id -> its pending timers
        self._waiters: dict[int, asyncio.Future] = {}  # client transaction id -> final response
        self._tasks: set[asyncio.Task] = set()

    @property
    def table(self) -> TransactionTable:
        """Live transactions (the endpoint's)."""
        return self.endpoint.table

    @property
    def completed(self) -> CompletedTable:
        """Completed non-INVITE server transactions over UDP, until timer J (the endpoint's)."""
        return self.endpoint.completed

    # ---- receiving -----------------------------------------------------------------------------
    def receive(self, data: bytes, source: Source, *, check_rate: bool = True) -> None:
        self.stats["received"] += 1
        now = self.clock()
        if check_rate and self._limiter is not None and not self._limiter.allow(source.ip, now):
            self.stats["rate_limited"] += 1
            return
        actions = self._ep_receive(data, source, now)
        if len(actions) == 1:
            incoming = actions[0]
            if incoming.__class__ is DeliverRequest:  # the common case, one new request: _deliver written out
                if self.call_handler is not None and (
                    incoming.dialog is not None or incoming.message.method in CALL_METHODS
                ):
                    self._deliver(incoming, now)
                    return
                out = self._call_handler(incoming.message, source)
                if out.__class__ is Message:
                    sent = self._respond_at_once(incoming, out, now)  # figure 8 in one step
                    if sent is not None:
                        self._send(sent, source, incoming.key)
                        return
                self._follow(incoming, out, now)
                return
        if actions:
            self._execute(actions, now)

    def answer_options(self, data: bytes, source: Source) -> bool:
        """Answer an OPTIONS outside a dialog statelessly (RFC 3261 §8.2.7, `Endpoint.answer_options`), as the
        handler would (its `options_headers`): no handler call, no transaction, nothing kept for timer J; a
        retransmission gets the same bytes again. False when it is not such an OPTIONS (malformed, in a dialog),
        when the handler has no `options_headers`, or while the SIP stack is unloaded (503): `receive` it."""
        headers = self.stateless_options
        if headers is None or not self.available():
            return False
        reply = self.endpoint.answer_options(data, source, self._options_tail)
        if reply is None:
            return False
        self.stats["received"] += 1
        self._send(reply, source, None)
        return True

    def challenge(self, data: bytes, source: Source) -> bool:
        """Answer a request without credentials with the handler's challenge, statelessly (RFC 3261 §8.2.7
        names challenges as what a stateless UAS typically sends): no transaction, nothing kept for timer
        J, as Kamailio's `www_challenge`. A retransmission is challenged again, with a fresh nonce (each
        nonce is good) and the same To tag (`Endpoint.stateless_request`). False, nothing sent, when the
        request carries an Authorization header (looked for in the bytes first, so that a REGISTER with
        credentials is not parsed twice), is malformed, while the SIP stack is unloaded, or when the handler
        declines (`stateless_challenge` gives None, or raises: logged): `receive` it.

        A plain request (one Via, each header once, no body, no To tag: what phones and sipp send) is answered
        from the handler's `challenge_headers` and the request's header values alone (Endpoint.stateless_head),
        the same bytes without a Message, its Via rewrite, `response_to` or `to_bytes` (~15 % of a stateless
        challenge's CPU in a profile of 2 SIP workers at 10,000 REGISTERs/s)."""
        hook = self.stateless_challenge
        if hook is None or _AUTHORIZATION.search(data) is not None or not self.available():
            return False
        headers = self.challenge_headers
        plain = None if headers is None else self.endpoint.stateless_head(data, source)
        if headers is not None and plain is not None:
            try:
                extra = headers(plain[0]["To"], source)
            except Exception:  # noqa: BLE001 - the usual path answers it (a 500 there, if it fails again)
                log.exception("stateless challenge failed; the request goes the usual way")
                return False
            if extra is None:
                return False
            head = f"SIP/2.0 401 Unauthorized\r\n{plain[1]}{header_lines(extra)}Content-Length: 0\r\n\r\n"
            self._stateless_sent(head.encode(), source)
            return True
        request = self.endpoint.stateless_request(data, source)
        if request is None:
            return False
        try:
            reply = hook(request[0], source, request[1])
        except Exception:  # noqa: BLE001 - the usual path answers it (a 500 there, if it fails again)
            log.exception("stateless challenge failed; the request goes the usual way")
            return False
        if reply is None:
            return False
        self._stateless_sent(reply.to_bytes(), source)
        return True

    def _stateless_sent(self, data: bytes, source: Source) -> None:
        stats = self.stats
        stats["received"] += 1
        stats["stateless"] += 1
        self._send(data, source, None)

    def _malformed(self, data: bytes, source: Source, err: Exception) -> None:
        self._execute(self.endpoint.malformed(data, source, err), self.clock())

    # ---- carrying out the endpoint's actions ------------------------------------------------------
    def _execute(self, actions: list, now: float) -> None:
        for action in actions:
            kind = action.__class__
            if kind is Transmit:
                self._transmit(action)
            elif kind is DeliverRequest:
                self._deliver(action, now)
            elif kind is SetTimer:
                tx = action.tx
                if getattr(tx, "state", None) == TERMINATED:  # the Transmit before it failed
                    continue
                timers = self._timers.get(id(tx))
                if timers is None:
                    timers = self._timers[id(tx)] = {}
                old = timers.get(action.name)
                if old is not None:
                    old.cancel()
                loop = self._loop or asyncio.get_running_loop()
                timers[action.name] = loop.call_later(action.delay, self._fire, tx, action.name)
            elif kind is ClearTimer:
                timers = self._timers.get(id(action.tx))
                handle = timers.pop(action.name, None) if timers else None
                if handle is not None:
                    handle.cancel()
            elif kind is DeliverResponse:
                listener = self._listeners.get(id(action.tx)) if action.tx is not None else None
                if listener is not None:
                    listener(action.message)
                    continue
                if action.tx is None:  # a 2xx retransmission to an INVITE whose transaction ended
                    if self.on_stray_response is not None:
                        self.on_stray_response(action.message)
                    continue
                status = action.message.status
                if status is not None and status >= 200:
                    fut = self._waiters.get(id(action.tx))
                    if fut is not None and not fut.done():
                        fut.set_result(action.message)
            elif kind is TransactionEnded:
                listener = self._listeners.pop(id(action.tx), None)
                if listener is not None and action.reason != "completed":
                    listener(None)  # timed out / transport error without a final response
                if action.reason == "timeout" and self.on_unacked is not None and isinstance(action.tx, UasInvite):
                    self.on_unacked(action.tx)  # a UasInvite whose 2xx was never ACKed
                self._forget(action.tx)
            elif kind is Cancelled:
                log.debug("INVITE cancelled: %s", action.request.get("Call-ID"))
                if self.on_cancelled is not None:
                    self.on_cancelled(action.tx)

    def _transmit(self, action: Transmit) -> bool:
        return self._send(action.data, action.dest, action.tx)

    def _send(self, data: bytes, dest: Source, tx) -> bool:
        try:
            if dest.transport == "UDP":
                if self._udp is None:
                    return False
                self._udp.sendto(data, (dest.ip, dest.port))
            else:
                writer: Any = dest.writer  # a StreamWriter, or a worker's relay of one (engine/workers.py)
                if writer is None or writer.is_closing():
                    raise ConnectionError("connection closed")
                writer.write(data)
            self.stats["sent"] += 1
            return True
        except (OSError, ConnectionError) as e:
            log.debug("send to %s failed: %s", dest.address, e)
            if tx is not None:
                now = self.clock()
                self._execute(self.endpoint.transport_error(tx, now), now)
            return False

    def _fire(self, tx, name: str) -> None:
        timers = self._timers.get(id(tx))
        if timers is not None:
            timers.pop(name, None)
        now = self.clock()
        self._execute(self.endpoint.timer(tx, name, now), now)

    def _forget(self, tx) -> None:
        timers = self._timers.pop(id(tx), None)
        if timers:
            for handle in timers.values():
                handle.cancel()
        fut = self._waiters.pop(id(tx), None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _expire(self) -> None:
        """Every second: drop completed transactions whose timer J fired (also when nothing arrives)."""
        self.endpoint.expire(self.clock())
        if self.running and self._loop is not None:
            self._expiry = self._loop.call_later(1.0, self._expire)

    # ---- the application --------------------------------------------------------------------------
    def _deliver(self, incoming: DeliverRequest, now: float) -> None:
        """Call the application for a new request and answer through the endpoint: at once when the
        handler answers at once (the figure-8 fast path), or once its Deferred / awaitable settles.
        INVITEs and in-dialog requests go to the call engine when one is attached."""
        if self.call_handler is not None and (incoming.dialog is not None or incoming.message.method in CALL_METHODS):
            out: object
            if not self.available():
                out = response_to(incoming.message, 503, headers=[("Server", USER_AGENT), ("Retry-After", "60")])
            else:
                try:
                    out = self.call_handler(incoming)
                except Exception:  # never die on input
                    msg = incoming.message
                    log.exception("call handler failed for %s from %s", msg.method, incoming.source.address)
                    out = response_to(incoming.message, 500, headers=[("Server", USER_AGENT)])
            self._follow(incoming, out, now)
            return
        self._follow(incoming, self._call_handler(incoming.message, incoming.source), now)

    def _follow(self, incoming: DeliverRequest, out, now: float) -> None:
        """Answer `incoming` with what the handler gave: now, or once it settles."""
        source = incoming.source
        if out is None:
            self._execute(self.endpoint.pending(incoming), now)
        elif isinstance(out, Message):
            data = self.endpoint.respond_at_once(incoming, out, now)  # figure 8 in one step: no action objects
            if data is not None:
                self._send(data, source, incoming.key)
            else:
                self._execute(self.endpoint.respond(incoming, out, now), now)
        elif isinstance(out, Deferred):  # answered when it settles: a callback, no task per request
            self._execute(self.endpoint.pending(incoming), now)
            out.then(functools.partial(self._settled, incoming))
        elif inspect.isawaitable(out):
            self._execute(self.endpoint.pending(incoming), now)
            task = asyncio.ensure_future(self._finish(incoming, out))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self._execute(self.endpoint.pending(incoming), now)
            raise TypeError(f"the SIP handler returned {type(out).__name__}")

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

    def _settled(self, incoming: DeliverRequest, out: Message | None, exc: BaseException | None) -> None:
        req, source = incoming.message, incoming.source
        try:
            if exc is not None:
                log.error("SIP handler failed for %s from %s", req.method, source.address, exc_info=exc)
                out = response_to(req, 500, headers=[("Server", USER_AGENT)])
            if out is not None:
                self._answer(incoming, out)
        except Exception:  # never let a handler's caller (e.g. a registrar's commit loop) see our failure
            log.exception("answering %s from %s failed", req.method, source.address)

    async def _finish(self, incoming: DeliverRequest, pending) -> None:
        req, source = incoming.message, incoming.source
        try:
            out = await pending
        except Exception:
            log.exception("SIP handler failed for %s from %s", req.method, source.address)
            out = response_to(req, 500, headers=[("Server", USER_AGENT)])
        if out is not None:
            self._answer(incoming, out)

    def _answer(self, incoming: DeliverRequest, resp: Message) -> None:
        now = self.clock()
        actions = self.endpoint.respond(incoming, resp, now)
        if not actions:
            log.debug("late response for a finished transaction %r", incoming.tx)
        self._execute(actions, now)

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

    async def request(
        self,
        msg: Message,
        host: str,
        port: int,
        *,
        transport: str = "UDP",
        timeout: float | None = None,
        t1: float = tx_mod.T1,
    ) -> Message | None:
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
        now = self.clock()
        fut = asyncio.get_running_loop().create_future()
        tx, actions = self.endpoint.send_request(msg, dest, now, t1=t1)
        self._waiters[id(tx)] = fut
        self._execute(actions, now)
        try:
            return await asyncio.wait_for(fut, timeout) if timeout else await fut
        except TimeoutError:
            return None
        finally:
            self._execute(self.endpoint.abandon(tx), self.clock())
            self._forget(tx)

    async def _resolve(self, host: str) -> str | None:
        try:
            socket.inet_pton(socket.AF_INET, host)
            return host
        except OSError:
            pass
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, None, family=socket.AF_INET, type=socket.SOCK_DGRAM
            )
        except OSError:
            return None
        return str(infos[0][4][0]) if infos else None

    async def _connect(self, ip: str, port: int) -> asyncio.StreamWriter | None:
        known = self._out_conns.get((ip, port))
        if known is not None and not known.is_closing():
            return known
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), 5)
        except (OSError, TimeoutError):
            return None
        self._out_conns[(ip, port)] = writer
        task = asyncio.ensure_future(self._read_stream(reader, writer, Source(ip, port, "TCP", writer)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return writer

    # ---- the call engine's side: INVITE server and client, in-dialog requests -----------------------
    def respond(self, incoming: DeliverRequest, resp: Message) -> None:
        """Answer a request given to the call engine (a provisional or a final response)."""
        self._answer(incoming, resp)

    def answer_invite(self, incoming: DeliverRequest, uas, status: int, *, headers=None, body: bytes = b"") -> None:
        """The final answer to an INVITE the call engine handles as `uas` (sip/dialog.UasInvite): a 2xx is
        retransmitted until its ACK (`on_unacked(uas)` after 64*T1 without one)."""
        now = self.clock()
        self._execute(self.endpoint.answer_invite(incoming, uas, status, now, headers=headers, body=body), now)

    def send_to(
        self,
        msg: Message,
        dest: Source,
        *,
        on_response: Callable[[Message | None], None] | None = None,
        add_via: bool = True,
    ):
        """Start a client transaction for `msg` toward `dest` (a Source: UDP address or TCP connection).
        `on_response` hears every response (provisional ones too) and None if the transaction ends
        without a final one. Returns the transaction (for `abandon`). `add_via=False` keeps the top Via
        already in `msg` (a CANCEL carries its INVITE's)."""
        if add_via:
            msg.headers.insert(0, ("Via", self.via(dest.ip, dest.transport)))
        now = self.clock()
        tx, actions = self.endpoint.send_request(msg, dest, now)
        if on_response is not None:
            self._listeners[id(tx)] = on_response
        self._execute(actions, now)
        return tx

    async def send_and_wait(self, msg: Message, dest: Source, *, timeout: float | None = 32.0) -> Message | None:
        """`send_to` and wait for the final response (None on timeout or transport failure)."""
        fut = asyncio.get_running_loop().create_future()

        def heard(resp: Message | None) -> None:
            if (resp is None or (resp.status or 0) >= 200) and not fut.done():
                fut.set_result(resp)

        tx = self.send_to(msg, dest, on_response=heard)
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return None
        finally:
            self._listeners.pop(id(tx), None)
            self._execute(self.endpoint.abandon(tx), self.clock())

    def send_ack(self, ack: Message, dest: Source) -> None:
        """An ACK for a 2xx (its own transaction-less request, with a fresh branch)."""
        if not ack.get("Via"):
            ack.headers.insert(0, ("Via", self.via(dest.ip, dest.transport)))
        self._send(ack.to_bytes(), dest, None)

    async def destination(self, host: str, port: int, transport: str = "UDP") -> Source | None:
        """Where to send a request for host:port: a UDP address, or a TCP connection (an open one from
        or to that address, else a new one)."""
        ip = await self._resolve(host)
        if ip is None:
            return None
        if transport.upper() != "TCP":
            return Source(ip, port, "UDP")
        for conn in self._conns.values():
            if conn.source.ip == ip and conn.source.port == port:
                return conn.source
        writer = await self._connect(ip, port)
        return Source(ip, port, "TCP", writer) if writer is not None else None

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
        conn = self._conns[writer] = _Conn(source, self.clock(), inbound)
        buffer = b""
        try:
            while chunk := await reader.read(65536):
                conn.last_rx = self.clock()
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
        now = self.clock()
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
            self._udp, _ = await loop.create_datagram_endpoint(
                lambda: _Udp(self), local_addr=(self.host, self.port), reuse_port=self.reuse_port or None
            )
            port = self._udp.get_extra_info("sockname")[1]
            if not self.tcp:
                self.port = port
                break
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
