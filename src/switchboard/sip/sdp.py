"""SDP, sans I/O (RFC 8866) and the offer/answer model (RFC 3264) for G.711 calls with RFC 4733 DTMF.

* `parse(body) -> Sdp` and `Sdp.to_bytes()`: the session description as dataclasses. What a call
  depends on is parsed and checked (o=, c=, m=, rtpmap, fmtp, ptime, maxptime, rtcp, direction);
  every other line and attribute is kept as received, in order, and rendered back (with CRLF).
* `answer(offer, allowed, ...) -> (Sdp, Media)`, `offer(codecs, ...) -> Sdp`,
  `accept_answer(our_offer, answer) -> Media`: the two halves of an exchange. `Media` is what the
  media engine needs: where to send, which codec and payload type, telephone-event, ptime, hold.
* Re-INVITE: `bump(sdp)` (o= version + 1), `with_direction(sdp, direction)`, `hold(sdp)` (sendonly)
  and `unhold(sdp)` (sendrecv), each a new offer with the version incremented (RFC 3264 §8). A
  session refresh (RFC 4028) that changes nothing resends the previous SDP as it was, same version.
* `codecs_from_pjsip(allow, disallow)`: an Asterisk pjsip endpoint's codec list in SDP names.
* `dtmf_relay(body)`: the digit and duration of a SIP INFO (application/dtmf-relay or application/dtmf).

Parsing (`parse`): the body must be UTF-8 (RFC 8866 §5.1 default charset); lines end with CRLF
or LF alone (blank lines are skipped, so are trailing blanks on o=, m=, c=, t=); every line is
`<letter>=<value>` with a type letter of RFC 8866 (another letter: the description is rejected,
§5); `v=0` first, then `o=` (six fields, numeric session id and version), then `s=` (may be empty,
as some phones send it); at least one `t=` of two numbers; `c=` (`<nettype> <addrtype>
<address>[/ttl[/n]]`, an IP4/IP6 literal checked as such) at session level or in every m= section
whose port is not 0, at most one per level; `m=<media> <port>[/<n>] <proto> <fmt>...` with a port
0-65535 and at least one format unless the port is 0, formats being payload types 0-127 when the
proto is RTP; `rtpmap` (`<pt> <name>/<rate>[/<channels>]`), `fmtp` (`<fmt> <params>`, numeric on
RTP), `ptime` and `maxptime` (milliseconds, 1-1000), `rtcp` (`<port> [<nettype> <addrtype>
<address>]`) and at most one direction per level. Anything else wrong raises `SdpError` with
`status` 400; no other exception comes out of `parse` (the tests fuzz it). Session-level i= u= e=
p= lines are kept before the others (the order they render in), whatever order they came in.

Choices made here:

* Codecs are G.711 µ-law (`PCMU`, static PT 0) and A-law (`PCMA`, PT 8), at 8000 Hz mono, plus
  `telephone-event/8000` (RFC 4733). Encoding names compare case-insensitively; a static PT without
  rtpmap is known by its number; an rtpmap wins over the static number (`a=rtpmap:0 G729/8000` is
  G.729); a dynamic PT mapped to PCMU/PCMA is accepted with the offerer's number.
* `answer` takes the FIRST audio m= section with port != 0 and proto RTP/AVP (RTP/SAVP and others are
  refused: no SRTP here) that has a codec in `allowed`, and picks the codec the OFFERER prefers
  (earliest in its m= line) among those we allow (RFC 3264 §6.1); the answer lists only that codec
  (plus telephone-event when offered at 8000 Hz and `dtmf`), so both sides send the same codec. The
  offerer's payload type numbers are kept. Every other m= section is answered with port 0 and the
  offer's formats, same number and order (§6). No such section: `SdpError` 488.
* The direction of the answer is the offer's complemented (sendonly -> recvonly, recvonly -> sendonly,
  inactive -> inactive) and intersected with ours (`direction=`, e.g. sendonly when we play hold
  music); it is always written explicitly. `Media.on_hold`: the remote does not want to receive
  (sendonly, inactive) or gave `c=0.0.0.0` (the RFC 2543 hold that old Cisco and Polycom send).
* `Media.ptime`: the remote's a=ptime (at most its a=maxptime), 20 when absent; our answer states it.
* `accept_answer` needs the same number of m= sections as the offer and the same media types
  (else 400); the audio section rejected (port 0) or answered with a codec we did not offer: 488.
* `codecs_from_pjsip`: `disallow` is applied before `allow` (the order of `disallow=all` / `allow=...`
  in pjsip.conf), items separated by commas, case-insensitive, `!name` flips allow/disallow, `all` is
  every codec we have (PCMU, PCMA), a `:20` framing suffix is ignored, and names Asterisk knows but we
  do not implement (g722, g729, opus, ...) or does not know are ignored. Asterisk names are `ulaw` and
  `alaw` only. Asterisk itself gives a pjsip endpoint with no `allow` NO codecs (every call then fails
  with 488); users do not expect that from a blank form, so here a blank `allow` starts from the
  default ["PCMU", "PCMA"] and `disallow` is applied to it (`disallow=all` alone still gives []). A
  non-blank `allow` starts from nothing, as in Asterisk.
* `dtmf_relay`: `Signal=` is required, `Duration=` defaults to 100 ms (DEFAULT_DTMF_MS, as Asterisk's
  chan_sip); keys case-insensitive; events "10" -> "*", "11" -> "#", and "12"-"15" -> "A"-"D" (the
  RFC 4733 event numbers some phones send); letters upper-cased; a duration above 60 s is malformed.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

# --- codecs ----------------------------------------------------------------------------------------------

STATIC_PT = {"PCMU": 0, "PCMA": 8}  # the codecs we implement: SDP name -> static payload type (RFC 3551)
_STATIC_NAME = {pt: name for name, pt in STATIC_PT.items()}
CLOCK = 8000
TELEPHONE_EVENT = "telephone-event"
TELEPHONE_EVENT_PT = 101  # the dynamic PT of our own offers
TELEPHONE_EVENT_FMTP = "0-16"  # DTMF 0-9 * # A-D and flash (RFC 4733 §3.2)
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
DEFAULT_PTIME = 20
DEFAULT_DTMF_MS = 100
MAX_SDP = 65_535  # a SIP message is no larger (message.MAX_MESSAGE)

_ASTERISK_NAMES = {"ulaw": "PCMU", "alaw": "PCMA"}
DEFAULT_CODECS = ("PCMU", "PCMA")  # when `allow` is blank (see the module docstring)


class SdpError(ValueError):
    """An SDP we cannot use. `status`: the SIP response it deserves, 400 when it is malformed, 488 Not
    Acceptable Here when it is well-formed but offers nothing we can do (or rejects what we offered)."""

    def __init__(self, reason: str = "", status: int = 400):
        super().__init__(reason)
        self.status = status


# --- the description as data -----------------------------------------------------------------------------


@dataclass(slots=True)
class Origin:
    """o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address> (RFC 8866 §5.2)."""

    username: str
    session_id: int
    version: int
    nettype: str
    addrtype: str
    address: str

    def __str__(self) -> str:
        return f"{self.username} {self.session_id} {self.version} {self.nettype} {self.addrtype} {self.address}"


@dataclass(slots=True)
class Connection:
    """c=<nettype> <addrtype> <connection-address> (RFC 8866 §5.7); `address` may carry /ttl[/n]."""

    nettype: str
    addrtype: str
    address: str

    @property
    def host(self) -> str:
        """The address without a multicast /ttl or /number suffix."""
        return self.address.partition("/")[0]

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


Attribute = tuple[str, "str | None"]  # a=name:value, or (name, None) for a flag such as a=sendrecv


def _first(attributes: list[Attribute], name: str) -> str | None:
    for n, v in attributes:
        if n == name:
            return v if v is not None else ""
    return None


def _direction_of(attributes: list[Attribute]) -> str | None:
    for n, v in attributes:
        if v is None and n in DIRECTIONS:
            return n
    return None


@dataclass(slots=True)
class MediaDescription:
    """One m= section: m=<media> <port>[/<port_count>] <proto> <formats...>, then its own lines."""

    media: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    connection: Connection | None = None
    lines: list[tuple[str, str]] = field(default_factory=list)  # i=, b=, k= as received, in order
    attributes: list[Attribute] = field(default_factory=list)

    def attribute(self, name: str) -> str | None:
        """The value of the first a=name (\"\" for a flag), None when absent."""
        return _first(self.attributes, name)

    def rtpmap(self) -> dict[int, tuple[str, int, int | None]]:
        """{payload type: (encoding name, clock rate, channels or None)} from the a=rtpmap lines (the
        first for a PT), as checked by `parse`."""
        out: dict[int, tuple[str, int, int | None]] = {}
        for n, v in self.attributes:
            if n == "rtpmap" and v:
                parsed = _rtpmap(v)
                if parsed is not None:
                    out.setdefault(parsed[0], parsed[1:])
        return out

    def fmtp(self, fmt: str) -> str | None:
        """The parameters of a=fmtp:<fmt>, None when absent."""
        for n, v in self.attributes:
            if n == "fmtp" and v:
                f, _, rest = v.partition(" ")
                if f == fmt:
                    return rest.strip()
        return None

    @property
    def is_rtp(self) -> bool:
        return "RTP/" in self.proto.upper()

    def copy(self) -> MediaDescription:
        return MediaDescription(
            self.media,
            self.port,
            self.proto,
            list(self.formats),
            self.port_count,
            self.connection,
            list(self.lines),
            list(self.attributes),
        )

    def _render(self, out: list[str]) -> None:
        port = f"{self.port}/{self.port_count}" if self.port_count is not None else str(self.port)
        out.append(" ".join(("m=" + self.media, port, self.proto, *self.formats)))
        out.extend(f"i={v}" for t, v in self.lines if t == "i")
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out.extend(f"{t}={v}" for t, v in self.lines if t != "i")
        out.extend(f"a={n}" if v is None else f"a={n}:{v}" for n, v in self.attributes)


@dataclass(slots=True)
class Sdp:
    """A session description. `lines` keeps the session-level i=, u=, e=, p=, b=, t=, r=, z=, k= lines
    as received (in order); `attributes` the session-level a= lines; `media` the m= sections."""

    origin: Origin
    name: str = "-"
    connection: Connection | None = None
    lines: list[tuple[str, str]] = field(default_factory=lambda: [("t", "0 0")])
    attributes: list[Attribute] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)

    def direction(self, m: MediaDescription) -> str:
        """The direction of an m= section: its own attribute, else the session's, else sendrecv."""
        return _direction_of(m.attributes) or _direction_of(self.attributes) or "sendrecv"

    def connection_for(self, m: MediaDescription) -> Connection | None:
        """The c= that applies to an m= section: its own, else the session's."""
        return m.connection or self.connection

    def copy(self) -> Sdp:
        o = self.origin
        return Sdp(
            Origin(o.username, o.session_id, o.version, o.nettype, o.addrtype, o.address),
            self.name,
            self.connection,
            list(self.lines),
            list(self.attributes),
            [m.copy() for m in self.media],
        )

    def to_bytes(self) -> bytes:
        """The description as a body: RFC 8866 line order, CRLF line ends."""
        out = ["v=0", f"o={self.origin}", f"s={self.name}"]
        out.extend(f"{t}={v}" for t, v in self.lines if t in "iuep")
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out.extend(f"{t}={v}" for t, v in self.lines if t not in "iuep")
        out.extend(f"a={n}" if v is None else f"a={n}:{v}" for n, v in self.attributes)
        for m in self.media:
            m._render(out)
        out.append("")
        return "\r\n".join(out).encode()


