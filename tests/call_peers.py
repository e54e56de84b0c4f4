"""Real peers for the call e2e tests: a minimal SIP phone with RTP media written here from plain
text and sockets (`Phone`), sipp as a callee or an authenticating caller (`SippUasCall`,
e2e/sipp/call_*.xml), and baresip playing a WAV file (`BaresipPhone`).

`Phone` shares no code with switchboard's SIP stack (not even its digest): a bug there must not be
able to hide itself by being on both ends of the wire. It is deliberately small: UDP only, one
dialog per Call, RFC 3261 transactions reduced to what a loopback test needs (retransmission with
T1 doubling, ACK of 2xx and non-2xx, answering retransmitted requests from a cache).

Every socket binds port 0 and reads back the port it got; sipp and baresip are started the same way
and the ports they bound are read from /proc (see `udp_ports`), so no free-port guess can be taken by
another process before the peer binds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import re
import secrets
import signal
import socket
import struct
import subprocess
import threading
import time
import warnings
import wave
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

with warnings.catch_warnings():  # G.711 by the standard library (3.11, 3.12): no codec package to trust
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

from tests.sip_peers import (
    BARESIP_MODULES,
    SIPP_DIR,
    SipMessage,
    SippResult,
    _screen_counter,
    run_sipp,
    stop_process,
    which,
)

T1 = 0.5  # RFC 3261 timer T1: the first retransmission interval over UDP
T2 = 4.0  # the cap of a non-INVITE request's retransmission interval
RATE = 8000  # G.711 and telephone-event clock rate
PTIME = 0.02  # 20 ms packets
SAMPLES = int(RATE * PTIME)  # 160 samples a packet
CODECS = {"PCMU": 0, "PCMA": 8}
PT_NAMES = {0: "PCMU", 8: "PCMA"}
DTMF_PT = 101
DTMF_EVENTS = "0123456789*#ABCD"  # RFC 4733 event codes 0..15


# ---- small helpers ---------------------------------------------------------------------------------
def udp_ports(pid: int, host: str | None = None) -> list[int]:
    """The local ports of the UDP/IPv4 sockets a process holds (bound to `host` when given), in the
    order of its file descriptors, i.e. the order it opened them. It is how we learn which port sipp
    or baresip got when started on port 0 (neither prints it)."""
    inodes: dict[int, int] = {}
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes[int(link[8:-1])] = int(fd)
    found: list[tuple[int, int]] = []
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            cols = line.split()
            addr, port = cols[1].split(":")
            inode = int(cols[9])
            if inode not in inodes:
                continue
            ip = socket.inet_ntoa(struct.pack("<I", int(addr, 16)))
            if host is None or ip == host:
                found.append((inodes[inode], int(port, 16)))
    return [port for _, port in sorted(found)]


def _wait(check, timeout: float, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        if (value := check()) or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def uri_addr(value: str, default_port: int = 5060) -> tuple[str, int]:
    """(host, port) of the first SIP URI in a header value or a bare URI."""
    m = re.search(r"sips?:(?:[^@;>\s]*@)?(\[[^\]]+\]|[^:;>\s]+)(?::(\d+))?", value)
    if not m:
        raise ValueError(f"no SIP URI in {value!r}")
    return m.group(1).strip("[]"), int(m.group(2) or default_port)


def uri_of(value: str) -> str:
    """The URI in a name-addr (`"x" <sip:a@b>;tag=..` -> sip:a@b) or the value itself."""
    m = re.search(r"<([^>]+)>", value)
    return m.group(1) if m else value.split(";")[0].strip()


def tag_of(value: str | None) -> str | None:
    m = re.search(r";\s*tag=([^;\s>]+)", value or "")
    return m.group(1) if m else None


def cseq_of(msg: SipMessage) -> tuple[int, str]:
    num, _, method = (msg.get("CSeq") or "0 ?").partition(" ")
    return int(num), method.strip()


# ---- digest (RFC 2617 / 7616 MD5, written here: independent of switchboard.sip.digest) ---------------
def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def parse_challenge(value: str) -> dict[str, str]:
    """The parameters of a `Digest k="v", k=v` header value (keys lower-cased)."""
    _, _, params = value.partition(" ")
    pairs = re.findall(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))', params)
    return {k.lower(): quoted or bare for k, quoted, bare in pairs}


def digest_response(
    user: str,
    password: str,
    realm: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None,
    nc: str = "",
    cnonce: str = "",
) -> str:
    ha1, ha2 = _md5(f"{user}:{realm}:{password}"), _md5(f"{method}:{uri}")
    if qop:
        return _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _md5(f"{ha1}:{nonce}:{ha2}")


def digest_authorization(challenges: Iterable[str], method: str, uri: str, user: str, password: str) -> str:
    """An Authorization value answering the MD5 challenge among `challenges` (qop=auth when offered)."""
    chosen = None
    for value in challenges:
        params = parse_challenge(value)
        if value.lower().startswith("digest") and params.get("algorithm", "MD5").upper() == "MD5":
            chosen = params
            break
    if chosen is None:
        raise AssertionError(f"no MD5 digest challenge in {list(challenges)!r}")
    qops = [q.strip() for q in chosen.get("qop", "").split(",") if q.strip()]
    qop = "auth" if "auth" in qops else None
    nc, cnonce = "00000001", secrets.token_hex(8)
    response = digest_response(user, password, chosen["realm"], method, uri, chosen["nonce"], qop, nc, cnonce)
    parts = [
        f'username="{user}"',
        f'realm="{chosen["realm"]}"',
        f'nonce="{chosen["nonce"]}"',
        f'uri="{uri}"',
        f'response="{response}"',
        "algorithm=MD5",
    ]
    if qop:
        parts += [f'cnonce="{cnonce}"', f"qop={qop}", f"nc={nc}"]
    if "opaque" in chosen:
        parts.append(f'opaque="{chosen["opaque"]}"')
    return "Digest " + ", ".join(parts)


def digest_check(authorization: str | None, method: str, user: str, password: str, realm: str) -> bool:
    """Whether an Authorization value proves `password` for `user` (the server side, for a Phone that
    challenges its callers)."""
    if not authorization or not authorization.lower().startswith("digest"):
        return False
    p = parse_challenge(authorization)
    if p.get("username") != user or p.get("realm") != realm:
        return False
    expected = digest_response(
        user,
        password,
        realm,
        method,
        p.get("uri", ""),
        p.get("nonce", ""),
        p.get("qop"),
        p.get("nc", ""),
        p.get("cnonce", ""),
    )
    return p.get("response") == expected


# ---- SDP -----------------------------------------------------------------------------------------
@dataclass
class Sdp:
    """The parts of an SDP body a test looks at (the first audio stream)."""

    address: str | None
    port: int
    payloads: list[int]
    rtpmap: dict[int, str]
    direction: str

    @classmethod
    def parse(cls, body: str) -> Sdp | None:
        if "m=audio" not in body:
            return None
        address, port, payloads, rtpmap, direction = None, 0, [], {}, "sendrecv"
        in_audio = False
        for line in body.replace("\r\n", "\n").split("\n"):
            line = line.strip()
            if line.startswith("m="):
                if in_audio:
                    break
                fields = line[2:].split()
                in_audio = fields[0] == "audio"
                if in_audio:
                    port, payloads = int(fields[1]), [int(p) for p in fields[3:] if p.isdigit()]
            elif line.startswith("c=") and (in_audio or address is None):
                address = line.split()[-1].split("/")[0]
            elif in_audio and line.startswith("a=rtpmap:"):
                pt, _, name = line[9:].partition(" ")
                rtpmap[int(pt)] = name.split("/")[0]
            elif in_audio and line[2:] in ("sendrecv", "sendonly", "recvonly", "inactive"):
                direction = line[2:]
        return cls(address, port, payloads, rtpmap, direction)

    def name(self, pt: int) -> str:
        return self.rtpmap.get(pt) or PT_NAMES.get(pt, str(pt))

    @property
    def codec(self) -> str | None:
        """The first audio codec of the stream (the one an answerer chose)."""
        for pt in self.payloads:
            if self.name(pt).lower() != "telephone-event":
                return self.name(pt)
        return None

    @property
    def dtmf_pt(self) -> int | None:
        return next((pt for pt in self.payloads if self.name(pt).lower() == "telephone-event"), None)


def make_sdp(
    host: str,
    port: int,
    codecs: Iterable[str] = ("PCMU",),
    direction: str = "sendrecv",
    version: int = 1,
    dtmf_pt: int | None = DTMF_PT,
) -> str:
    pts = [CODECS[c] for c in codecs]
    lines = [
        "v=0",
        f"o=phone 4242 {version} IN IP4 {host}",
        "s=-",
        f"c=IN IP4 {host}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {' '.join(map(str, pts + ([dtmf_pt] if dtmf_pt is not None else [])))}",
    ]
    lines += [f"a=rtpmap:{pt} {PT_NAMES[pt]}/8000" for pt in pts]
    if dtmf_pt is not None:
        lines += [f"a=rtpmap:{dtmf_pt} telephone-event/8000", f"a=fmtp:{dtmf_pt} 0-16"]
    lines += ["a=ptime:20", f"a={direction}"]
    return "\r\n".join(lines) + "\r\n"


_ANSWER_DIRECTION = {"sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive", "sendrecv": "sendrecv"}


# ---- audio ---------------------------------------------------------------------------------------
def tone_pcm(freq_hz: float, seconds: float, amplitude: int = 8000, start_sample: int = 0) -> bytes:
    """16-bit mono PCM at 8 kHz of a sine."""
    n = int(round(seconds * RATE))
    t = (np.arange(n) + start_sample) / RATE
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype("<i2").tobytes()


def encode(pcm: bytes, codec: str) -> bytes:
    return audioop.lin2ulaw(pcm, 2) if codec == "PCMU" else audioop.lin2alaw(pcm, 2)


def decode(payload: bytes, codec: str) -> bytes:
    return audioop.ulaw2lin(payload, 2) if codec == "PCMU" else audioop.alaw2lin(payload, 2)


def dominant_frequency(pcm: bytes, rate: int = RATE) -> float:
    """The frequency (Hz) of the strongest component of 16-bit mono PCM (0.0 for silence or
    nothing): a Hann-windowed FFT, refined by parabolic interpolation between bins."""
    x = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float64)
    if len(x) < 64 or not np.any(x):
        return 0.0
    spectrum = np.abs(np.fft.rfft((x - x.mean()) * np.hanning(len(x))))
    k = int(np.argmax(spectrum[1:]) + 1)
    if 1 <= k < len(spectrum) - 1:
        a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-12)
        k += 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) else 0.0
    return float(k * rate / len(x))


def rms(pcm: bytes) -> float:
    return float(audioop.rms(pcm, 2)) if pcm else 0.0


def make_tone_wav(path: Path, freq: float, seconds: float, amplitude: int = 8000) -> Path:
    """A WAV file of a sine: 8 kHz, 16-bit, mono (what baresip's aufile source needs)."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(tone_pcm(freq, seconds, amplitude))
    return path


def write_sipp_tone(workdir: Path, freq: float = 1000.0, seconds: float = 1.0, name: str = "call_tone.wav") -> Path:
    """The µ-law WAV (format 7) sipp's `rtp_stream` plays as payload type 0: call_uac_auth.xml plays
    `call_tone.wav` from sipp's working directory (run_sipp's `workdir`)."""
    data = encode(tone_pcm(freq, seconds), "PCMU")
    fmt = struct.pack("<HHIIHHH", 7, 1, RATE, RATE, 1, 8, 0)
    fact = struct.pack("<I", len(data))
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"fact" + struct.pack("<I", 4) + fact
    body += b"data" + struct.pack("<I", len(data)) + data
    path = workdir / name
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def read_wav_pcm(path: Path) -> bytes:
    """The frames of a 16-bit mono WAV file."""
    with wave.open(str(path), "rb") as w:
        return w.readframes(w.getnframes())


# ---- RTP -----------------------------------------------------------------------------------------
@dataclass
class RtpPacket:
    payload_type: int
    marker: bool
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes
    source: tuple[str, int]
    arrived: float

    @classmethod
    def parse(cls, data: bytes, source: tuple[str, int]) -> RtpPacket | None:
        if len(data) < 12 or data[0] >> 6 != 2:
            return None
        cc, has_ext, padding = data[0] & 0x0F, data[0] & 0x10, data[0] & 0x20
        offset = 12 + 4 * cc
        if has_ext and len(data) >= offset + 4:
            offset += 4 + 4 * struct.unpack("!H", data[offset + 2 : offset + 4])[0]
        end = len(data) - (data[-1] if padding else 0)
        seq, ts, ssrc = struct.unpack("!HII", data[2:12])
        return cls(data[1] & 0x7F, bool(data[1] & 0x80), seq, ts, ssrc, data[offset:end], source, time.monotonic())


@dataclass
class Received:
    """What the RTP socket got: every packet, and the audio ones (PCMU/PCMA) decoded to 16-bit PCM in
    arrival order."""

    packets: list[RtpPacket]
    pcm: bytes

    @property
    def audio(self) -> list[RtpPacket]:
        return [p for p in self.packets if p.payload_type in PT_NAMES]


class RtpSession:
    """One RTP socket (127.0.0.1 or `host`, port 0): a background thread collects what arrives; the
    send_* methods keep one outgoing stream (SSRC, sequence number, timestamp) across tones and
    DTMF, paced in real time as a phone would send it."""

    def __init__(self, host: str = "127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.host, self.port = self.sock.getsockname()
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.timestamp = random.getrandbits(32)
        self.sample = 0  # of the tone, so that consecutive tones are continuous
        self._packets: list[RtpPacket] = []
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"rtp-{self.port}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            try:
                data, source = self.sock.recvfrom(4096)
            except OSError:
                return
            if (pkt := RtpPacket.parse(data, source)) is not None:
                with self._lock:
                    self._packets.append(pkt)

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def _packet(self, pt: int, payload: bytes, marker: bool = False, timestamp: int | None = None) -> bytes:
        self.seq = (self.seq + 1) & 0xFFFF
        ts = self.timestamp if timestamp is None else timestamp
        return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, self.seq, ts & 0xFFFFFFFF, self.ssrc) + payload

    def send_tone(
        self, dest: tuple[str, int], freq_hz: float, seconds: float, codec: str = "PCMU", amplitude: int = 8000
    ) -> int:
        """A sine for `seconds` in 20 ms packets at real-time pace; returns the packets sent."""
        pt = CODECS[codec]
        count = int(round(seconds / PTIME))
        with self._send_lock:
            start = time.monotonic()
            for i in range(count):
                pcm = tone_pcm(freq_hz, PTIME, amplitude, start_sample=self.sample)
                self.sample += SAMPLES
                self.sock.sendto(self._packet(pt, encode(pcm, codec), marker=(i == 0)), dest)
                self.timestamp += SAMPLES
                delay = start + (i + 1) * PTIME - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        return count

    def send_dtmf(
        self, dest: tuple[str, int], digit: str, pt: int = DTMF_PT, seconds: float = 0.1, volume: int = 10
    ) -> int:
        """One RFC 4733 event: a start packet (marker), a continuation every 20 ms with the duration
        growing, then 3 end packets (E bit, final duration), all with the event's start timestamp;
        then 40 ms of nothing so that digits sent in a row stay distinct. Returns the packets sent."""
        event = DTMF_EVENTS.index(digit.upper())
        steps = max(1, int(round(seconds / PTIME)))
        sent = 0
        with self._send_lock:
            start_ts, start = self.timestamp, time.monotonic()
            for i in range(steps + 2):
                last = i >= steps - 1
                duration = min(i + 1, steps) * SAMPLES
                payload = struct.pack("!BBH", event, (0x80 if last else 0) | (volume & 0x3F), duration)
                self.sock.sendto(self._packet(pt, payload, marker=(i == 0), timestamp=start_ts), dest)
                sent += 1
                delay = start + (i + 1) * PTIME - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            self.timestamp = start_ts + steps * SAMPLES
            time.sleep(2 * PTIME)
            self.timestamp += 2 * SAMPLES
        return sent

    def packets(self) -> list[RtpPacket]:
        with self._lock:
            return list(self._packets)

    def clear(self) -> None:
        with self._lock:
            self._packets.clear()

    def received(self, since: float | None = None) -> Received:
        """The packets so far (those arrived after monotonic time `since`, when given), with the audio
        decoded."""
        pkts = [p for p in self.packets() if since is None or p.arrived >= since]
        pcm = b"".join(decode(p.payload, PT_NAMES[p.payload_type]) for p in pkts if p.payload_type in PT_NAMES)
        return Received(pkts, pcm)

    def rfc4733_digits(self, pt: int | None = None, since: float | None = None) -> str:
        """The digits of the RFC 4733 events received (payload type `pt`, or any dynamic one with a
        4-byte payload), one per event (SSRC and start timestamp), in order of arrival."""
        seen: dict[tuple[int, int], str] = {}
        for p in self.packets():
            if since is not None and p.arrived < since:
                continue
            if (p.payload_type == pt if pt is not None else p.payload_type >= 96) and len(p.payload) == 4:
                if p.payload[0] < len(DTMF_EVENTS):
                    seen.setdefault((p.ssrc, p.timestamp), DTMF_EVENTS[p.payload[0]])
        return "".join(seen.values())


# ---- SIP phone -----------------------------------------------------------------------------------
@dataclass
class ReferResult:
    response: SipMessage | None  # the REFER's final response (202)
    notifies: list[SipMessage]  # the NOTIFYs received (each answered 200)

    @property
    def sipfrags(self) -> list[str]:
        """The sipfrag status lines of the NOTIFYs ("SIP/2.0 100 Trying", "SIP/2.0 200 OK", ...)."""
        return [n.body.strip().split("\r\n")[0].split("\n")[0] for n in self.notifies]


@dataclass
class Call:
    """One dialog of a Phone, as caller (`role` "uac") or callee ("uas")."""

    phone: Phone
    role: str
    call_id: str
    local_tag: str
    local_uri: str
    remote_uri: str
    request_uri: str = ""
    remote_tag: str | None = None
    remote_target: str | None = None  # the peer's Contact URI
    route_set: list[str] = field(default_factory=list)
    dest: tuple[str, int] | None = None  # where the first INVITE went (and in-dialog requests when no Contact)
    local_cseq: int = 0
    status: int | None = None  # the final status of the INVITE (or the answer given, for a callee)
    responses: list[SipMessage] = field(default_factory=list)  # of the initial INVITE, provisionals included
    invite: SipMessage | None = None  # the INVITE received (a callee's Call)
    remote_sdp: Sdp | None = None
    local_direction: str = "sendrecv"
    sdp_version: int = 1
    codecs: tuple[str, ...] = ("PCMU",)
    requests: list[SipMessage] = field(default_factory=list)  # in-dialog requests received (answered)
    acked: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)  # BYE sent or received, or CANCELled
    bye_received: SipMessage | None = None
    _ack: tuple[bytes, tuple[str, int]] | None = None  # the ACK of our 2xx, resent on 2xx retransmissions

    # -- the session --
    @property
    def remote_rtp(self) -> tuple[str, int] | None:
        if self.remote_sdp is None:
            return None
        return (self.remote_sdp.address or self.phone.host, self.remote_sdp.port)

    @property
    def codec(self) -> str | None:
        return self.remote_sdp.codec if self.remote_sdp else None

    @property
    def dtmf_pt(self) -> int:
        return (self.remote_sdp.dtmf_pt if self.remote_sdp else None) or DTMF_PT

    @property
    def established(self) -> bool:
        return self.status is not None and 200 <= self.status < 300 and not self.ended.is_set()

    def local_sdp(self, direction: str | None = None) -> str:
        return make_sdp(
            self.phone.host, self.phone.rtp.port, self.codecs, direction or self.local_direction, self.sdp_version
        )

    # -- in-dialog requests --
    def _next_hop(self) -> tuple[str, int]:
        if self.route_set:
            return uri_addr(self.route_set[0])
        if self.remote_target:
            return uri_addr(self.remote_target)
        assert self.dest is not None
        return self.dest

    def _from_to(self) -> tuple[str, str]:
        return (
            f"<{self.local_uri}>;tag={self.local_tag}",
            f"<{self.remote_uri}>" + (f";tag={self.remote_tag}" if self.remote_tag else ""),
        )

    def request(
        self,
        method: str,
        headers: Iterable[tuple[str, str]] = (),
        body: str = "",
        timeout: float = 8.0,
        content_type: str | None = None,
    ) -> SipMessage | None:
        """Send an in-dialog request and return its final response (None on timeout); a 2xx to an
        INVITE is ACKed."""
        self.local_cseq += 1
        from_, to = self._from_to()
        hdrs = [("Route", f"<{r}>") for r in self.route_set] + list(headers)
        if content_type:
            hdrs.append(("Content-Type", content_type))
        if method == "INVITE":
            hdrs.append(("Contact", self.phone.contact()))
        uri = self.remote_target or self.request_uri
        data, branch = self.phone.build(method, uri, hdrs, from_, to, self.call_id, self.local_cseq, body)
        final, _ = self.phone.transaction(data, branch, method, self._next_hop(), timeout)
        if method == "INVITE" and final is not None and 200 <= (final.status or 0) < 300:
            self._send_ack(self.local_cseq)
        return final

    def _send_ack(self, cseq: int) -> None:
        from_, to = self._from_to()
        hdrs = [("Route", f"<{r}>") for r in self.route_set]
        data, _ = self.phone.build("ACK", self.remote_target or self.request_uri, hdrs, from_, to, self.call_id, cseq)
        self._ack = (data, self._next_hop())
        self.phone.send(*self._ack)

    def bye(self, timeout: float = 8.0) -> SipMessage | None:
        resp = self.request("BYE", timeout=timeout)
        self.ended.set()
        return resp

    def wait_bye(self, timeout: float = 10.0) -> SipMessage | None:
        """The BYE the peer sent (the phone answered it 200), or None after timeout."""
        self.ended.wait(timeout)
        return self.bye_received

    def reinvite(self, direction: str = "sendonly", timeout: float = 8.0) -> SipMessage | None:
        """A re-INVITE with our SDP in `direction` (sendonly: hold; sendrecv: resume); the answer's SDP
        becomes remote_sdp (its direction: `remote_sdp.direction`)."""
        self.local_direction = direction
        self.sdp_version += 1
        resp = self.request("INVITE", body=self.local_sdp(), content_type="application/sdp", timeout=timeout)
        if resp is not None and resp.status == 200 and (sdp := Sdp.parse(resp.body)):
            self.remote_sdp = sdp
        return resp

    def info_dtmf(self, digit: str, duration_ms: int = 160, timeout: float = 8.0) -> SipMessage | None:
        body = f"Signal={digit}\r\nDuration={duration_ms}\r\n"
        return self.request("INFO", body=body, content_type="application/dtmf-relay", timeout=timeout)

    def refer(self, target_uri: str, timeout: float = 10.0) -> ReferResult:
        """A blind transfer: REFER to `target_uri`; returns its final response and the NOTIFYs (sipfrags)
        received until one reports a final status or the subscription ends, or timeout."""
        before = len(self.requests)
        resp = self.request(
            "REFER", [("Refer-To", f"<{target_uri}>"), ("Referred-By", f"<{self.local_uri}>")], timeout=timeout
        )

        def notifies() -> list[SipMessage]:
            return [r for r in self.requests[before:] if r.method == "NOTIFY"]

        def done() -> bool:
            for n in notifies():
                m = re.match(r"SIP/2.0 (\d{3})", n.body.strip())
                if (m and int(m.group(1)) >= 200) or "terminated" in (n.get("Subscription-State") or ""):
                    return True
            return False

        if resp is not None and resp.status is not None and 200 <= resp.status < 300:
            _wait(done, timeout)
        return ReferResult(resp, notifies())

    def cancel(self, timeout: float = 8.0) -> SipMessage | None:
        """CANCEL the INVITE still ringing (Phone.invite); returns the CANCEL's response. The INVITE
        then ends with 487, which `wait_final` returns."""
        invite = self._pending
        assert invite is not None, "no INVITE in progress"
        data, branch, dest = invite
        text = data.decode()
        via = re.search(r"^Via: .*$", text, re.M).group(0).rstrip("\r")
        from_ = re.search(r"^From: .*$", text, re.M).group(0).rstrip("\r")
        to = re.search(r"^To: .*$", text, re.M).group(0).rstrip("\r")
        num = cseq_of(SipMessage.parse(data))[0]
        lines = [
            f"CANCEL {self.request_uri} SIP/2.0",
            via,
            "Max-Forwards: 70",
            from_,
            to,
            f"Call-ID: {self.call_id}",
            f"CSeq: {num} CANCEL",
            "Content-Length: 0",
        ]
        cancel = ("\r\n".join(lines) + "\r\n\r\n").encode()
        final, _ = self.phone.transaction(cancel, branch, "CANCEL", dest, timeout)
        return final

    _pending: tuple[bytes, str, tuple[str, int]] | None = None
    _done: threading.Event = field(default_factory=threading.Event)

    def wait_final(self, timeout: float = 32.0) -> int | None:
        """Wait for the initial INVITE's outcome (Phone.invite); returns `status`."""
        self._done.wait(timeout)
        return self.status

    # -- media (the phone's one RTP socket, towards this call's remote_rtp) --
    def send_tone(self, freq_hz: float, seconds: float, codec: str | None = None) -> int:
        assert self.remote_rtp, "no remote SDP"
        return self.phone.rtp.send_tone(self.remote_rtp, freq_hz, seconds, codec or self.codec or "PCMU")

    def send_dtmf(self, digit: str, seconds: float = 0.1) -> int:
        assert self.remote_rtp, "no remote SDP"
        return self.phone.rtp.send_dtmf(self.remote_rtp, digit, self.dtmf_pt, seconds)


