"""SIP messages, sans I/O (RFC 3261 §7): `parse(bytes) -> Message`, `Message.to_bytes()`.

No sockets here: the transports hand bytes in and take bytes out, so this is tested and
fuzzed on its own."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

COMPACT = {"v": "Via", "f": "From", "t": "To", "i": "Call-ID", "m": "Contact", "l": "Content-Length",
           "c": "Content-Type", "k": "Supported", "s": "Subject", "e": "Content-Encoding", "o": "Event",
           "u": "Allow-Events", "r": "Refer-To", "b": "Referred-By", "x": "Session-Expires"}
_CANON = {n.lower(): n for n in (*COMPACT.values(), "CSeq", "Max-Forwards", "WWW-Authenticate",
                                 "Authorization", "Expires", "User-Agent", "Allow", "Accept", "Server",
                                 "Record-Route", "Route", "Proxy-Authenticate", "Proxy-Authorization")}
MAX_MESSAGE = 65_535
_DIGITS = re.compile(r"[0-9]{1,10}")
REASONS = {100: "Trying", 180: "Ringing", 200: "OK", 400: "Bad Request", 401: "Unauthorized",
           403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
           420: "Bad Extension", 423: "Interval Too Brief", 480: "Temporarily Unavailable",
           481: "Call/Transaction Does Not Exist", 483: "Too Many Hops", 486: "Busy Here",
           487: "Request Terminated", 488: "Not Acceptable Here", 500: "Server Internal Error",
           501: "Not Implemented", 503: "Service Unavailable", 505: "Version Not Supported"}


class ParseError(ValueError):
    pass


def canonical(name: str) -> str:
    n = name.strip()
    low = n.lower()
    if low in COMPACT:
        return COMPACT[low]
    return _CANON.get(low) or "-".join(p[:1].upper() + p[1:].lower() for p in n.split("-"))


@dataclass
class Message:
    method: str | None = None       # request: INVITE, OPTIONS, ...
    uri: str | None = None          # request: Request-URI
    status: int | None = None       # response: 200, ...
    reason: str | None = None       # response: reason phrase
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return self.method is not None

    def get(self, name: str, default: str | None = None) -> str | None:
        key = canonical(name)
        for n, v in self.headers:
            if n == key:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        key = canonical(name)
        return [v for n, v in self.headers if n == key]

    def set(self, name: str, value: str) -> None:
        key = canonical(name)
        self.headers = [(n, v) for n, v in self.headers if n != key]
        self.headers.append((key, value))

    @property
    def cseq(self) -> tuple[int, str]:
        raw = self.get("CSeq") or ""
        num, _, method = raw.strip().partition(" ")
        if not _DIGITS.fullmatch(num) or not method.strip():
            raise ParseError(f"bad CSeq {raw!r}")
        return int(num), method.strip().upper()

    def to_bytes(self) -> bytes:
        if self.is_request:
            first = f"{self.method} {self.uri} SIP/2.0"
        else:
            first = f"SIP/2.0 {self.status} {self.reason or REASONS.get(self.status or 0, '')}"
        lines = [first]
        lines += [f"{n}: {v}" for n, v in self.headers if n != "Content-Length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body


def _split_values(name: str, value: str) -> list[str]:
    """Via and Contact may carry several comma-separated values in one header line."""
    if name not in ("Via", "Route", "Record-Route") or "," not in value:
        return [value]
    out, depth, cur = [], 0, []
    for ch in value:
        if ch in '<"':
            depth ^= 1 if ch == '"' else 0
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur).strip())
    return [v for v in out if v]


def parse(data: bytes) -> Message:
    if len(data) > MAX_MESSAGE:
        raise ParseError("message too large")
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("headers are not UTF-8") from None
    raw_lines = text.replace("\r\n", "\n").split("\n")
    while raw_lines and not raw_lines[0].strip():  # RFC 3261 §7.5: ignore leading CRLFs
        raw_lines.pop(0)
    if not raw_lines:
        raise ParseError("empty message")
    first, lines = raw_lines[0].strip(), []
    for line in raw_lines[1:]:
        if line[:1] in (" ", "\t") and lines:  # folded header continuation
            lines[-1] += " " + line.strip()
        elif line.strip():
            lines.append(line)
    msg = Message()
    parts = first.split(" ", 2)
    if first.startswith("SIP/"):
        if len(parts) < 2 or parts[0] != "SIP/2.0" or not _DIGITS.fullmatch(parts[1]) or len(parts[1]) != 3:
            raise ParseError(f"bad status line {first!r}")
        msg.status, msg.reason = int(parts[1]), parts[2] if len(parts) > 2 else ""
    else:
        if len(parts) != 3 or parts[2] != "SIP/2.0" or not parts[0].isalpha() or not parts[1]:
            raise ParseError(f"bad request line {first!r}")
        msg.method, msg.uri = parts[0].upper(), parts[1]
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name.strip() or " " in name.strip():
            raise ParseError(f"bad header line {line!r}")
        cname = canonical(name)
        for v in _split_values(cname, value.strip()):
            msg.headers.append((cname, v))
    for required in ("Via", "From", "To", "Call-ID", "CSeq"):
        if msg.get(required) is None:
            raise ParseError(f"missing {required}")
    msg.cseq  # noqa: B018 - validates the CSeq header
    length = msg.get("Content-Length")
    if length is not None:
        if not _DIGITS.fullmatch(length.strip()):
            raise ParseError("bad Content-Length")
        n = int(length)
        if n > len(body):
            raise ParseError("body shorter than Content-Length")
        body = body[:n]
    msg.body = body
    return msg


def frame(buffer: bytes) -> tuple[bytes, bytes] | None:
    """Stream framing (TCP): one whole message off the front of `buffer`, by Content-Length,
    and the rest; None while more bytes are needed. Raises ParseError on a hopeless stream."""
    stripped = buffer.lstrip(b"\r\n")  # keep-alive CRLFs between messages
    end = stripped.find(b"\r\n\r\n")
    if end < 0:
        if len(stripped) > MAX_MESSAGE:
            raise ParseError("header section too large")
        return None
    length = 0
    for line in stripped[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"content-length", b"l"):
            if not _DIGITS.fullmatch(value.strip().decode("latin-1")):
                raise ParseError("bad Content-Length")
            length = int(value.strip())
    total = end + 4 + length
    if total > MAX_MESSAGE:
        raise ParseError("message too large")
    if len(stripped) < total:
        return None
    return stripped[:total], stripped[total:]


def new_tag() -> str:
    return secrets.token_hex(6)


def response_to(req: Message, status: int, reason: str | None = None,
                headers: list[tuple[str, str]] | None = None, body: bytes = b"",
                to_tag: str | None = None) -> Message:
    """A response echoing the request's Via, From, To (+ tag), Call-ID and CSeq (§8.2.6)."""
    out = Message(status=status, reason=reason or REASONS.get(status, ""))
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        for v in req.get_all(name):
            if name == "To" and status > 100 and ";tag=" not in v.replace(" ", ""):
                v = f"{v};tag={to_tag or new_tag()}"
            out.headers.append((name, v))
    out.headers += headers or []
    out.body = body
    return out