@dataclass(frozen=True, slots=True)
class Media:
    """The outcome of an exchange for the media engine: where to send RTP (the remote's address and
    port), which codec and payload type, the telephone-event PT (None: no RFC 4733 DTMF), the packet
    time in ms, the remote's direction, and whether the remote put the call on hold."""

    address: str
    port: int
    codec: str
    payload_type: int
    telephone_event: int | None
    ptime: int
    direction: str
    on_hold: bool
    rtcp_port: int | None = None  # from a=rtcp (RFC 3605); None: the RTP port + 1
    index: int = 0  # which m= section


# --- parsing ---------------------------------------------------------------------------------------------

_TYPES = frozenset("vosiuepcbtrzkam")
_MEDIA_LINE_TYPES = frozenset("ibk")
_TOKEN = re.compile(r"[!#-'*+\-.0-9A-Z^-~]+")  # RFC 8866 token (any visible character but separators)
_NUMBER = re.compile(r"[0-9]{1,20}")
_HOST = re.compile(r"[A-Za-z0-9.\-]+|[0-9A-Fa-f:.]+")
_ADDRESS_SUFFIX = re.compile(r"(?:/[0-9]{1,10}){0,2}")
_RTPMAP = re.compile(r"([0-9]{1,3}) +([^/ ]+)/([0-9]{1,10})(?:/([0-9]{1,3}))? *")


