"""The media engine's control protocol: rtpengine's "ng" framing and command names where they fit.

Transport and framing
    UDP. A request is one datagram `<cookie> <bencoded dictionary>`: the cookie is any string
    without spaces chosen by the client (unique per request), then one space, then the dictionary.
    The reply is one datagram `<same cookie> <bencoded dictionary>` carrying `"result": "ok"`
    (plus the command's fields) or `"result": "error", "error-reason": "..."`.
    A request whose cookie was seen from the same address in the last 60 s is not executed again:
    the cached reply is resent (ng semantics, so a client may retransmit safely).
    Integers may be sent as bencode integers or as decimal strings. Figures that are not integers
    (jitter in ms, CPU seconds) are sent as decimal strings ("1.25"), bencode having no floats.
    A datagram that is not `<cookie> <dictionary>` gets an error reply (cookie "0" when none
    could be read); the process stays up.

Requests carry `"command"`, and most carry `"call-id"` and `"from-tag"` (the leg); `"to-tag"`
names a second leg where a command needs one. Commands:

    ping                   -> {"result": "pong"}
    leg                    create or update leg from-tag of call-id. Fields (all optional on update):
                           remote-address, remote-port (from the peer's SDP; may be absent until
                           known), codec "PCMU"|"PCMA", payload-type (int, default 0/8),
                           dtmf-payload-type (int; absent = no RFC 4733 on this leg), ptime (20),
                           direction sendrecv|sendonly|recvonly|inactive (the leg's own SDP
                           attribute: sendonly = the phone only sends), timeout (s without RTP
                           before a "timeout" event; 0 = the process default).
                           -> {"local-address", "local-port"}: the port stays the same on update.
                           Symmetric RTP: the source of the first packet received becomes the
                           remote address ("latched").
    bridge                 from-tag and to-tag exchange media (G.711 payload passed through, or
                           transcoded µ-law<->A-law; telephone-events with the other leg's payload type)
    unbridge               from-tag (and its peer) stop exchanging media
    delete                 from-tag given: that leg; absent: the whole call.
                           -> {"tags": {tag: stats, ...}} (final figures)
    query                  -> {"created", "tags": {tag: stats}} for the call (or just from-tag)
    list                   -> {"calls": [call-id, ...]} (optional "limit")
    statistics             -> {"statistics": {"calls", "legs", "packets-relayed", "packets-in",
                           "packets-out", "cpu-seconds", "uptime", "ticks", "moh-classes"}}
    play media             file (sound name like "hello-world", "digits/1" or an absolute path),
                           repeat-times (default 1): replaces what the leg receives until done.
                           -> {"duration": ms}; later a "play-done" event.
    stop media             stops play media or music on hold on the leg (a "play-done" event with
                           reason "stopped" for play media)
    play DTMF              code (one or more of 0-9*#A-D), duration (ms, default 100), volume
                           (0..63, -dBm0, default 10), pause (ms between digits, default 100):
                           RFC 4733 with the leg's dtmf-payload-type, in-band tones without one.
                           -> {"duration": ms}
    music on hold          class (default "default"): the leg hears the class's shared generator
    echo                   enable "yes"|"no" (or 1/0): what the leg sends comes back to it
    start recording        file (absolute path; .wav 8 kHz 16-bit mono, .ulaw, .alaw or .sln):
                           records what the leg sends, decoded
    stop recording         -> {"duration": ms recorded}

Stats of a leg (query, delete): tag, local-port, remote-address, remote-port, latched (0/1),
codec, payload-type, dtmf-payload-type, direction, bridged-to, packets-in, bytes-in, packets-out,
bytes-out, packets-lost (RFC 3550 A.1), jitter (ms, RFC 3550 A.8), errors, dtmf-events,
last-rtcp (the last SR/RR received: type, ssrc, blocks [{ssrc, fraction-lost, packets-lost,
highest-seq, jitter, jitter-ms, lsr, dlsr}], received-at), playing, recording, echo.

Events
    Unsolicited datagrams from the control socket to the address that last sent the leg's `leg`
    command, framed like replies with the cookie "0" (never a request cookie a client should use):
    `0 <bencoded dictionary>`, the dictionary holding "event", "call-id", "from-tag" and "seq"
    (increasing per process, to spot a lost event). Events are not acknowledged or retransmitted.
        {"event": "dtmf", "digit": "5", "duration": ms, "volume": n}   one per key press (RFC 4733
            end packet; repeated end packets with the same RTP timestamp are one press)
        {"event": "play-done", "file", "reason": "done"|"stopped"|"replaced"|"deleted", "duration"}
        {"event": "timeout", "seconds"}   no RTP from the leg for its timeout
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict

from switchboard.media import bencode
from switchboard.media.engine import Engine, MediaError, _int
from switchboard.media.rtp import DTMF_CODES

log = logging.getLogger(__name__)

EVENT_COOKIE = b"0"
COOKIE_TTL = 60.0
COOKIE_MAX = 10000


def frame(cookie: bytes, body: dict) -> bytes:
    return cookie + b" " + bencode.encode(body)


def unframe(data: bytes) -> tuple[bytes, dict]:
    """(cookie, dictionary) of a datagram; ValueError with the reason if it is malformed."""
    cookie, sep, rest = data.partition(b" ")
    if not sep or not cookie:
        raise ValueError("expected '<cookie> <bencoded dictionary>'")
    body = bencode.decode(rest)
    if not isinstance(body, dict):
        raise ValueError("the message is not a bencoded dictionary")
    return cookie, body


def _yes(v: object) -> bool:
    if isinstance(v, int):
        return v != 0
    s = str(v).lower()
    if s in ("yes", "true", "on", "1"):
        return True
    if s in ("no", "false", "off", "0"):
        return False
    raise MediaError("enable must be yes or no")


def _str(req: dict, key: str, required: bool = True) -> str | None:
    v = req.get(key)
    if v is None or v == "":
        if required:
            raise MediaError(f"No {key} in message")
        return None
    if not isinstance(v, str):
        raise MediaError(f"{key} must be a string")
    return v


class ControlProtocol(asyncio.DatagramProtocol):
    def __init__(self, engine_factory):
        self._engine_factory = engine_factory
        self.engine: Engine | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self._replies: OrderedDict[tuple[bytes, tuple], tuple[float, bytes]] = OrderedDict()

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.engine = self._engine_factory(self.send_event)

    def send_event(self, addr: tuple[str, int], event: dict) -> None:
        if self.transport is not None:
            try:
                self.transport.sendto(frame(EVENT_COOKIE, event), addr)
            except OSError:
                pass

    def datagram_received(self, data: bytes, addr) -> None:
        now = time.monotonic()
        try:
            cookie, req = unframe(data)
        except ValueError as e:
            cookie = data.partition(b" ")[0][:64] if b" " in data else b"0"
            self._send(cookie, {"result": "error", "error-reason": f"malformed message: {e}"}, addr)
            return
        key = (cookie, addr)
        cached = self._replies.get(key)
        if cached is not None and now - cached[0] < COOKIE_TTL:
            self.transport.sendto(cached[1], addr)
            return
        try:
            reply = self.handle(req, addr)
        except MediaError as e:
            reply = {"result": "error", "error-reason": str(e)}
        except Exception as e:  # a bug must cost one request, not the process
            log.exception("control command failed: %r", req.get("command"))
            reply = {"result": "error", "error-reason": f"internal error: {type(e).__name__}"}
        wire = self._send(cookie, reply, addr)
        self._replies[key] = (now, wire)
        while self._replies and (
            len(self._replies) > COOKIE_MAX or now - next(iter(self._replies.values()))[0] > COOKIE_TTL
        ):
            self._replies.popitem(last=False)

    def _send(self, cookie: bytes, reply: dict, addr) -> bytes:
        try:
            wire = frame(cookie, reply)
        except bencode.BencodeError as e:
            wire = frame(cookie, {"result": "error", "error-reason": f"internal error: {e}"})
        self.transport.sendto(wire, addr)
        return wire

    # --- commands ------------------------------------------------------------------------------

    def handle(self, req: dict, addr) -> dict:
        command = _str(req, "command")
        handler = COMMANDS.get(command.lower())
        if handler is None:
            raise MediaError(f"Unrecognized command {command!r}")
        return handler(self, req, addr)

    def _leg(self, req: dict):
        return self.engine.leg(_str(req, "call-id"), _str(req, "from-tag"))

    def cmd_ping(self, req, addr):
        return {"result": "pong"}

    def cmd_leg(self, req, addr):
        leg = self.engine.leg_update(_str(req, "call-id"), _str(req, "from-tag"), req, addr)
        return {"result": "ok", "local-address": self.engine.host, "local-port": leg.port}

    def cmd_bridge(self, req, addr):
        self.engine.bridge(
            _str(req, "call-id"), _str(req, "from-tag"), _str(req, "to-tag"), _str(req, "to-call-id", required=False)
        )
        return {"result": "ok"}

    def cmd_unbridge(self, req, addr):
        self.engine.unbridge(self._leg(req))
        return {"result": "ok"}

    def cmd_delete(self, req, addr):
        tags = self.engine.delete(_str(req, "call-id"), _str(req, "from-tag", required=False))
        return {"result": "ok", "tags": tags}

    def cmd_query(self, req, addr):
        call_id = _str(req, "call-id")
        call = self.engine.calls.get(call_id)
        if call is None:
            raise MediaError("Unknown call-id")
        tag = _str(req, "from-tag", required=False)
        legs = [self.engine.leg(call_id, tag)] if tag else list(call.legs.values())
        return {"result": "ok", "created": int(call.created), "tags": {leg.tag: leg.stats() for leg in legs}}

    def cmd_list(self, req, addr):
        limit = _int(req, "limit", 0, 1 << 31) if "limit" in req else 32
        return {"result": "ok", "calls": list(self.engine.calls)[:limit]}

    def cmd_statistics(self, req, addr):
        return {"result": "ok", "statistics": self.engine.statistics()}

    def cmd_play_media(self, req, addr):
        leg = self._leg(req)
        name = _str(req, "file")
        repeat = _int(req, "repeat-times", 1, 1000) if "repeat-times" in req else 1
        player = self.engine.play(leg, name, repeat)
        return {"result": "ok", "duration": player.duration_ms}

    def cmd_stop_media(self, req, addr):
        leg = self._leg(req)
        if leg.source is None:
            raise MediaError("Not currently playing media")
        leg.stop_source("stopped")
        return {"result": "ok"}

    def cmd_play_dtmf(self, req, addr):
        leg = self._leg(req)
        code = str(req.get("code", ""))
        if isinstance(req.get("code"), int):
            code = str(req["code"])
        code = code.upper()
        if not code or any(c not in DTMF_CODES for c in code) or len(code) > 64:
            raise MediaError("code must be DTMF digits 0-9 * # A-D")
        duration = _int(req, "duration", 40, 5000) if "duration" in req else 100
        volume = _int(req, "volume", 0, 63) if "volume" in req else 10
        pause = _int(req, "pause", 20, 5000) if "pause" in req else 100
        self.engine.play_dtmf(leg, code, duration, volume, pause)
        total = len(code) * duration + (len(code) - 1) * pause
        return {"result": "ok", "duration": total}

    def cmd_music_on_hold(self, req, addr):
        leg = self._leg(req)
        cls = self.engine.music_on_hold(leg, _str(req, "class", required=False) or "default")
        return {"result": "ok", "class": cls.name, "files": len(cls.files)}

    def cmd_echo(self, req, addr):
        leg = self._leg(req)
        leg.echo = _yes(req.get("enable", "yes"))
        return {"result": "ok"}

    def cmd_start_recording(self, req, addr):
        self.engine.start_recording(self._leg(req), _str(req, "file"))
        return {"result": "ok"}

    def cmd_stop_recording(self, req, addr):
        return {"result": "ok", "duration": self.engine.stop_recording(self._leg(req))}


COMMANDS = {
    "ping": ControlProtocol.cmd_ping,
    "leg": ControlProtocol.cmd_leg,
    "bridge": ControlProtocol.cmd_bridge,
    "unbridge": ControlProtocol.cmd_unbridge,
    "delete": ControlProtocol.cmd_delete,
    "query": ControlProtocol.cmd_query,
    "list": ControlProtocol.cmd_list,
    "statistics": ControlProtocol.cmd_statistics,
    "play media": ControlProtocol.cmd_play_media,
    "stop media": ControlProtocol.cmd_stop_media,
    "play dtmf": ControlProtocol.cmd_play_dtmf,
    "music on hold": ControlProtocol.cmd_music_on_hold,
    "echo": ControlProtocol.cmd_echo,
    "start recording": ControlProtocol.cmd_start_recording,
    "stop recording": ControlProtocol.cmd_stop_recording,
}
