"""SIP messages, sans I/O (RFC 3261 §7): `parse(bytes) -> Message`, `Message.to_bytes()`.

No sockets here: the transports hand bytes in and take bytes out, so this is tested and
fuzzed on its own (tests/unit/sip/test_message.py, and the RFC 4475 torture messages in
tests/unit/sip/test_torture.py).

Parsing is built for speed: the work per message is a handful of C-level string operations and
a fixed number of Python steps per header line.

* The header section is decoded once and split into lines with `str.split`; folded lines are
  joined only when a line starts with SP/HTAB. Header names are canonicalised through a dict
  cache (compact forms, any letter case, whitespace before the colon), and whole header lines seen
  before (most of a phone's lines repeat from one message to the next) are found in a bounded dict
  of line -> (name, value) instead of being split again (`_LINES`).
* Values are kept as the text received (without surrounding LWS); nothing is parsed into objects.
  What a message's validity depends on (start line, Via, From, To, Contact, Call-ID, CSeq) is
  checked by ONE match of a compiled grammar over those values joined with newlines; only when
  it fails does `_explain` check them one by one to say why. Max-Forwards and Content-Length are
  checked as numbers.
* A Via, Route or Record-Route line carrying several comma-separated values stays one line until
  someone asks: `get_all`/`get` split it on demand, and `Message.headers` (a real list that
  callers read, append to and reassign) is materialised with one entry per value on first use.

What counts as malformed (each case is in the RFC 4475 tests): a start line other than exactly
`Method SP Request-URI SP SIP/2.0` or `SIP/2.0 SP 1xx-6xx [SP reason]`; a SIP Request-URI with
headers; no Via, From, To, Call-ID or CSeq; two of From, To, Call-ID, CSeq, Max-Forwards,
Content-Length or Content-Type; Via, From, To or Contact outside their grammar (RFC 3261 §25.1;
unquoted UTF-8 display names are tolerated); a CSeq above 2**32-1, or whose method differs from
the request's (methods are case-sensitive and kept as sent); Max-Forwards above 255; a
Content-Length that is not a number or exceeds the body. Other headers (Date, Expires, ...) are
kept as received for whoever reads them.

Malformed input raises `ParseError`, whose `status` is the response a request deserves (400,
505 for another SIP version, 513 when too large). `salvage` then recovers what that response
needs (request line, Via, From, To, Call-ID, CSeq), or None when no response is possible
(responses, ACK, no Via or CSeq, not SIP at all)."""

from __future__ import annotations

import re
from typing import NoReturn

from switchboard.sip.rand import token_hex

COMPACT = {
    "v": "Via",
    "f": "From",
    "t": "To",
    "i": "Call-ID",
    "m": "Contact",
    "l": "Content-Length",
    "c": "Content-Type",
    "k": "Supported",
    "s": "Subject",
    "e": "Content-Encoding",
    "o": "Event",
    "u": "Allow-Events",
    "r": "Refer-To",
    "b": "Referred-By",
    "x": "Session-Expires",
}
_CANON = {
    n.lower(): n
    for n in (
        *COMPACT.values(),
        "CSeq",
        "Max-Forwards",
        "WWW-Authenticate",
        "Authorization",
        "Expires",
        "User-Agent",
        "Allow",
        "Accept",
        "Server",
        "Record-Route",
        "Route",
        "Proxy-Authenticate",
        "Proxy-Authorization",
    )
}
MAX_MESSAGE = 65_535
REASONS = {
    100: "Trying",
    180: "Ringing",
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    420: "Bad Extension",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    483: "Too Many Hops",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "Version Not Supported",
}

_MAX_CSEQ = 2**32 - 1  # RFC 3261 §8.1.1.5: a 32-bit unsigned integer
_MULTI = frozenset({"Via", "Route", "Record-Route"})  # comma-separated lists split into one entry each
_SINGLE = frozenset({"From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Length", "Content-Type"})
_REQUIRED = ("From", "To", "Call-ID", "CSeq")  # and at least one Via
_SALVAGED = frozenset({"Via", "From", "To", "Call-ID", "CSeq"})