def _rtpmap(value: str) -> tuple[int, str, int, int | None] | None:
    m = _RTPMAP.fullmatch(value)
    if m is None or int(m.group(1)) > 127:
        return None
    ch = m.group(4)
    return int(m.group(1)), m.group(2), int(m.group(3)), int(ch) if ch is not None else None


def _int(text: str, what: str, low: int, high: int) -> int:
    if not _NUMBER.fullmatch(text):
        raise SdpError(f"bad {what} {text!r}")
    n = int(text)
    if not low <= n <= high:
        raise SdpError(f"{what} {n} out of range")
    return n


def _address(addrtype: str, address: str) -> None:
    host, slash, suffix = address.partition("/")
    if not host or not _HOST.fullmatch(host) or (slash and not _ADDRESS_SUFFIX.fullmatch(slash + suffix)):
        raise SdpError(f"bad address {address!r}")
    if addrtype == "IP4" and host.replace(".", "").isdigit():
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise SdpError(f"bad IPv4 address {host!r}") from None
    elif addrtype == "IP6" and ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise SdpError(f"bad IPv6 address {host!r}") from None


def _connection(value: str) -> Connection:
    parts = value.split(" ")
    if len(parts) != 3 or not all(_TOKEN.fullmatch(p) for p in parts[:2]):
        raise SdpError(f"bad c= {value!r}")
    _address(parts[1], parts[2])
    return Connection(*parts)


