"""RTP (RFC 3550), telephone-events (RFC 4733) and RTCP sender/receiver reports: pure functions
and a small receive-statistics object, no sockets.

Receive statistics follow RFC 3550 appendix A.1 (sequence numbers extended with a cycle count,
expected = highest - base + 1, lost = expected - received) without the probation and resync
steps, and A.8 for the interarrival jitter (J += (|D| - J) / 16, in timestamp units; reported in
ms as J / 8 at 8 kHz). Telephone-event packets do not feed the jitter: all packets of one event
carry the event's start timestamp.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass

RTP_HEADER = struct.Struct("!BBHII")
EVENT = struct.Struct("!BBH")
MASK32 = 0xFFFFFFFF
CLOCK = 8000  # G.711 and telephone-event at 8 kHz

DTMF_CODES = "0123456789*#ABCD"  # RFC 4733 event numbers 0..15
NTP_EPOCH_OFFSET = 2208988800


def build_header(pt: int, seq: int, ts: int, ssrc: int, marker: bool = False) -> bytes:
    return RTP_HEADER.pack(0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & MASK32, ssrc)


@dataclass
class RtpPacket:
    pt: int
    marker: bool
    seq: int
    ts: int
    ssrc: int
    payload: bytes


def parse(data: bytes) -> RtpPacket:
    """Parse one RTP packet (CSRCs, a header extension and padding are skipped); ValueError if it is not RTP."""
    n = len(data)
    if n < 12 or data[0] >> 6 != 2:
        raise ValueError("not an RTP packet")
    b0, b1, seq, ts, ssrc = RTP_HEADER.unpack_from(data)
    off = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:
        if n < off + 4:
            raise ValueError("truncated header extension")
        off += 4 + 4 * struct.unpack_from("!H", data, off + 2)[0]
    if b0 & 0x20 and n > off:
        n -= data[n - 1]
    if off > n:
        raise ValueError("truncated RTP packet")
    return RtpPacket(b1 & 0x7F, bool(b1 & 0x80), seq, ts, ssrc, bytes(data[off:n]))


def build_event(code: int, end: bool, volume: int, duration: int) -> bytes:
    """One RFC 4733 telephone-event payload: event, E bit + volume (0..63, -dBm0), duration (samples)."""
    return EVENT.pack(code, (0x80 if end else 0) | (volume & 0x3F), min(duration, 0xFFFF))


def parse_event(payload: bytes) -> tuple[int, bool, int, int]:
    """(event, end, volume, duration) of a telephone-event payload; ValueError if shorter than 4 bytes."""
    if len(payload) < 4:
        raise ValueError("telephone-event payload shorter than 4 bytes")
    code, flags, duration = EVENT.unpack_from(payload)
    return code, bool(flags & 0x80), flags & 0x3F, duration


def event_packets(code: int, duration_ms: int, volume: int = 10, interval: int = 160) -> list[tuple[bool, bytes]]:
    """The payloads of one DTMF key press sent as RFC 4733 events: (marker, payload), one per 20 ms.

    Start/update packets with a growing duration every `interval` samples, then the end packet
    three times (same timestamp, same final duration), as RFC 4733 2.5.1.4 recommends."""
    n = max(1, round(duration_ms * CLOCK / 1000 / interval))
    out = [(k == 0, build_event(code, False, volume, (k + 1) * interval)) for k in range(n)]
    final = build_event(code, True, volume, n * interval)
    out += [(False, final)] * 3
    return out


class ReceiveStats:
    """Per-leg inbound figures: packets, bytes, loss (RFC 3550 A.1) and jitter (A.8)."""

    __slots__ = (
        "packets",
        "bytes",
        "base_seq",
        "max_seq",
        "cycles",
        "jitter",
        "_transit",
        "ssrc",
        "expected_prior",
        "received_prior",
    )

    def __init__(self) -> None:
        self.packets = 0
        self.bytes = 0
        self.base_seq = -1
        self.max_seq = 0
        self.cycles = 0
        self.jitter = 0.0  # timestamp units
        self._transit: float | None = None
        self.ssrc = 0
        self.expected_prior = 0
        self.received_prior = 0

    def update(self, seq: int, ts: int, arrival: float, nbytes: int, audio: bool = True) -> None:
        """Count one packet; `arrival` in seconds (any monotonic clock)."""
        self.packets += 1
        self.bytes += nbytes
        if self.base_seq < 0:
            self.base_seq = self.max_seq = seq
        else:
            delta = (seq - self.max_seq) & 0xFFFF
            if 0 < delta < 0x8000:  # in order (maybe after a gap)
                if seq < self.max_seq:
                    self.cycles += 0x10000
                self.max_seq = seq
        if audio:
            transit = arrival * CLOCK - ts
            if self._transit is not None:
                d = abs(transit - self._transit)
                if d < 0x80000000:  # a timestamp jump (new source) is not jitter
                    self.jitter += (d - self.jitter) / 16
            self._transit = transit

    def restart_transit(self) -> None:
        self._transit = None

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return 0 if self.base_seq < 0 else self.extended_max - self.base_seq + 1

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.packets)

    @property
    def jitter_ms(self) -> float:
        return self.jitter * 1000 / CLOCK

    def report_interval(self) -> tuple[int, int]:
        """(fraction lost 0..255, cumulative lost) for an RTCP report block; starts a new interval."""
        expected, received = self.expected, self.packets
        exp_int = expected - self.expected_prior
        rec_int = received - self.received_prior
        self.expected_prior, self.received_prior = expected, received
        lost_int = exp_int - rec_int
        fraction = 0 if exp_int <= 0 or lost_int <= 0 else min(255, (lost_int << 8) // exp_int)
        return fraction, self.lost


# --- RTCP ---------------------------------------------------------------------------------------


def ntp_now() -> tuple[int, int]:
    t = time.time() + NTP_EPOCH_OFFSET
    sec = int(t)
    return sec & MASK32, int((t - sec) * (1 << 32)) & MASK32


@dataclass
class ReportBlock:
    ssrc: int
    fraction_lost: int
    cumulative_lost: int
    highest_seq: int
    jitter: int
    lsr: int = 0
    dlsr: int = 0

    def pack(self) -> bytes:
        lost = self.cumulative_lost & 0xFFFFFF
        return struct.pack(
            "!IIIIII",
            self.ssrc,
            (self.fraction_lost << 24) | lost,
            self.highest_seq & MASK32,
            self.jitter & MASK32,
            self.lsr,
            self.dlsr,
        )


def build_report(ssrc: int, block: ReportBlock | None, sender: tuple[int, int] | None) -> bytes:
    """An SR (when `sender` = (packet count, octet count) is given) or an RR, with 0 or 1 report block."""
    blocks = block.pack() if block else b""
    rc = 1 if block else 0
    if sender is not None:
        msw, lsw = ntp_now()
        body = struct.pack("!IIIIII", ssrc, msw, lsw, 0, sender[0] & MASK32, sender[1] & MASK32) + blocks
        pt = 200
    else:
        body = struct.pack("!I", ssrc) + blocks
        pt = 201
    length = (4 + len(body)) // 4 - 1
    return struct.pack("!BBH", 0x80 | rc, pt, length) + body


def parse_rtcp(data: bytes) -> list[dict]:
    """The SR and RR packets of a compound RTCP packet as dictionaries (other types are skipped)."""
    out: list[dict] = []
    i = 0
    while i + 4 <= len(data):
        b0, pt, length = struct.unpack_from("!BBH", data, i)
        if b0 >> 6 != 2:
            raise ValueError("not RTCP")
        end = i + 4 * (length + 1)
        if end > len(data):
            raise ValueError("truncated RTCP packet")
        rc = b0 & 0x1F
        if pt in (200, 201) and end - i >= 8:
            report: dict = {"type": "SR" if pt == 200 else "RR", "ssrc": struct.unpack_from("!I", data, i + 4)[0]}
            j = i + 8
            if pt == 200:
                if end - i < 28:
                    raise ValueError("truncated SR")
                msw, lsw, _rtp_ts, pkts, octets = struct.unpack_from("!IIIII", data, j)
                report.update({"ntp-middle": ((msw & 0xFFFF) << 16) | (lsw >> 16), "packets": pkts, "octets": octets})
                j += 20
            blocks = []
            for _ in range(rc):
                if j + 24 > end:
                    break
                ssrc, fl, hs, jit, lsr, dlsr = struct.unpack_from("!IIIIII", data, j)
                lost = fl & 0xFFFFFF
                if lost & 0x800000:
                    lost -= 0x1000000
                blocks.append(
                    {
                        "ssrc": ssrc,
                        "fraction-lost": fl >> 24,
                        "packets-lost": lost,
                        "highest-seq": hs,
                        "jitter": jit,
                        "lsr": lsr,
                        "dlsr": dlsr,
                    }
                )
                j += 24
            report["blocks"] = blocks
            out.append(report)
        i = end
    return out