# --- grammar (RFC 3261 §25.1) as regular expressions over unfolded header values ---------------------------
# Possessive quantifiers (*+, ++) and unrolled quoted strings keep Python's backtracking engine from
# saving states it will never use. No piece matches a newline, so pieces can be joined with "\n" and a
# whole message checked in one call (see _REQUEST_RE).
_TOKEN_CHARS = r"A-Za-z0-9.!%*_+`'~\-"
_TOKEN = rf"[{_TOKEN_CHARS}]++"
_WS = r"[ \t]*+"
_QUOTED = r'"[^"\\\n]*+(?:\\.[^"\\\n]*+)*+"'
# gen-value = token / host / quoted-string; token characters plus ":" "[" "]" covers IPv4, IPv6 and names
_GEN_VALUE = rf"(?:[{_TOKEN_CHARS}:\[\]]++|{_QUOTED})"
_PARAMS = rf"(?:{_WS};{_WS}{_TOKEN}(?:{_WS}={_WS}{_GEN_VALUE}?)?)*+"  # an empty value is tolerated
# display-name: quoted-string, or tokens separated by LWS; a token character class that also takes
# UTF-8 text (phones send it unquoted) but no separator (RFC 4475 baddn)
_DISPLAY_CHAR = r'[^\x00-\x20\x7f()<>@,;:\\"/\[\]?={}]'
_DISPLAY = rf"(?:{_QUOTED}|{_DISPLAY_CHAR}++(?:[ \t]++{_DISPLAY_CHAR}++)*+)"
_NAME_ADDR = rf"(?:{_DISPLAY}{_WS})?<[!-;=?-~]++>"  # no LWS inside the brackets (RFC 4475 badaspec)
_ADDR_SPEC = r"[A-Za-z][A-Za-z0-9+.\-]*+:[!#-+\--:=@-~]++"  # no ; , ? " < >: those need the <> form (§20.10)
_ADDR = rf"{_WS}(?:{_NAME_ADDR}|{_ADDR_SPEC}){_PARAMS}{_WS}"
_CONTACTS = rf"{_WS}\*{_WS}|{_ADDR}(?:,{_ADDR})*+"
_VIA_PARM = (
    rf"{_WS}{_TOKEN}{_WS}/{_WS}{_TOKEN}{_WS}/{_WS}{_TOKEN}[ \t]++(?:\[[0-9A-Fa-f:.]++\]|[A-Za-z0-9.\-]++)"
    rf"(?:{_WS}:{_WS}[0-9]{{1,5}})?{_PARAMS}{_WS}"
)
_VIAS = rf"{_VIA_PARM}(?:,{_VIA_PARM})*+"
_CALL_ID = r"[!-~]++"  # word ["@" word]: printable ASCII without LWS
# Request-Line: Method SP Request-URI SP SIP-Version and nothing more (RFC 4475 lwsstart, lwsruri, trws);
# the URI without SP, <, >, " or controls (ltgtruri)
_REQUEST_LINE = rf"(?P<method>{_TOKEN}) (?P<uri>[A-Za-z][A-Za-z0-9+.\-]*+:[!#-;=?-~]++) (?i:SIP/2\.0)"
_STATUS_LINE = r"(?i:SIP/2\.0) (?P<status>[1-6][0-9][0-9])(?: (?P<reason>[^\n]*+))?+"