def _origin(value: str) -> Origin:
    parts = value.split(" ")
    if len(parts) != 6 or not all(_TOKEN.fullmatch(p) for p in (parts[0], parts[3], parts[4])):
        raise SdpError(f"bad o= {value!r}")
    _address(parts[4], parts[5])
    sid = _int(parts[1], "o= session id", 0, 10**20)
    version = _int(parts[2], "o= version", 0, 10**20)
    return Origin(parts[0], sid, version, parts[3], parts[4], parts[5])


def _media_line(value: str) -> MediaDescription:
    parts = value.split(" ")
    if len(parts) < 3 or not _TOKEN.fullmatch(parts[0]) or not all(parts):
        raise SdpError(f"bad m= {value!r}")
    media, port_text, proto, *formats = parts
    port_text, slash, count_text = port_text.partition("/")
    port = _int(port_text, "m= port", 0, 65535)
    count = _int(count_text, "m= port count", 1, 65535) if slash else None
    if not re.fullmatch(r"[A-Za-z0-9\-.]+(?:/[A-Za-z0-9\-.]+)*", proto):
        raise SdpError(f"bad m= proto {proto!r}")
    if not formats and port != 0:
        raise SdpError(f"m= without formats {value!r}")
    m = MediaDescription(media, port, proto, formats, count)
    if m.is_rtp:
        for f in formats:
            _int(f, "payload type", 0, 127)
    elif not all(_TOKEN.fullmatch(f) for f in formats):
        raise SdpError(f"bad m= format in {value!r}")
    return m


