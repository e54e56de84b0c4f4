"""One VoIP test against an endpoint: `count` SIP OPTIONS `interval_ms` apart, then the figures.

`run_test` sends each OPTIONS as its own transaction (own Call-ID, branch and From tag, CSeq 1, no
retransmission) from one UDP socket, matches answers by Call-ID (any status code counts, duplicates and
strangers are ignored) and hands the round-trip times to `summarize`, which is pure:

* loss % = 100 · (sent - received) / sent; an answer later than `timeout` after its request is a loss;
* RTT min / avg / max over the answered requests;
* jitter: the RFC 3550 §6.4.1 interarrival jitter estimator J += (|D| - J) / 16, where D is the
  difference between two successive RTTs of answered requests (the RTT series stands in for the
  transit times: their difference is the same D); J starts at 0, so a short series under-reads;
* MOS from the G.107 E-model (`switchboard.probe.emodel.mos`) for the test's codec; 1.0 when nothing
  was answered.

Scale: many tests share one event loop. Each test costs one socket, one timer handle at a time (sends
are chained at absolute times start + i·interval, so a late callback never delays the ones after it),
and per answer a bytes regex for the Call-ID plus a dict lookup (no full SIP parse); building a request
costs about 10 µs.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import secrets
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from switchboard.probe.emodel import codec_factors, mos
from switchboard.sip.message import Message, new_tag
from switchboard.sip.transaction import new_branch

DEFAULT_PORT = 5060
_CALL_ID_RE = re.compile(rb"\n(?:call-id|i)[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r?\n", re.IGNORECASE)


@dataclass
class TestResult:
    """The figures of one test run (times in milliseconds; None where nothing was answered)."""

    __test__ = False  # not a pytest test class

    packets_sent: int
    packets_received: int
    loss_pct: float
    rtt_min_ms: float | None
    rtt_avg_ms: float | None
    rtt_max_ms: float | None
    jitter_ms: float | None
    mos: float
    tested_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    error: str | None = None


def rfc3550_jitter(values: list[float]) -> float:
    """RFC 3550 §6.4.1 interarrival jitter over a series (J += (|D| - J)/16, D = successive difference)."""
    j = 0.0
    for prev, cur in zip(values, values[1:], strict=False):
        j += (abs(cur - prev) - j) / 16.0
    return j


def summarize(
    rtts_ms: list[float | None],
    codec: str,
    *,
    tested_at: datetime | None = None,
    error: str | None = None,
) -> TestResult:
    """Figures for a series of round-trip times in send order (None = no answer)."""
    codec_factors(codec)  # an unknown codec is an error even when every request was lost
    sent = len(rtts_ms)
    got = [r for r in rtts_ms if r is not None]
    when = tested_at or datetime.now(UTC)
    loss = 100.0 * (sent - len(got)) / sent if sent else 100.0
    if not got:
        return TestResult(sent, 0, loss, None, None, None, None, 1.0, when, error)
    avg = sum(got) / len(got)
    jitter = rfc3550_jitter(got)
    score = mos(rtt_ms=avg, jitter_ms=jitter, loss_pct=loss, codec=codec)
    return TestResult(sent, len(got), loss, min(got), avg, max(got), jitter, score, when, error)


def split_target(target: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """ "host", "host:port", "1.2.3.4:5060", "[::1]:5062" or a bare IPv6 address -> (host, port)."""
    t = target.strip()
    if t.startswith("["):
        host, sep, rest = t[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"bad target {target!r}")
        return host, int(rest[1:]) if rest else default_port
    if t.count(":") == 1:
        host, port = t.split(":")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"bad port in {target!r}")
        return host, int(port)
    if not t:
        raise ValueError("empty target")
    return t, default_port


class _Probe(asyncio.DatagramProtocol):
    """Sends the requests of one test and collects the answers (all callbacks on the loop)."""

    def __init__(self, count: int, interval: float, timeout: float, make_request, addr) -> None:
        self.count = count
        self.interval = interval
        self.timeout = timeout
        self.make_request = make_request
        self.addr = addr
        self.sent_at: dict[bytes, tuple[int, float]] = {}  # Call-ID -> (index, perf_counter at send)
        self.rtts: list[float | None] = [None] * count
        self.pending = 0
        self.sent = 0
        self.error: str | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.loop = asyncio.get_running_loop()
        self.done = self.loop.create_future()
        self.handle: asyncio.TimerHandle | None = None
        self.start = 0.0

    def connection_made(self, transport) -> None:
        self.transport = transport

    def begin(self) -> None:
        self.start = self.loop.time()
        self._send()

    def _send(self) -> None:
        i = self.sent
        call_id, data = self.make_request()
        self.sent_at[call_id] = (i, time.perf_counter())
        self.pending += 1
        self.sent = i + 1
        self.transport.sendto(data, self.addr)  # an OSError here goes to error_received
        if self.sent < self.count:
            self.handle = self.loop.call_at(self.start + self.sent * self.interval, self._send)
        else:
            self.handle = self.loop.call_later(self.timeout, self._finish)

    def datagram_received(self, data: bytes, addr) -> None:
        now = time.perf_counter()
        if not data.startswith(b"SIP/2.0 "):
            return
        m = _CALL_ID_RE.search(data)
        if m is None:
            return
        entry = self.sent_at.pop(m.group(1), None)
        if entry is None:
            return  # a duplicate, a late answer to an earlier test, or a stranger
        rtt = now - entry[1]
        if rtt <= self.timeout:
            self.rtts[entry[0]] = rtt * 1000.0
        self.pending -= 1
        if self.pending == 0 and self.sent == self.count:
            self._finish()

    def error_received(self, exc: Exception) -> None:
        if self.error is None:
            self.error = f"{type(exc).__name__}: {exc}"

    def _finish(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
        if not self.done.done():
            self.done.set_result(None)

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()


def _uri_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _local_ip(family: int, addr) -> str:
    """The source address the kernel would use towards addr (a UDP connect sends nothing)."""
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.connect(addr)
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1" if family == socket.AF_INET else "::1"


async def run_test(
    host: str,
    port: int = DEFAULT_PORT,
    *,
    count: int,
    interval_ms: int,
    codec: str,
    timeout: float = 2.0,
    local_host: str = "0.0.0.0",
) -> TestResult:
    """Send `count` OPTIONS to host:port `interval_ms` apart and summarise the answers.

    Never raises for network trouble: a name that does not resolve, or a socket that cannot be opened,
    gives a result with `error` set, nothing sent and 100% loss. Returns once every request is answered,
    or `timeout` seconds after the last send."""
    codec_factors(codec)
    tested_at = datetime.now(UTC)
    rtts, error = await measure_rtts(
        host, port, count=count, interval_ms=interval_ms, timeout=timeout, local_host=local_host
    )
    return summarize(rtts, codec, tested_at=tested_at, error=error)


async def measure_rtts(
    host: str,
    port: int = DEFAULT_PORT,
    *,
    count: int,
    interval_ms: float,
    timeout: float = 2.0,
    local_host: str = "0.0.0.0",
) -> tuple[list[float | None], str | None]:
    """The raw series behind `run_test`: per request in send order its RTT in ms (None: no answer within
    `timeout`), and the first network error (then the list is empty if nothing could be sent)."""
    if count < 1:
        raise ValueError("count must be >= 1")
    if interval_ms < 0 or timeout <= 0:
        raise ValueError("interval_ms must be >= 0 and timeout > 0")
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM, proto=socket.IPPROTO_UDP)
    except (OSError, UnicodeError) as exc:
        return [], f"cannot resolve {host!r}: {exc}"
    family, _, _, _, addr = infos[0]
    bind_host = local_host
    if family == socket.AF_INET6 and local_host == "0.0.0.0":
        bind_host = "::"
    try:
        wildcard = ipaddress.ip_address(bind_host).is_unspecified
    except ValueError:
        wildcard = False
    via_host = _uri_host(_local_ip(family, addr) if wildcard else bind_host)
    uri = f"sip:{_uri_host(host)}:{port}" if port != DEFAULT_PORT else f"sip:{_uri_host(host)}"
    sent_by = via_host  # completed with the local port once the socket is bound

    def make_request() -> tuple[bytes, bytes]:
        call_id = f"{secrets.token_hex(10)}@{via_host}"
        msg = Message(
            method="OPTIONS",
            uri=uri,
            headers=[
                ("Via", f"SIP/2.0/UDP {sent_by};branch={new_branch()};rport"),
                ("Max-Forwards", "70"),
                ("From", f"<sip:probe@{via_host}>;tag={new_tag()}"),
                ("To", f"<{uri}>"),
                ("Call-ID", call_id),
                ("CSeq", "1 OPTIONS"),
                ("Accept", "application/sdp"),
                ("User-Agent", "switchboard-probe"),
            ],
        )
        return call_id.encode(), msg.to_bytes()

    try:
        transport, probe = await loop.create_datagram_endpoint(
            lambda: _Probe(count, interval_ms / 1000.0, timeout, make_request, addr),
            local_addr=(bind_host, 0),
            family=family,
        )
    except OSError as exc:
        return [], f"cannot open a UDP socket: {exc}"
    sent_by = f"{via_host}:{transport.get_extra_info('sockname')[1]}"
    try:
        probe.begin()
        await probe.done
    finally:
        probe.cancel()
        transport.close()
    return probe.rtts, probe.error