# The whole check of a message in one match, on "\n".join of: start line, From, To, Call-ID, CSeq, the
# Vias (joined with ","), the Contacts (joined with ",", or "\n" when there is none). The CSeq method
# of a request must be its method (RFC 4475 mismatch01/02). When it fails, _explain says why.
_TAIL = rf"\n{_ADDR}\n{_ADDR}\n{_CALL_ID}\n{_WS}(?P<cseq>[0-9]{{1,32}})[ \t]++"
_REQUEST_RE = re.compile(rf"{_REQUEST_LINE}{_TAIL}(?P=method){_WS}\n{_VIAS}\n(?:\n|{_CONTACTS})")
_RESPONSE_RE = re.compile(rf"{_STATUS_LINE}{_TAIL}(?P<cmethod>{_TOKEN}){_WS}\n{_VIAS}\n(?:\n|{_CONTACTS})")

_ADDR_RE = re.compile(_ADDR)
_CONTACT_RE = re.compile(_CONTACTS)
_VIA_RE = re.compile(_VIAS)
_CALL_ID_RE = re.compile(_CALL_ID)
_TOKEN_RE = re.compile(_TOKEN)
_CSEQ_RE = re.compile(rf"{_WS}([0-9]{{1,32}})[ \t]++({_TOKEN}){_WS}")
_REQUEST_LINE_RE = re.compile(_REQUEST_LINE)
_STATUS_LINE_RE = re.compile(_STATUS_LINE)
_VERSION_RE = re.compile(r"SIP/[0-9]{1,5}\.[0-9]{1,5}", re.IGNORECASE)
_SPECIALS = re.compile(r'[,"<>\\]')
_CONTENT_LENGTH_RE = re.compile(rb"\n(?:content-length|l)[ \t]*:((?:[^\r\n]|\r?\n[ \t])*)", re.IGNORECASE)


class ParseError(ValueError):
    """Malformed SIP. `status`: what a request that failed this way deserves, where an answer is
    possible (400 Bad Request; 505 Version Not Supported; 513 Message Too Large)."""

    def __init__(self, message: str = "", status: int = 400):
        super().__init__(message)
        self.status = status


_NAMES: dict[str, str] = {}  # name as given to canonical() -> canonical name
_WIRE_NAMES: dict[str, str] = {}  # header name as received (up to the colon, validated) -> canonical name
_NAMES_MAX = 4096  # names from the wire must not grow the caches without bound


def canonical(name: str) -> str:
    try:
        return _NAMES[name]
    except KeyError:
        pass
    n = name.strip()
    low = n.lower()
    if low in COMPACT:
        out = COMPACT[low]
    else:
        out = _CANON.get(low) or "-".join(p[:1].upper() + p[1:].lower() for p in n.split("-"))
    if len(_NAMES) < _NAMES_MAX:
        _NAMES[name] = out
    return out


class _Folded(Exception):
    """A line starting with SP/HTAB: the message folds header lines (parse then unfolds and retries)."""


def _header_name(raw: str, colon: str = ":") -> str:
    """The canonical name of a header line's name part (which may end in SP/HTAB), or ParseError."""
    if raw[:1] in (" ", "\t"):
        raise _Folded
    name = raw.rstrip(" \t")
    if not colon or not _TOKEN_RE.fullmatch(name):
        raise ParseError(f"bad header line {raw[:80]!r}")
    out = canonical(name)
    if len(_WIRE_NAMES) < _NAMES_MAX:
        _WIRE_NAMES[raw] = out
    return out


def _split_list(value: str) -> list[str]:
    """The comma-separated values of one header line (commas inside quotes or <> do not count)."""
    if '"' not in value and "<" not in value:
        parts = value.split(",")
    else:
        parts, start, quoted, angle, skip = [], 0, False, False, -1
        for m in _SPECIALS.finditer(value):
            i = m.start()
            if i == skip:
                continue
            ch = value[i]
            if quoted:
                if ch == "\\":
                    skip = i + 1
                elif ch == '"':
                    quoted = False
            elif angle:
                angle = ch != ">"
            elif ch == '"':
                quoted = True
            elif ch == "<":
                angle = True
            elif ch == ",":
                parts.append(value[start:i])
                start = i + 1
        parts.append(value[start:])
    return [p for p in (p.strip(" \t") for p in parts) if p]