def _check_attributes(attributes: list[Attribute], rtp: bool) -> None:
    """The attributes a call depends on, checked; others are kept unread."""
    direction = None
    for name, value in attributes:
        if value is None:
            if name in DIRECTIONS:
                if direction is not None and direction != name:
                    raise SdpError(f"both a={direction} and a={name}")
                direction = name
            continue
        if name == "rtpmap":
            if rtp and _rtpmap(value) is None:
                raise SdpError(f"bad a=rtpmap:{value}")
        elif name == "fmtp":
            fmt = value.partition(" ")[0]
            if not fmt or (rtp and not _NUMBER.fullmatch(fmt)) or (rtp and int(fmt) > 127):
                raise SdpError(f"bad a=fmtp:{value}")
        elif name in ("ptime", "maxptime"):
            _ms(value, name)
        elif name == "rtcp":
            port, _, rest = value.partition(" ")
            _int(port, "a=rtcp port", 0, 65535)
            if rest:
                _connection(rest)
        elif name in DIRECTIONS:
            raise SdpError(f"a={name} with a value")


def _ms(value: str, what: str) -> int:
    """ptime/maxptime: milliseconds, an integer (a fraction such as 20.0 is tolerated)."""
    whole, dot, frac = value.strip().partition(".")
    if dot and not (frac.isdigit() and frac.isascii()):
        raise SdpError(f"bad a={what}:{value}")
    return _int(whole, f"a={what}", 1, 1000)


def parse(body: bytes | str) -> Sdp:
    """An SDP body -> Sdp; SdpError (status 400) when malformed (see the module docstring)."""
    if isinstance(body, bytes | bytearray):
        if len(body) > MAX_SDP:
            raise SdpError("SDP too large")
        try:
            text = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            raise SdpError("SDP is not UTF-8") from None
    elif isinstance(body, str):
        if len(body) > MAX_SDP:
            raise SdpError("SDP too large")
        text = body
    else:
        raise SdpError("SDP body must be bytes or str")
    lines = []
    for raw in text.split("\n"):
        line = raw[:-1] if raw.endswith("\r") else raw
        if not line:
            continue
        if len(line) < 2 or line[1] != "=" or line[0] not in _TYPES:
            raise SdpError(f"bad SDP line {line[:40]!r}")
        if "\r" in line or "\x00" in line:
            raise SdpError("CR or NUL inside an SDP line")
        t = line[0]
        # trailing blanks, which some phones leave, are dropped where fields are split on SP
        lines.append((t, line[2:].rstrip(" \t") if t in "omct" else line[2:]))
    if not lines or lines[0] != ("v", "0"):
        raise SdpError("SDP does not start with v=0")
    if len(lines) < 3 or lines[1][0] != "o" or lines[2][0] != "s":
        raise SdpError("SDP without o= and s= after v=")
    sdp = Sdp(_origin(lines[1][1]), lines[2][1], lines=[])
    current: MediaDescription | None = None
    for t, value in lines[3:]:
        if t == "m":
            current = _media_line(value)
            sdp.media.append(current)
        elif t == "a":
            name, colon, v = value.partition(":")
            if not _TOKEN.fullmatch(name):
                raise SdpError(f"bad attribute a={value[:40]}")
            (current.attributes if current else sdp.attributes).append((name, v if colon else None))
        elif t == "c":
            target = current or sdp
            if target.connection is not None:
                raise SdpError("two c= lines at one level")
            target.connection = _connection(value)
        elif current is None:
            if t in "vos":
                raise SdpError(f"a second {t}= line")
            if t == "t" and not re.fullmatch(r"[0-9]{1,20} [0-9]{1,20}", value):
                raise SdpError(f"bad t= {value!r}")
            sdp.lines.append((t, value))
        elif t in _MEDIA_LINE_TYPES:
            current.lines.append((t, value))
        else:
            raise SdpError(f"{t}= inside an m= section")
    if not any(t == "t" for t, _ in sdp.lines):
        raise SdpError("SDP without t=")
    # kept in the order they render in (RFC 8866 §5: i u e p before c=, the rest after), so that
    # parse(to_bytes()) gives the same object even when a sender mixed the order
    sdp.lines.sort(key=lambda line: line[0] not in "iuep")
    _check_attributes(sdp.attributes, False)
    for m in sdp.media:
        m.lines.sort(key=lambda line: line[0] != "i")
        if m.port != 0 and sdp.connection is None and m.connection is None:
            raise SdpError(f"no c= for m={m.media} {m.port}")
        _check_attributes(m.attributes, m.is_rtp)
    return sdp


# --- codecs of an m= section -----------------------------------------------------------------------------


