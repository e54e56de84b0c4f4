"""The SIP engine's asyncio side: UDP and TCP on one port. The only code that touches sockets.

Requests are handed to the core (`respond`), whose answer is sent back the way the request
came: for UDP to the source address (RFC 3581 symmetric response; `received`/`rport` are added
to the top Via), for TCP on the same connection. What the engine answers today: OPTIONS (200,
with Allow/Accept/Supported: the keep-alive and qualify probe peers send), and 501 Not
Implemented for any other request method until the registrar and call handling exist."""

from __future__ import annotations

import asyncio
import logging

from switchboard import __version__
from switchboard.sip.message import Message, ParseError, frame, parse, response_to

log = logging.getLogger("switchboard.sip")

ALLOW = "OPTIONS"
USER_AGENT = f"Switchboard/{__version__}"


def _with_received(req: Message, host: str, port: int) -> None:
    vias = req.get_all("Via")
    if not vias:
        return
    top = vias[0]
    params = top.split(";")
    sent_by = params[0].split()[-1] if params[0].split() else ""
    if "rport" in [p.strip() for p in params[1:]]:
        params = [f"rport={port}" if p.strip() == "rport" else p for p in params]
        params.append(f"received={host}")
    elif sent_by.split(":")[0] != host:
        params.append(f"received={host}")
    new_top = ";".join(params)
    first = True
    rebuilt = []
    for n, v in req.headers:
        if n == "Via" and first:
            rebuilt.append((n, new_top))
            first = False
        else:
            rebuilt.append((n, v))
    req.headers = rebuilt


def respond(req: Message, *, available: bool = True) -> Message | None:
    """The sans-I/O request handler: one request in, the response to send (or None).
    `available` False (the res_pjsip module unloaded) answers 503 to everything."""
    if req.method == "ACK":
        return None
    extra = [("Server", USER_AGENT), ("Allow", ALLOW)]
    if not available:
        return response_to(req, 503, headers=[("Server", USER_AGENT), ("Retry-After", "60")])
    if req.method == "OPTIONS":
        return response_to(req, 200, headers=extra + [("Accept", "application/sdp")])
    return response_to(req, 501, headers=extra)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, engine: SipEngine):
        self.engine = engine
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data: bytes, addr):
        if not data.strip(b"\r\n\0 "):  # keep-alive ping (RFC 5626 CRLF): nothing to answer
            return
        out = self.engine.handle(data, addr)
        if out is not None and self.transport is not None:
            self.transport.sendto(out, addr)


class SipEngine:
    def __init__(self, host: str, port: int, *, available=lambda: True):
        self.host, self.port = host, port
        self.available = available  # callable: is the SIP stack (res_pjsip) loaded?
        self.running = False
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.base_events.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()

    def handle(self, data: bytes, addr) -> bytes | None:
        try:
            msg = parse(data)
        except ParseError as e:
            log.debug("dropping unparsable SIP from %s: %s", addr, e)
            return None
        if not msg.is_request:
            return None
        _with_received(msg, addr[0], addr[1])
        resp = respond(msg, available=self.available())
        return resp.to_bytes() if resp is not None else None

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._conns.add(writer)
        addr = writer.get_extra_info("peername")
        buffer = b""
        try:
            while chunk := await reader.read(65536):
                buffer += chunk
                while True:
                    try:
                        framed = frame(buffer)
                    except ParseError:
                        return
                    if framed is None:
                        break
                    data, buffer = framed
                    out = self.handle(data, addr)
                    if out is not None:
                        writer.write(out)
                        await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._conns.discard(writer)
            writer.close()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), local_addr=(self.host, self.port))
        self.port = self._udp.get_extra_info("sockname")[1]  # port 0 -> the one the OS gave
        self._tcp = await asyncio.start_server(self._serve_tcp, self.host, self.port)
        self.running = True

    async def stop(self) -> None:
        self.running = False
        if self._tcp is not None:
            self._tcp.close()
            for w in list(self._conns):
                w.close()
            await self._tcp.wait_closed()
        if self._udp is not None:
            self._udp.close()