def _expand(raw: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for n, v in raw:
        if n in _MULTI and "," in v:
            out += [(n, p) for p in _split_list(v)]
        else:
            out.append((n, v))
    return out


class Message:
    """One SIP request (`method`, `uri`) or response (`status`, `reason`).

    `headers` is a list of (canonical name, value), one entry per value for Via, Route and
    Record-Route; callers may read it, append to it and reassign it. A parsed message that still
    has comma-joined lists keeps them in `_raw` until `headers` is first used."""

    # slots for speed; __dict__ keeps the dataclass this was compatible: callers may add attributes
    __slots__ = ("method", "uri", "status", "reason", "body", "_headers", "_raw", "_cseq", "__dict__")

    def __init__(
        self,
        method: str | None = None,
        uri: str | None = None,
        status: int | None = None,
        reason: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ):
        self.method = method  # request: INVITE, OPTIONS, ...
        self.uri = uri  # request: Request-URI
        self.status = status  # response: 200, ...
        self.reason = reason  # response: reason phrase
        self._headers: list[tuple[str, str]] | None = [] if headers is None else headers
        self._raw: list[tuple[str, str]] | None = None
        self._cseq: tuple[str, str, str] | None = None  # parse: (CSeq value, its number, its method), checked
        self.body = body

    @property
    def headers(self) -> list[tuple[str, str]]:
        h = self._headers
        if h is None:
            h = self._headers = _expand(self._raw or [])
            self._raw = None
        return h

    @headers.setter
    def headers(self, value: list[tuple[str, str]]) -> None:
        self._headers = value
        self._raw = None

    def __repr__(self) -> str:
        return (
            f"Message(method={self.method!r}, uri={self.uri!r}, status={self.status!r}, "
            f"reason={self.reason!r}, headers={self.headers!r}, body={self.body!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return (self.method, self.uri, self.status, self.reason, self.body, self.headers) == (
            other.method,
            other.uri,
            other.status,
            other.reason,
            other.body,
            other.headers,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it replaces

    @property
    def is_request(self) -> bool:
        return self.method is not None

    def get(self, name: str, default: str | None = None) -> str | None:
        key = _NAMES.get(name) or canonical(name)
        h = self._headers
        if h is not None:
            for n, v in h:
                if n == key:
                    return v
            return default
        for n, v in self._raw or ():
            if n == key:
                if key in _MULTI and "," in v:
                    parts = _split_list(v)
                    if not parts:
                        continue
                    return parts[0]
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        key = _NAMES.get(name) or canonical(name)
        h = self._headers
        if h is not None:
            return [v for n, v in h if n == key]
        if key not in _MULTI:
            return [v for n, v in self._raw or () if n == key]
        out: list[str] = []
        for n, v in self._raw or ():
            if n == key:
                if "," in v:
                    out += _split_list(v)
                else:
                    out.append(v)
        return out

    def set(self, name: str, value: str) -> None:
        key = canonical(name)
        self.headers = [(n, v) for n, v in self.headers if n != key]
        self.headers.append((key, value))

    @property
    def cseq(self) -> tuple[int, str]:
        raw = self.get("CSeq") or ""
        known = self._cseq
        if known is not None and known[0] is raw:  # the value parse checked (not replaced since)
            return int(known[1]), known[2]
        m = _CSEQ_RE.fullmatch(raw)
        if m is None or len(m.group(1).lstrip("0")) > 10 or int(m.group(1)) > _MAX_CSEQ:
            raise ParseError(f"bad CSeq {raw[:80]!r}")
        return int(m.group(1)), m.group(2)

    def to_bytes(self) -> bytes:
        if self.method is not None:
            first = f"{self.method} {self.uri} SIP/2.0\r\n"
        else:
            first = f"SIP/2.0 {self.status} {self.reason or REASONS.get(self.status or 0, '')}\r\n"
        return f"{first}{header_lines(self.headers)}Content-Length: {len(self.body)}\r\n\r\n".encode() + self.body


def header_lines(headers: list[tuple[str, str]]) -> str:
    """Header lines as sent, CRLF-terminated; without Content-Length (the serialiser adds its own)."""
    return "".join([f"{n}: {v}\r\n" for n, v in headers if n != "Content-Length"])


def _unfold(lines: list[str]) -> list[str]:
    """Join continuation lines (starting with SP or HTAB) to the header line they continue."""
    out = [lines[0]]
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if len(out) == 1:
                raise ParseError("continuation line without a header")
            out[-1] = out[-1].rstrip(" \t") + " " + line.strip(" \t")
        else:
            out.append(line)
    return out


def _number(value: str, what: str, limit: int) -> int:
    """1*DIGIT (ASCII) no larger than `limit`; leading zeros allowed (RFC 4475 wsinv)."""
    digits = value.lstrip("0") or "0"  # (int() refuses strings of more than 4300 digits)
    if not (value.isdigit() and value.isascii()) or len(digits) > 10 or int(digits) > limit:
        raise ParseError(f"bad {what} {value[:40]!r}")
    return int(digits)


def _head_and_body(data: bytes) -> tuple[bytes, bytes]:
    """Split at the first empty line, CRLF CRLF or (bare-LF messages) LF LF."""
    end = data.find(b"\r\n\r\n")
    lf = data.find(b"\n\n", 0, end if end >= 0 else len(data))
    if lf >= 0:
        return data[:lf], data[lf + 2 :]
    if end >= 0:
        return data[:end], data[end + 4 :]
    return data, b""


def _split(data: bytes) -> tuple[list[str], bytes]:
    """The header section's lines (start line first) and the octets after it."""
    end = data.find(b"\r\n\r\n")
    try:
        text = (data[:end] if end >= 0 else data).decode()
    except UnicodeDecodeError:
        text = None  # maybe a bare-LF message with a binary body
    if text is not None:
        lines = text.split("\r\n")
        if "\n" not in "".join(lines):  # CRLF line ends only: the common case (a join is cheaper than a count)
            if end >= 0:
                return lines, data[end + 4 :]
            if len(lines) > 1 and not lines[-1]:
                lines.pop()  # no empty line after the headers, and nothing follows them
            return lines, b""
    head, body = _head_and_body(data)
    try:
        text = head.decode()
    except UnicodeDecodeError:
        raise ParseError("headers are not UTF-8") from None
    lines = text.replace("\r\n", "\n").split("\n")
    if len(lines) > 1 and not lines[-1]:
        lines.pop()
    return lines, body


# Header lines as received -> (canonical name, value): most lines of a message are the same text as in the
# messages before it (Max-Forwards, Expires, User-Agent, Content-Length, and a phone's To and Contact from one
# refresh to the next), so a line is split and its name checked once, then found by one dict lookup. Lines
# that are new in every message (Via: its branch; CSeq; credentials; From: its tag) are not kept, nor long
# lines; the cache starts again when full, so input from the wire cannot grow it without bound. Call-ID is
# not kept either: a phone may reuse its own at its next refresh, minutes later, but under load the lines
# kept meanwhile fill the cache first, and a line kept for nothing makes it start again sooner (measured with
# sipp's new Call-ID and From per call: the cache emptied every ~4,000 REGISTERs, losing every To and Contact).
_LINES: dict[str, tuple[str, str]] = {}
_LINES_MAX = 8192
_LINE_KEPT_MAX = 200  # characters
_NOT_KEPT = frozenset({"Via", "CSeq", "Authorization", "Proxy-Authorization", "From", "Call-ID"})


def _header_line(line: str) -> tuple[str, str]:
    """(canonical name, value) of one header line that `_LINES` does not have, or ParseError / _Folded."""
    n, c, v = line.partition(":")
    item = ((_WIRE_NAMES.get(n) if c else None) or _header_name(n, c), v.strip(" \t"))
    if len(line) <= _LINE_KEPT_MAX and item[0] not in _NOT_KEPT:
        if len(_LINES) >= _LINES_MAX:
            _LINES.clear()
        _LINES[line] = item
    return item


def _header_list(lines: list[str]) -> list[tuple[str, str]]:
    known = _LINES.get
    return [known(line) or _header_line(line) for line in lines]


def parse(data: bytes) -> Message:
    """One SIP message from a datagram or a `frame`d stream chunk; ParseError when malformed.

    Octets after the Content-Length body are ignored (RFC 3261 §18.3; RFC 4475 dblreq)."""
    headers, first, m, body, joined = checked(data)
    msg = Message.__new__(Message)
    if m.re is _RESPONSE_RE:
        msg.method = msg.uri = None
        msg.status, msg.reason = int(m["status"]), (m["reason"] or "").strip(" \t")
        cmethod = m["cmethod"]
    else:
        cmethod, uri = m.group("method", "uri")  # a request's CSeq method is its method
        msg.method, msg.uri = cmethod, uri
        msg.status = msg.reason = None
    msg._cseq = (first.get("CSeq") or "", m["cseq"], cmethod)  # for Message.cseq
    msg.body = body
    if joined:
        msg._headers, msg._raw = None, headers
    else:
        msg._headers, msg._raw = headers, None
    return msg


Checked = tuple[list[tuple[str, str]], dict[str, str], re.Match[str], bytes, bool]


def checked(data: bytes) -> Checked:
    """What `parse` makes a Message of, every check of a message passed (ParseError otherwise):

    - the header lines, (canonical name, value) in order;
    - name -> value: the first value of each name;
    - the grammar's match over the start line and the headers it checks (groups `method`, `uri` of a
      request; `status`, `reason`, `cmethod` of a response; `cseq`, the CSeq number);
    - the body (Content-Length octets);
    - whether a Via, Route or Record-Route line holds several comma-separated values.

    For a reader that needs a few values and no Message (the stateless answer to an OPTIONS)."""
    if len(data) > MAX_MESSAGE:
        raise ParseError("message too large", 513)
    if data[:1] in (b"\r", b"\n"):  # RFC 3261 §7.5: ignore CRLFs before the start line
        data = data.lstrip(b"\r\n")
    lines, body = _split(data)
    try:
        headers = _header_list(lines[1:])
    except _Folded:
        lines = _unfold(lines)
        headers = _header_list(lines[1:])

    first = dict(headers)  # name -> value (the last one, but no name is there twice...)
    if len(first) == len(headers):  # ...in the common case
        vias = first.get("Via", "")
        contacts = first.get("Contact", "\n")
        joined = "," in vias or "," in first.get("Route", "") or "," in first.get("Record-Route", "")
    else:
        first = dict(reversed(headers))  # name -> first value
        names = [n for n, _ in headers]
        for name in _SINGLE.intersection(first):
            if names.count(name) > 1:
                raise ParseError(f"more than one {name}")
        vias = ",".join([v for n, v in headers if n == "Via"])
        contacts = ",".join([v for n, v in headers if n == "Contact"]) if "Contact" in first else "\n"
        joined = any("," in v for n, v in headers if n in _MULTI)

    start = lines[0]
    response = start[:4].upper() == "SIP/"
    get = first.get
    check = "\n".join([start, get("From", ""), get("To", ""), get("Call-ID", ""), get("CSeq", ""), vias, contacts])
    m = (_RESPONSE_RE if response else _REQUEST_RE).fullmatch(check)
    if m is None:
        _explain(start, first, vias, contacts)
    if not response:
        uri = m["uri"]
        if "?" in uri:
            _check_uri_headers(uri)
    number = m["cseq"]  # at most 32 digits
    if len(number) > 9 and (len(number.lstrip("0")) > 10 or int(number) > _MAX_CSEQ):
        raise ParseError(f"bad CSeq {first['CSeq'][:80]!r}")  # RFC 4475 scalar02, scalarlg
    value = get("Max-Forwards")
    if value is not None and not (len(value) < 3 and value.isdigit() and value.isascii()):
        _number(value, "Max-Forwards", 255)
    value = get("Content-Length")
    if value is not None:
        if len(value) < 6 and value.isdigit() and value.isascii():
            n = int(value)
        else:
            n = _number(value, "Content-Length", MAX_MESSAGE)
        if n != len(body):
            if n > len(body):
                raise ParseError("body shorter than Content-Length")  # RFC 4475 clerr
            body = body[:n]
    return headers, first, m, body, joined


def _check_uri_headers(uri: str) -> None:
    if uri[: uri.find(":")].lower() in ("sip", "sips") and "?" in uri[uri.find("@") + 1 :]:
        raise ParseError("headers in the Request-URI")  # RFC 3261 §19.1.1; RFC 4475 escruri


def _explain(start: str, first: dict[str, str], vias: str, contacts: str) -> NoReturn:
    """Raise the ParseError saying why the one-call check of a message failed."""
    method = _start_line(start)
    if not vias:
        raise ParseError("missing Via")
    for name in _REQUIRED:
        if name not in first:
            raise ParseError(f"missing {name}")
    if not _VIA_RE.fullmatch(vias):
        raise ParseError(f"bad Via {vias[:80]!r}")
    for name in ("From", "To"):
        if not _ADDR_RE.fullmatch(first[name]):
            raise ParseError(f"bad {name} {first[name][:80]!r}")
    if contacts != "\n" and not _CONTACT_RE.fullmatch(contacts):
        raise ParseError(f"bad Contact {contacts[:80]!r}")
    if not _CALL_ID_RE.fullmatch(first["Call-ID"]):
        raise ParseError(f"bad Call-ID {first['Call-ID'][:80]!r}")
    m = _CSEQ_RE.fullmatch(first["CSeq"])
    if m is None:
        raise ParseError(f"bad CSeq {first['CSeq'][:80]!r}")
    if method is not None and m.group(2) != method:
        raise ParseError("CSeq method differs from the request method")  # RFC 4475 mismatch01/02
    raise ParseError("malformed message")


def _start_line(line: str) -> str | None:
    """The method of a valid Request-Line, None for a valid Status-Line; else ParseError saying why."""
    m = _REQUEST_LINE_RE.fullmatch(line)
    if m is not None:
        return m["method"]
    if _STATUS_LINE_RE.fullmatch(line):
        return None
    if not line:
        raise ParseError("empty message")
    parts = line.split(" ")
    if len(parts) == 3 and line[:4].upper() != "SIP/":  # say what is wrong with this Request-Line
        method, uri, version = parts
        if version.upper() != "SIP/2.0" and _VERSION_RE.fullmatch(version):
            raise ParseError(f"unsupported version {version[:20]!r}", 505)  # RFC 4475 badvers
        if version.upper() == "SIP/2.0":
            if not _TOKEN_RE.fullmatch(method):
                raise ParseError(f"bad method {method[:40]!r}")
            raise ParseError(f"bad Request-URI {uri[:80]!r}")
    raise ParseError(f"bad start line {line[:80]!r}")


def salvage(data: bytes) -> Message | None:
    """Best effort, for a request `parse` refused: its request line and its Via, From, To,
    Call-ID and CSeq values as received, enough for `response_to(msg, 400)`. None where no
    response is possible: a response, an ACK, no request line ending in a SIP version, no Via
    (nowhere to send it) or no CSeq (the client could not match it). Never raises."""
    try:
        return _salvage(bytes(data[:MAX_MESSAGE]))
    except (ParseError, ValueError, TypeError):
        return None


def _salvage(data: bytes) -> Message | None:
    head, _ = _head_and_body(data.lstrip(b"\r\n"))
    lines = head.decode("utf-8", "replace").replace("\r\n", "\n").split("\n")
    parts = lines[0].split()
    if len(parts) < 3 or not _VERSION_RE.match(parts[-1]) or not _TOKEN_RE.fullmatch(parts[0]):
        return None  # not a request line (a response, or not SIP)
    if parts[0] == "ACK":
        return None  # never answered (RFC 3261 §17.2.3)
    kept: list[tuple[str, str]] = []
    seen: set[str] = set()
    last = None  # index in `kept` of the header a continuation line would extend
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if last is not None:
                kept[last] = (kept[last][0], (kept[last][1] + " " + line.strip()).strip())
            continue
        last = None
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not _TOKEN_RE.fullmatch(name):
            continue
        cname = canonical(name)
        if cname in _SALVAGED and (cname == "Via" or cname not in seen):  # one of each but Via: the first
            seen.add(cname)
            last = len(kept)
            kept.append((cname, value.strip()))
    if "Via" not in seen or "CSeq" not in seen:
        return None
    return Message(method=parts[0], uri="".join(parts[1:-1]), headers=kept)


def frame(buffer: bytes) -> tuple[bytes, bytes] | None:
    """Stream framing (TCP): one whole message off the front of `buffer`, by Content-Length,
    and the rest; None while more bytes are needed. Raises ParseError on a hopeless stream."""
    stripped = buffer.lstrip(b"\r\n")  # keep-alive CRLFs between messages
    end = stripped.find(b"\r\n\r\n")
    if end < 0:
        if len(stripped) > MAX_MESSAGE:
            raise ParseError("header section too large", 513)
        return None
    length = None
    for m in _CONTENT_LENGTH_RE.finditer(stripped, 0, end + 2):
        value = b"".join(m.group(1).split())
        digits = value.lstrip(b"0") or b"0"
        if not value.isdigit() or len(digits) > 10:  # bytes.isdigit: ASCII digits only
            raise ParseError("bad Content-Length")
        if length is not None and int(digits) != length:
            raise ParseError("conflicting Content-Length")
        length = int(digits)
    total = end + 4 + (length or 0)
    if total > MAX_MESSAGE:
        raise ParseError("message too large", 513)
    if len(stripped) < total:
        return None
    return stripped[:total], stripped[total:]


def new_tag() -> str:
    return token_hex(6)  # 48 random bits (RFC 3261 §19.3 asks for at least 32)


_ECHOED = {"Via": 0, "From": 1, "To": 2, "Call-ID": 3, "CSeq": 4}  # copied into a response, in this order


def response_to(
    req: Message,
    status: int,
    reason: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    to_tag: str | None = None,
) -> Message:
    """A response echoing the request's Via, From, To (+ tag), Call-ID and CSeq (§8.2.6)."""
    groups: tuple[list, ...] = ([], [], [], [], [])
    echoed = _ECHOED.get
    for item in req.headers:  # one pass, each value in its group
        i = echoed(item[0])
        if i is not None:
            groups[i].append(item)
    vias, froms, tos, call_ids, cseqs = groups
    if status > 100:
        for j, (n, v) in enumerate(tos):
            if ";tag=" not in v and ";tag=" not in v.replace(" ", ""):
                tos[j] = (n, f"{v};tag={to_tag or new_tag()}")
    out = vias + froms + tos + call_ids + cseqs
    if headers:
        out += headers
    msg = _new_message(Message)  # Message(status=..., ...) without the keyword call
    msg.method = msg.uri = msg._raw = msg._cseq = None
    msg.status, msg.reason, msg._headers, msg.body = status, reason or REASONS.get(status, ""), out, body
    return msg


_new_message = Message.__new__