def _codec_of(fmt: str, rtpmap: dict[int, tuple[str, int, int | None]]) -> str | None:
    """The SDP name of a payload type when we implement it ("PCMU", "PCMA", "telephone-event")."""
    pt = int(fmt)
    mapped = rtpmap.get(pt)
    if mapped is None:
        return _STATIC_NAME.get(pt)
    name, rate, channels = mapped
    if rate != CLOCK or channels not in (None, 1):
        return None
    upper = name.upper()
    if upper in STATIC_PT:
        return upper
    return TELEPHONE_EVENT if upper == "TELEPHONE-EVENT" else None


def _ptime(m: MediaDescription) -> int:
    ptime = m.attribute("ptime")
    value = _ms(ptime, "ptime") if ptime else DEFAULT_PTIME
    maxptime = m.attribute("maxptime")
    return min(value, _ms(maxptime, "maxptime")) if maxptime else value


def _rtcp_port(m: MediaDescription) -> int | None:
    rtcp = m.attribute("rtcp")
    return int(rtcp.partition(" ")[0]) if rtcp else None


_BITS = {"sendrecv": 3, "sendonly": 2, "recvonly": 1, "inactive": 0}  # 2: sends, 1: receives
_BY_BITS = {v: k for k, v in _BITS.items()}


def _complement(direction: str) -> str:
    """What answers a direction (RFC 3264 §6.1): sendonly <-> recvonly; sendrecv, inactive unchanged."""
    bits = _BITS[direction]
    return _BY_BITS[((bits & 1) << 1) | (bits >> 1)]


def _check_direction(direction: str) -> None:
    if direction not in _BITS:
        raise ValueError(f"direction {direction!r} is not one of {DIRECTIONS}")