class Phone:
    """A minimal SIP phone over UDP on 127.0.0.1 (or `host`), SIP and RTP each on a port 0 socket.

    A background thread reads the SIP socket: responses go to the transaction waiting for them (a
    retransmitted 2xx to an INVITE is ACKed again), new INVITEs are queued for `answer_incoming`,
    in-dialog requests are answered at once (BYE, INFO, NOTIFY, OPTIONS: 200; a re-INVITE: 200 with
    our SDP, direction mirrored) and kept in `Call.requests`; out-of-dialog OPTIONS (a registrar's
    qualify) get 200. Retransmitted requests get the same response again.

    `challenge=(user, password)` makes the phone, as a callee, answer an INVITE without valid
    credentials with 401 (digest MD5, qop=auth), like a server would."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        user: str = "phone",
        challenge: tuple[str, str] | None = None,
        realm: str = "phone.test",
    ) -> None:
        self.host, self.user = host, user
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        self.rtp = RtpSession(host)
        self.challenge, self.realm = challenge, realm
        self.calls: dict[str, Call] = {}
        self.incoming: list[SipMessage] = []  # new INVITEs not yet taken by answer_incoming
        self.log: list[tuple[str, SipMessage]] = []  # ("<", msg) received, (">", msg) sent
        self._responses: list[SipMessage] = []
        self._answered: dict[tuple[str, str], tuple[bytes, tuple[str, int]]] = {}  # (branch, method) -> response
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"phone-{self.port}", daemon=True)
        self._thread.start()

    # -- plumbing --
    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.rtp.close()

    def __enter__(self) -> Phone:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def rtp_port(self) -> int:
        return self.rtp.port

    def contact(self, user: str | None = None) -> str:
        return f"<sip:{user or self.user}@{self.host}:{self.port}>"

    def uri(self, user: str | None = None) -> str:
        """The URI that reaches this phone directly (point-to-point calls)."""
        return f"sip:{user or self.user}@{self.host}:{self.port}"

    def send(self, data: bytes, dest: tuple[str, int]) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendto(data, dest)
        self.log.append((">", SipMessage.parse(data)))

    def build(
        self,
        method: str,
        uri: str,
        headers: Iterable[tuple[str, str]],
        from_: str,
        to: str,
        call_id: str,
        cseq: int,
        body: str = "",
        branch: str | None = None,
    ) -> tuple[bytes, str]:
        branch = branch or "z9hG4bK" + secrets.token_hex(8)
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.host}:{self.port};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: {from_}",
            f"To: {to}",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method}",
            "User-Agent: call-peers-phone",
        ]
        lines += [f"{n}: {v}" for n, v in headers]
        lines.append(f"Content-Length: {len(body.encode())}")
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode(), branch

    def _run(self) -> None:
        while not self._closed:
            try:
                data, source = self.sock.recvfrom(65535)
            except OSError:
                return
            if not data.strip():
                continue  # keep-alive CRLF
            try:
                msg = SipMessage.parse(data)
                self.log.append(("<", msg))
                if msg.status is not None:
                    self._on_response(msg)
                else:
                    self._on_request(msg, source)
            except Exception as e:  # noqa: BLE001 - a malformed datagram must not kill the phone
                self.log.append(("!", SipMessage.parse(f"ERROR {e!r}".encode())))

    def _on_response(self, msg: SipMessage) -> None:
        num, method = cseq_of(msg)
        call = self.calls.get(msg.get("Call-ID") or "")
        if method == "INVITE" and call is not None and call._ack is not None and 200 <= msg.status < 300:
            if call.remote_tag == tag_of(msg.get("To")) and num == cseq_of(SipMessage.parse(call._ack[0]))[0]:
                self.send(*call._ack)  # a retransmitted 2xx: our ACK was lost
                return
        with self._cond:
            self._responses.append(msg)
            self._cond.notify_all()

    def _via_branch(self, msg: SipMessage) -> str:
        m = re.search(r"branch=([^;,\s]+)", msg.get("Via") or "")
        return m.group(1) if m else ""

    def respond(
        self,
        req: SipMessage,
        source: tuple[str, int],
        status: int,
        reason: str,
        headers: Iterable[tuple[str, str]] = (),
        body: str = "",
        to_tag: str | None = None,
    ) -> None:
        """Answer a request (Via, From, To, Call-ID, CSeq copied; the To tag added when given); the
        response goes back to the top Via's address (rport: the source)."""
        to = req.get("To") or ""
        if to_tag and tag_of(to) is None:
            to += f";tag={to_tag}"
        lines = [f"SIP/2.0 {status} {reason}"]
        lines += [f"Via: {v}" for v in req.get_all("Via")]
        lines += [f"From: {req.get('From')}", f"To: {to}", f"Call-ID: {req.get('Call-ID')}", f"CSeq: {req.get('CSeq')}"]
        lines += [f"Record-Route: {r}" for r in req.get_all("Record-Route")] if 100 < status < 300 else []
        lines += [f"{n}: {v}" for n, v in headers]
        lines.append(f"Content-Length: {len(body.encode())}")
        data = ("\r\n".join(lines) + "\r\n\r\n" + body).encode()
        self._answered[(self._via_branch(req), cseq_of(req)[1])] = (data, source)
        self.send(data, source)

    def _on_request(self, msg: SipMessage, source: tuple[str, int]) -> None:
        method, branch = msg.method, self._via_branch(msg)
        call = self.calls.get(msg.get("Call-ID") or "")
        if method == "ACK":
            if call is not None:
                call.acked.set()
            return
        if method == "CANCEL":
            self._on_cancel(msg, source, call)
            return
        if (branch, method) in self._answered:  # a retransmission: the same answer again
            self.send(*self._answered[(branch, method)])
            return
        if method == "INVITE" and call is None and tag_of(msg.get("To")) is None:
            if any(self._via_branch(m) == branch for m in self.incoming):
                return  # retransmitted while waiting in the queue
            self._on_new_invite(msg, source)
            return
        if call is None:
            if method == "OPTIONS":
                self.respond(msg, source, 200, "OK", [("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, NOTIFY")])
            else:
                self.respond(msg, source, 481, "Call/Transaction Does Not Exist")
            return
        call.requests.append(msg)
        if method == "BYE":
            call.bye_received = msg
            self.respond(msg, source, 200, "OK")
            call.ended.set()
        elif method == "INVITE":
            offer = Sdp.parse(msg.body)
            if offer is not None:
                call.remote_sdp = offer
            if contact := msg.get("Contact"):
                call.remote_target = uri_of(contact)
            direction = _ANSWER_DIRECTION.get(offer.direction if offer else "sendrecv", "sendrecv")
            call.sdp_version += 1
            self.respond(
                msg,
                source,
                200,
                "OK",
                [("Contact", self.contact()), ("Content-Type", "application/sdp")],
                call.local_sdp(direction),
            )
        else:  # INFO, NOTIFY, OPTIONS, UPDATE without SDP ...
            self.respond(msg, source, 200, "OK")

    def _on_cancel(self, msg: SipMessage, source: tuple[str, int], call: Call | None) -> None:
        branch = self._via_branch(msg)
        self.respond(msg, source, 200, "OK")
        pending = [m for m in self.incoming if self._via_branch(m) == branch]
        invite = pending[0] if pending else (call.invite if call is not None else None)
        if invite is None or (call is not None and call.status is not None and call.status >= 200):
            return
        if pending:
            with self._cond:
                self.incoming.remove(invite)
        tag = call.local_tag if call is not None else secrets.token_hex(4)
        if call is not None:  # ended before the 487 goes out: the caller may look as soon as it has it
            call.status = 487
            call.ended.set()
        self.respond(invite, source, 487, "Request Terminated", to_tag=tag)

    def _on_new_invite(self, msg: SipMessage, source: tuple[str, int]) -> None:
        if self.challenge is not None:
            user, password = self.challenge
            if not digest_check(msg.get("Authorization"), "INVITE", user, password, self.realm):
                nonce = secrets.token_hex(12)
                self.respond(
                    msg,
                    source,
                    401,
                    "Unauthorized",
                    [("WWW-Authenticate", f'Digest realm="{self.realm}", nonce="{nonce}", qop="auth", algorithm=MD5')],
                    to_tag=secrets.token_hex(4),
                )
                return
        self.respond(msg, source, 100, "Trying")
        msg.source = source  # type: ignore[attr-defined]
        with self._cond:
            self.incoming.append(msg)
            self._cond.notify_all()

    def transaction(
        self,
        data: bytes,
        branch: str,
        method: str,
        dest: tuple[str, int],
        timeout: float = 8.0,
        provisional: list[SipMessage] | None = None,
    ) -> tuple[SipMessage | None, list[SipMessage]]:
        """Send a request, retransmitting over UDP (T1 doubling; capped at T2 for non-INVITE, until
        the first response for an INVITE); returns (final response or None on timeout, provisionals)."""
        provisional: list[SipMessage] = [] if provisional is None else provisional
        deadline = time.monotonic() + timeout
        interval, next_send = T1, time.monotonic()
        while True:
            now = time.monotonic()
            if now >= deadline:
                return None, provisional
            if next_send is not None and now >= next_send:
                self.send(data, dest)
                next_send = now + interval
                interval = min(interval * 2, T2) if method != "INVITE" else interval * 2
            with self._cond:
                mine = [r for r in self._responses if branch in (r.get("Via") or "") and cseq_of(r)[1] == method]
                for r in mine:
                    self._responses.remove(r)
                if not mine:
                    wake = min(deadline, next_send) if next_send is not None else deadline
                    self._cond.wait(max(0.005, wake - time.monotonic()))
                    continue
            for r in mine:
                if r.status < 200:
                    provisional.append(r)
                    if method == "INVITE":
                        next_send = None  # a provisional response stops INVITE retransmissions
                else:
                    return r, provisional

    # -- registration --
    def register(
        self,
        server_port: int,
        user: str,
        password: str | None = None,
        expires: int = 300,
        server_host: str = "127.0.0.1",
        timeout: float = 8.0,
    ) -> SipMessage | None:
        """REGISTER user@server with this phone's SIP port as Contact (so calls to `user` reach it);
        a 401 is answered once with digest MD5. Returns the final response."""
        self.user = user
        uri, aor = f"sip:{server_host}:{server_port}", f"<sip:{user}@{server_host}>"
        call_id, tag, cseq = f"{secrets.token_hex(8)}@phone", secrets.token_hex(4), 1
        hdrs = [("Contact", self.contact(user)), ("Expires", str(expires))]
        dest = (server_host, server_port)
        data, branch = self.build("REGISTER", uri, hdrs, f"{aor};tag={tag}", aor, call_id, cseq)
        resp, _ = self.transaction(data, branch, "REGISTER", dest, timeout)
        if resp is not None and resp.status in (401, 407) and password is not None:
            name = "Authorization" if resp.status == 401 else "Proxy-Authorization"
            challenges = resp.get_all("WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate")
            auth = digest_authorization(challenges, "REGISTER", uri, user, password)
            data, branch = self.build("REGISTER", uri, hdrs + [(name, auth)], f"{aor};tag={tag}", aor, call_id, 2)
            resp, _ = self.transaction(data, branch, "REGISTER", dest, timeout)
        return resp

    # -- calls as the caller --
    def invite(
        self,
        server_port: int,
        exten: str,
        user: str | None = None,
        password: str | None = None,
        codecs: Iterable[str] = ("PCMU",),
        sdp_override: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        server_host: str = "127.0.0.1",
        timeout: float = 32.0,
    ) -> Call:
        """Start a call to `exten`@server in the background and return its Call at once (wait_final
        waits for the outcome, cancel() CANCELs it while it rings). See `call`."""
        user = user or self.user
        codecs = tuple(codecs)
        request_uri = exten if exten.startswith("sip:") else f"sip:{exten}@{server_host}:{server_port}"
        call = Call(
            self,
            "uac",
            f"{secrets.token_hex(10)}@phone",
            secrets.token_hex(4),
            f"sip:{user}@{self.host}",
            request_uri,
            request_uri,
            dest=(server_host, server_port),
            codecs=codecs,
        )
        self.calls[call.call_id] = call
        body = sdp_override if sdp_override is not None else call.local_sdp()
        threading.Thread(
            target=self._invite, args=(call, body, list(headers), password, timeout), daemon=True, name="invite"
        ).start()
        return call

    def call(
        self,
        server_port: int,
        exten: str,
        user: str | None = None,
        password: str | None = None,
        codecs: Iterable[str] = ("PCMU",),
        sdp_override: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        server_host: str = "127.0.0.1",
        timeout: float = 32.0,
    ) -> Call:
        """Call `exten` (a number at 127.0.0.1:server_port, or a full sip: URI) with an SDP offer (the
        `codecs`, telephone-event 101; `sdp_override` as the body instead) and wait for the outcome:
        a 401/407 is answered once with digest (`user`/`password`), provisional responses are
        collected, the final one is ACKed (a 2xx to its Contact through its Record-Route, an error
        in the INVITE's own transaction). `Call.status` is None when nothing final came in time."""
        call = self.invite(server_port, exten, user, password, codecs, sdp_override, headers, server_host, timeout)
        call.wait_final(timeout + 1)
        return call

    def _invite(
        self, call: Call, body: str, headers: list[tuple[str, str]], password: str | None, timeout: float
    ) -> None:
        try:
            auth: list[tuple[str, str]] = []
            deadline = time.monotonic() + timeout
            for attempt in range(2):
                call.local_cseq += 1
                hdrs = (
                    [
                        ("Contact", self.contact(call.local_uri.split(":")[1].split("@")[0])),
                        ("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, NOTIFY, REFER"),
                        ("Content-Type", "application/sdp"),
                    ]
                    + headers
                    + auth
                )
                from_ = f"<{call.local_uri}>;tag={call.local_tag}"
                data, branch = self.build(
                    "INVITE", call.request_uri, hdrs, from_, f"<{call.remote_uri}>", call.call_id, call.local_cseq, body
                )
                call._pending = (data, branch, call.dest)
                final, _ = self.transaction(
                    data, branch, "INVITE", call.dest, deadline - time.monotonic(), provisional=call.responses
                )
                if final is None:
                    return
                call.responses.append(final)
                call.status = final.status
                if final.status >= 300:
                    self._ack_error(data, final, call.dest)
                    if final.status in (401, 407) and password is not None and attempt == 0:
                        name = "Authorization" if final.status == 401 else "Proxy-Authorization"
                        challenges = final.get_all("WWW-Authenticate" if final.status == 401 else "Proxy-Authenticate")
                        user = call.local_uri[4:].split("@")[0]
                        auth = [(name, digest_authorization(challenges, "INVITE", call.request_uri, user, password))]
                        continue
                    call.ended.set()
                    return
                call.remote_tag = tag_of(final.get("To"))
                if contact := final.get("Contact"):
                    call.remote_target = uri_of(contact)
                call.route_set = [uri_of(r) for rr in reversed(final.get_all("Record-Route")) for r in rr.split(",")]
                call.remote_sdp = Sdp.parse(final.body)
                call._send_ack(call.local_cseq)
                return
        finally:
            call._pending = None
            call._done.set()

    def _ack_error(self, invite: bytes, final: SipMessage, dest: tuple[str, int]) -> None:
        """The ACK of a non-2xx final response: same Request-URI, Via (branch), From, Call-ID and CSeq
        number as the INVITE, the response's To (tag)."""
        text = invite.decode()
        first = text.split("\r\n", 1)[0].replace("INVITE", "ACK", 1)
        keep = [
            line
            for line in text.split("\r\n\r\n")[0].split("\r\n")[1:]
            if line.split(":")[0] in ("Via", "From", "Call-ID", "Max-Forwards", "Route")
        ]
        num = cseq_of(final)[0]
        lines = [first, *keep, f"To: {final.get('To')}", f"CSeq: {num} ACK", "Content-Length: 0"]
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode(), dest)

    # -- calls as the callee --
    def answer_incoming(
        self,
        timeout: float = 10.0,
        status: int = 200,
        ring: bool = True,
        codecs: Iterable[str] = ("PCMU",),
        ring_seconds: float = 0.0,
        answer: bool = True,
    ) -> Call | None:
        """Wait for an INVITE (the phone must be reachable: REGISTERed, or called at `uri()`), then
        answer: 180 (unless `ring` is False), after `ring_seconds` the final `status` (200 with our SDP
        answer, waiting for the ACK; 486 busy or any error, waiting for its ACK). `answer=False` only
        rings and returns the Call (the caller may CANCEL: the phone answers 487). None when no
        INVITE came."""
        got = _wait(lambda: self.incoming[:1], timeout)
        if not got:
            return None
        with self._cond:
            invite = self.incoming.pop(0)
        source = invite.source  # type: ignore[attr-defined]
        to_uri = uri_of(invite.get("To") or "")
        call = Call(
            self,
            "uas",
            invite.get("Call-ID") or "",
            secrets.token_hex(4),
            to_uri,
            uri_of(invite.get("From") or ""),
            request_uri=invite.first_line.split()[1],
            remote_tag=tag_of(invite.get("From")),
            remote_target=uri_of(invite.get("Contact") or ""),
            route_set=[uri_of(r) for rr in invite.get_all("Record-Route") for r in rr.split(",")],
            dest=source,
            invite=invite,
            codecs=tuple(codecs),
            local_cseq=random.randint(1, 1000),
        )
        call.remote_sdp = Sdp.parse(invite.body)
        self.calls[call.call_id] = call
        if ring:
            self.respond(invite, source, 180, "Ringing", [("Contact", self.contact())], to_tag=call.local_tag)
            call.status = 180
        if not answer:
            return call
        if ring_seconds:
            time.sleep(ring_seconds)
        if call.ended.is_set():  # CANCELled meanwhile
            return call
        if status >= 300:
            reason = {486: "Busy Here", 480: "Temporarily Unavailable", 603: "Decline"}.get(status, "Error")
            self._respond_until_ack(call, invite, source, status, reason, [], "")
            call.ended.set()
            return call
        offer = call.remote_sdp
        if offer is not None:  # answer with the first of our codecs the offer has
            names = [offer.name(pt) for pt in offer.payloads]
            call.codecs = tuple(c for c in names if c in CODECS and c in call.codecs)[:1] or call.codecs[:1]
            call.local_direction = _ANSWER_DIRECTION.get(offer.direction, "sendrecv")
        hdrs = [
            ("Contact", self.contact()),
            ("Content-Type", "application/sdp"),
            ("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, NOTIFY, REFER"),
        ]
        self._respond_until_ack(call, invite, source, 200, "OK", hdrs, call.local_sdp())
        return call

    def _respond_until_ack(
        self,
        call: Call,
        invite: SipMessage,
        source,
        status: int,
        reason: str,
        headers: list,
        body: str,
        timeout: float = 8.0,
    ) -> None:
        """A final response to an INVITE, retransmitted (T1 doubling, capped at T2) until the ACK."""
        call.status = status
        self.respond(invite, source, status, reason, headers, body, to_tag=call.local_tag)
        interval, deadline = T1, time.monotonic() + timeout
        while not call.acked.wait(min(interval, max(0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                return
            self.send(*self._answered[(self._via_branch(invite), "INVITE")])
            interval = min(interval * 2, T2)

    # -- media shortcuts (the last call's remote RTP) --
    def last_call(self) -> Call:
        return list(self.calls.values())[-1]

    def send_tone(self, freq_hz: float, seconds: float, codec: str | None = None, call: Call | None = None) -> int:
        return (call or self.last_call()).send_tone(freq_hz, seconds, codec)

    def send_dtmf(self, digit: str, codec: str | None = None, call: Call | None = None, seconds: float = 0.1) -> int:
        """An RFC 4733 digit (`codec` is accepted for symmetry with send_tone: events are codec-free)."""
        return (call or self.last_call()).send_dtmf(digit, seconds)

    def received(self, since: float | None = None) -> Received:
        return self.rtp.received(since)

    def rfc4733_digits(self, pt: int | None = None, since: float | None = None) -> str:
        return self.rtp.rfc4733_digits(pt, since)

    dominant_frequency = staticmethod(dominant_frequency)


# ---- sipp as a callee ------------------------------------------------------------------------------
@dataclass
class SippUasCall:
    """sipp answering calls in the background (e2e/sipp/call_uas.xml, or call_uas_busy.xml) on
    `host` (127.0.0.1, or another loopback address such as 127.0.0.2: Linux routes all of 127/8 to
    lo) with -rtp_echo: the RTP a caller sends comes back to it.

    Ports without a race: sipp is started with `-p 0` and no `-mp`; it then binds the first free port
    from 5060 up for SIP and from 6000 up for media (it scans rather than taking a random port, so it
    never fails with EADDRINUSE), and we read the ports it holds from /proc: the first UDP socket it
    opened on `host` is SIP (`port`), the next the media (`media_port`)."""

    workdir: Path
    scenario: str | Path = "call_uas.xml"
    host: str = "127.0.0.1"
    calls: int | None = None  # -m: exit after that many calls
    extra: tuple[str, ...] = ()
    port: int = 0
    media_port: int = 0
    proc: subprocess.Popen | None = None

    def start(self, timeout: float = 5.0) -> SippUasCall:
        scenario = Path(self.scenario)
        if not scenario.is_absolute():
            scenario = SIPP_DIR / scenario
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"sipp-uas-{scenario.stem}-{secrets.token_hex(3)}.log"
        args = [
            which("sipp") or "sipp",
            "-sf",
            str(scenario),
            "-i",
            self.host,
            "-p",
            "0",
            "-t",
            "u1",
            "-rtp_echo",
            "-nostdin",
            "-trace_err",
            "-error_file",
            str(self.log_path.with_suffix(".errors")),
        ]
        if self.calls is not None:
            args += ["-m", str(self.calls)]
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(
            args + list(self.extra), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.workdir
        )
        log.close()
        ports = _wait(lambda: (p := udp_ports(self.proc.pid, self.host)) and len(p) >= 2 and p, timeout)
        if not ports or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError(f"sipp UAS did not start: {self.log()[-3000:]}")
        self.port, self.media_port = ports[0], ports[1]
        return self

    @property
    def uri(self) -> str:
        return f"sip:{self.host}:{self.port}"

    def stop(self) -> int | None:
        return stop_process(self.proc, signal.SIGTERM, timeout=5)

    def wait(self, timeout: float = 10) -> int | None:
        """Wait for it to exit by itself (`calls` done)."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def counts(self) -> tuple[int, int]:
        """(successful, failed) calls from its last statistics screen (printed when it exits)."""
        text = self.log()
        return _screen_counter(text, "Successful call"), _screen_counter(text, "Failed call")

    def __enter__(self) -> SippUasCall:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def run_sipp_call(
    port: int,
    workdir: Path,
    exten: str,
    user: str,
    password: str,
    seconds: float = 1.5,
    freq: float = 1000.0,
    timeout: float = 15,
) -> SippResult:
    """One call of e2e/sipp/call_uac_auth.xml to `exten` at 127.0.0.1:port, authenticating as user/password,
    playing a `freq` tone (u-law) for `seconds` before its BYE. Blocks until sipp ends."""
    write_sipp_tone(workdir, freq, 1.0)
    extra = ["-s", exten, "-au", user, "-ap", password, "-d", str(int(seconds * 1000))]
    return run_sipp(port, "call_uac_auth.xml", workdir, timeout=timeout, extra=extra)


# ---- baresip for calls -----------------------------------------------------------------------------
class BaresipPhone:
    """baresip 1.0 headless in a call: its microphone is a WAV file (aufile source, 8 kHz 16-bit
    mono, e.g. from make_tone_wav), what it receives is written by the sndfile filter to
    `snd_path/dump-<time>-dec.wav` (`recorded_pcm`); baresip 1.0's aufile has no player, so this
    is the one way to record). It takes commands on stdin (the stdio UI module with menu's long
    commands: `/dial <uri>`, `/hangup`), answers incoming calls itself (answermode=auto).

    It binds SIP on port 0 (`sip_listen 127.0.0.1:0`); `port` is read from /proc once it is
    ready. With `registrar_port`, the account registers there (user/password) so that calls to
    `user` reach it; without, it is reached directly at `uri`."""

    def __init__(
        self,
        workdir: Path,
        wav: Path,
        user: str = "baresip",
        password: str | None = None,
        registrar_port: int | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.workdir, self.wav, self.user, self.host = workdir, wav, user, host
        self.password, self.registrar_port = password, registrar_port
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def account(self) -> str:
        if self.registrar_port is None:
            return f"<sip:{self.user}@{self.host}>;regint=0;answermode=auto"
        auth = f";auth_pass={self.password}" if self.password else ""
        return f"<sip:{self.user}@{self.host}:{self.registrar_port}>{auth};regint=300;answermode=auto"

    def start(self, timeout: float = 10) -> BaresipPhone:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "config").write_text(
            "poll_method\tepoll\n"
            f"sip_listen\t{self.host}:0\n"
            f"module_path\t{BARESIP_MODULES}\n"
            f"audio_source\taufile,{self.wav}\n"
            "audio_player\tnone,none\n"
            f"snd_path\t{self.workdir}\n"
            "module\tstdio.so\n"
            "module\tg711.so\n"
            "module\taufile.so\n"
            "module\tsndfile.so\n"
            "module_app\taccount.so\n"
            "module_app\tmenu.so\n"
        )
        (self.workdir / "accounts").write_text(self.account() + "\n")
        self.log_path = self.workdir / "baresip.log"
        log = open(self.log_path, "wb")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(
            [which("baresip") or "baresip", "-f", str(self.workdir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE,
            cwd=self.workdir,
        )
        log.close()
        ready = _wait(lambda: "baresip is ready" in self.log() or self.proc.poll() is not None, timeout)
        ports = _wait(lambda: udp_ports(self.proc.pid, self.host), 2)
        if not ready or self.proc.poll() is not None or not ports:
            self.stop()
            raise RuntimeError(f"baresip did not start:\n{self.log()[-3000:]}")
        self.port = ports[0]
        return self

    @property
    def uri(self) -> str:
        return f"sip:{self.user}@{self.host}:{self.port}"

    def command(self, line: str) -> None:
        """A long command to the stdio UI, e.g. `/dial sip:100@127.0.0.1:5060` or `/hangup`."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((line.rstrip("\n") + "\n").encode())
        self.proc.stdin.flush()

    def dial(self, uri: str) -> None:
        self.command(f"/dial {uri}")

    def hangup(self) -> None:
        self.command("/hangup")

    def stop(self) -> int | None:
        if self.proc is not None and self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        return stop_process(self.proc, signal.SIGTERM, timeout=5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def recordings(self) -> list[Path]:
        """The WAV files of the audio it received (one per call, by the sndfile filter)."""
        return sorted(self.workdir.glob("dump-*-dec.wav"))

    def recorded_pcm(self) -> bytes:
        """The samples of the last recording; b"" while there is none or its header is not written yet
        (sndfile completes it when the call ends)."""
        files = self.recordings()
        try:
            return read_wav_pcm(files[-1]) if files else b""
        except (wave.Error, EOFError):
            return b""

    def __enter__(self) -> BaresipPhone:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