def _addrtype(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def _session(address: str, session_id: int, version: int) -> Sdp:
    return Sdp(
        Origin("-", session_id, version, "IN", _addrtype(address), address),
        "-",
        Connection("IN", _addrtype(address), address),
        [("t", "0 0")],
    )


def _on_hold(direction: str, host: str) -> bool:
    return direction in ("sendonly", "inactive") or host in ("0.0.0.0", "::")


# --- offer/answer ----------------------------------------------------------------------------------------


def answer(
    offer: Sdp,
    allowed: list[str],
    *,
    address: str,
    port: int,
    session_id: int,
    version: int,
    dtmf: bool = True,
    direction: str | None = None,
) -> tuple[Sdp, Media]:
    """Our answer to an offer (RFC 3264 §6), and the Media it sets up; SdpError 488 when no audio
    section offers a codec in `allowed` (SDP names, our order is not used: the offerer's is). In a
    re-INVITE, pass the session id of our previous SDP and its version, plus 1 when the new answer
    differs from it (RFC 3264 §8: the same version means the same description)."""
    if direction is not None:
        _check_direction(direction)
    wanted = {c.upper() for c in allowed}
    ours = _session(address, session_id, version)
    chosen: Media | None = None
    for index, m in enumerate(offer.media):
        section = None
        if chosen is None and m.media == "audio" and m.port != 0 and m.proto.upper() == "RTP/AVP":
            section, chosen = _answer_audio(offer, m, index, wanted, port, dtmf, direction)
        if section is None:
            section = MediaDescription(m.media, 0, m.proto, list(m.formats))
        ours.media.append(section)
    if chosen is None:
        raise SdpError("no audio offered with a codec we allow (" + ", ".join(allowed) + ")", 488)
    return ours, chosen


def _answer_audio(
    offer: Sdp, m: MediaDescription, index: int, wanted: set[str], port: int, dtmf: bool, direction: str | None
) -> tuple[MediaDescription | None, Media | None]:
    rtpmap = m.rtpmap()
    codec = pt = event = None
    for fmt in m.formats:
        name = _codec_of(fmt, rtpmap)
        if name == TELEPHONE_EVENT:
            if event is None:
                event = int(fmt)
        elif name in wanted and codec is None:
            codec, pt = name, int(fmt)
    connection = offer.connection_for(m)
    if codec is None or pt is None or connection is None or connection.addrtype not in ("IP4", "IP6"):
        return None, None
    if not dtmf:
        event = None
    theirs = offer.direction(m)
    mine = _complement(theirs)
    if direction is not None:
        mine = _BY_BITS[_BITS[mine] & _BITS[direction]]
    ptime = _ptime(m)
    formats = [str(pt)] if event is None else [str(pt), str(event)]
    attributes: list[Attribute] = [("rtpmap", f"{pt} {codec}/{CLOCK}")]
    if event is not None:
        attributes.append(("rtpmap", f"{event} {TELEPHONE_EVENT}/{CLOCK}"))
        attributes.append(("fmtp", f"{event} {m.fmtp(str(event)) or TELEPHONE_EVENT_FMTP}"))
    attributes += [("ptime", str(ptime)), (mine, None)]
    section = MediaDescription("audio", port, m.proto, formats, attributes=attributes)
    host = connection.host
    media = Media(host, m.port, codec, pt, event, ptime, theirs, _on_hold(theirs, host), _rtcp_port(m), index)
    return section, media


def offer(
    codecs: list[str],
    *,
    address: str,
    port: int,
    session_id: int,
    version: int,
    dtmf: bool = True,
    direction: str = "sendrecv",
    ptime: int = DEFAULT_PTIME,
) -> Sdp:
    """Our offer: one audio RTP/AVP section with `codecs` in our order of preference (static PTs 0 and
    8), telephone-event on PT 101 (`fmtp:101 0-16`) when `dtmf`. SdpError 488 when `codecs` is empty;
    ValueError for a codec we do not implement (a caller's mistake)."""
    _check_direction(direction)
    if not codecs:
        raise SdpError("no codec to offer", 488)
    names = []
    for c in codecs:
        upper = c.upper()
        if upper not in STATIC_PT:
            raise ValueError(f"codec {c!r} is not one of {list(STATIC_PT)}")
        if upper not in names:
            names.append(upper)
    formats = [str(STATIC_PT[n]) for n in names]
    attributes: list[Attribute] = [("rtpmap", f"{STATIC_PT[n]} {n}/{CLOCK}") for n in names]
    if dtmf:
        formats.append(str(TELEPHONE_EVENT_PT))
        attributes.append(("rtpmap", f"{TELEPHONE_EVENT_PT} {TELEPHONE_EVENT}/{CLOCK}"))
        attributes.append(("fmtp", f"{TELEPHONE_EVENT_PT} {TELEPHONE_EVENT_FMTP}"))
    attributes += [("ptime", str(ptime)), (direction, None)]
    sdp = _session(address, session_id, version)
    sdp.media.append(MediaDescription("audio", port, "RTP/AVP", formats, attributes=attributes))
    return sdp


def accept_answer(our_offer: Sdp, answer: Sdp) -> Media:
    """The Media an answer to our offer sets up: SdpError 400 when it does not match the offer (number
    or types of m= sections), 488 when our audio is rejected (port 0) or answered with a codec we did
    not offer."""
    if len(answer.media) != len(our_offer.media):
        raise SdpError(f"answer has {len(answer.media)} m= sections, the offer {len(our_offer.media)}")
    for index, (mine, theirs) in enumerate(zip(our_offer.media, answer.media, strict=True)):
        if mine.media != theirs.media:
            raise SdpError(f"m= section {index} is {theirs.media}, offered {mine.media}")
        if mine.media != "audio" or mine.port == 0 or mine.proto.upper() != "RTP/AVP":
            continue
        if theirs.port == 0:
            raise SdpError("audio rejected (port 0)", 488)
        offered = {_codec_of(f, mine.rtpmap()) for f in mine.formats} - {None}
        rtpmap = theirs.rtpmap()
        codec = pt = event = None
        for fmt in theirs.formats:
            if not fmt.isdigit():
                continue
            name = _codec_of(fmt, rtpmap)
            if name == TELEPHONE_EVENT and name in offered:
                event = int(fmt) if event is None else event
            elif name in offered and codec is None:
                codec, pt = name, int(fmt)
        if codec is None or pt is None:
            raise SdpError("answer has none of the codecs offered", 488)
        connection = answer.connection_for(theirs)
        if connection is None:  # parse() requires one; a hand-built Sdp might not have it
            raise SdpError("answer without c=")
        direction = answer.direction(theirs)
        host = connection.host
        return Media(
            host,
            theirs.port,
            codec,
            pt,
            event,
            _ptime(theirs),
            direction,
            _on_hold(direction, host),
            _rtcp_port(theirs),
            index,
        )
    raise SdpError("our offer has no audio section", 488)


# --- re-INVITE -------------------------------------------------------------------------------------------


def bump(sdp: Sdp) -> Sdp:
    """A copy with the o= version incremented: what a new offer in the same session carries (RFC 3264 §8)."""
    new = sdp.copy()
    new.origin.version += 1
    return new


def with_direction(sdp: Sdp, direction: str) -> Sdp:
    """A new offer (version bumped) with every active m= section set to `direction` (the session-level
    direction attribute, if any, removed so it cannot contradict)."""
    _check_direction(direction)
    new = bump(sdp)
    new.attributes = [(n, v) for n, v in new.attributes if not (v is None and n in DIRECTIONS)]
    for m in new.media:
        if m.port != 0:
            m.attributes = [(n, v) for n, v in m.attributes if not (v is None and n in DIRECTIONS)]
            m.attributes.append((direction, None))
    return new


def hold(sdp: Sdp) -> Sdp:
    """Our hold re-offer (RFC 3264 §8.4): sendonly. (When the remote holds us too, use
    `with_direction(sdp, "inactive")`.)"""
    return with_direction(sdp, "sendonly")


def unhold(sdp: Sdp) -> Sdp:
    """Our re-offer taking the call off hold: sendrecv."""
    return with_direction(sdp, "sendrecv")


# --- codecs from Asterisk configuration ------------------------------------------------------------------


def codecs_from_pjsip(allow: str, disallow: str) -> list[str]:
    """An Asterisk pjsip endpoint's `allow`/`disallow` -> SDP codec names in preference order
    (see the module docstring): `codecs_from_pjsip("ulaw,alaw", "all") == ["PCMU", "PCMA"]`."""
    codecs: list[str] = [] if allow.strip() else list(DEFAULT_CODECS)
    for text, allowing in ((disallow, False), (allow, True)):
        for item in text.split(","):
            name = item.strip().lower()
            adding = allowing
            if name.startswith("!"):
                adding, name = not adding, name[1:].strip()
            name = name.partition(":")[0].strip()  # ulaw:20 (framing) as older configurations write it
            if name == "all":
                targets = list(DEFAULT_CODECS)
            else:
                targets = [_ASTERISK_NAMES[name]] if name in _ASTERISK_NAMES else []
            for codec in targets:
                if adding and codec not in codecs:
                    codecs.append(codec)
                elif not adding and codec in codecs:
                    codecs.remove(codec)
    return codecs


# --- DTMF in SIP INFO ------------------------------------------------------------------------------------

_EVENTS = {"10": "*", "11": "#", "12": "A", "13": "B", "14": "C", "15": "D"}
_DIGITS = frozenset("0123456789*#ABCD")
_MAX_DTMF_MS = 60_000


def _digit(text: str) -> str | None:
    text = text.strip().upper()
    if text in _EVENTS:
        return _EVENTS[text]
    return text if len(text) == 1 and text in _DIGITS else None


def dtmf_relay(body: bytes) -> tuple[str, int] | None:
    """(digit, duration in ms) from an INFO body, `application/dtmf-relay` ("Signal=5\\r\\nDuration=160")
    or `application/dtmf` ("5"); None when it is neither (see the module docstring)."""
    if len(body) > 1024:
        return None
    try:
        text = body.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    if "=" not in text:
        digit = _digit(text)
        return (digit, DEFAULT_DTMF_MS) if digit else None
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, eq, value = line.partition("=")
        if not eq:
            return None
        fields.setdefault(key.strip().lower(), value.strip())
    digit = _digit(fields.get("signal", ""))
    if digit is None:
        return None
    duration = fields.get("duration")
    if duration is None:
        return digit, DEFAULT_DTMF_MS
    if not (duration.isdigit() and duration.isascii()) or len(duration) > 6 or int(duration) > _MAX_DTMF_MS:
        return None
    return digit, int(duration)
