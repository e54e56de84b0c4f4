"""The media engine: calls, legs, the RTP relay, players, hold music, recording, RTCP.

Choices (see docs/media-protocol.md for the control side):
- One leg = one even RTP port and the RTCP port above it, both non-blocking UDP sockets read with
  `loop.add_reader` + `recvfrom_into` a buffer reused for every packet; the relay rewrites the
  header in that buffer and `sendto`s it. No task per packet, no thread per call.
- Symmetric RTP: the source of the first packet received on a leg's port becomes its remote
  address (latching), overriding the SDP address; a `leg` update that names a new remote address
  drops the latch, so a re-INVITE can move the media.
- `direction` is the leg's own SDP attribute: `sendonly` = the phone only sends (we send nothing
  to it), `recvonly` = the phone only receives (we drop what it sends), `inactive` = neither.
- What a leg receives, in order of precedence: DTMF being played to it, then its source (a file
  player or a hold-music class), then the relay (bridge peer and/or echo). Each outgoing leg keeps
  its own SSRC, and its sequence numbers and timestamps continue across a change of what feeds it
  (marker bit set on the change), so a prompt followed by the relay never jumps backwards. Within
  one relayed stream the sequence/timestamp deltas of the sender are kept, so loss stays visible.
- Telephone-events are detected per key press (one event per RTP timestamp, reported at the first
  end packet) and relayed with the payload type of the other leg (dropped if it has none).
- One `Ticker` (20 ms) drives every file player, hold-music class and DTMF sender.
- Files (recordings) are written on the loop with buffered writes: a 20 ms frame is 320 bytes.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
import socket
import struct
import time
import wave
from collections.abc import Callable
from pathlib import Path

from switchboard.media import rtp, sounds
from switchboard.media.codecs import CODECS, PCMU, Codec, transcode_table
from switchboard.media.ticker import Ticker

log = logging.getLogger(__name__)

MASK32 = 0xFFFFFFFF
HDR = struct.Struct("!BHII")  # byte 1 (marker|pt), seq, ts, ssrc: rewritten in place from offset 1
RTCP_INTERVAL = 5.0
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


class MediaError(Exception):
    """A request the engine refuses; the message becomes the reply's error-reason."""


class PortPool:
    """Even RTP ports (RTCP on port+1) from a range, handed out round-robin."""

    def __init__(self, host: str, low: int, high: int):
        if low % 2:
            low += 1
        if high - low < 1:
            raise ValueError("the RTP port range holds no even port with its RTCP port")
        self.host, self.low, self.high = host, low, high
        self._next = low + 2 * random.randrange((high - low + 1) // 2)

    def allocate(self) -> tuple[int, socket.socket, socket.socket]:
        count = (self.high - self.low + 1) // 2
        for _ in range(count):
            port = self._next
            self._next = port + 2 if port + 3 <= self.high else self.low
            if port + 1 > self.high:
                continue
            socks = []
            try:
                for p in (port, port + 1):
                    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    socks.append(s)
                    s.setblocking(False)
                    s.bind((self.host, p))
                return port, socks[0], socks[1]
            except OSError:
                for s in socks:
                    s.close()
        raise MediaError("no free RTP port in range")


class Recorder:
    """What a leg sends, decoded, to a file: .wav (8 kHz 16-bit mono), .ulaw, .alaw, .sln."""

    def __init__(self, path: str):
        self.path = path
        ext = os.path.splitext(path)[1].lower()
        if ext not in (".wav", ".ulaw", ".alaw", ".sln"):
            raise MediaError("recording format must be .wav, .ulaw, .alaw or .sln")
        self.ext = ext
        self.samples = 0
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if ext == ".wav":
            self._wav = wave.open(path, "wb")
            self._wav.setnchannels(1)
            self._wav.setsampwidth(2)
            self._wav.setframerate(8000)
        else:
            self._wav = None
            self._f = open(path, "wb")  # noqa: SIM115 - closed in close()

    def write(self, linear: bytes) -> None:
        self.samples += len(linear) // 2
        if self._wav is not None:
            self._wav.writeframesraw(linear)
        elif self.ext == ".ulaw":
            self._f.write(PCMU.encode(linear))
        elif self.ext == ".alaw":
            self._f.write(CODECS["PCMA"].encode(linear))
        else:
            self._f.write(linear)

    def close(self) -> int:
        """Close the file; the recorded duration in ms."""
        if self._wav is not None:
            self._wav.close()
        else:
            self._f.close()
        return self.samples // 8


class FilePlayer:
    """Plays prepared frames to one leg, `repeat` times, one frame per tick."""

    def __init__(self, engine: Engine, leg: Leg, frames: list[bytes], repeat: int, name: str):
        self.engine, self.leg, self.frames, self.repeat, self.name = engine, leg, frames, repeat, name
        self.pos = 0
        self.sent = 0
        self.done = False

    @property
    def duration_ms(self) -> int:
        return len(self.frames) * 20 * self.repeat

    def on_tick(self) -> bool:
        leg = self.leg
        if self.done or leg.source is not self:
            return False
        leg.send_generated(self, self.frames[self.pos], self.sent, self.sent * 160)
        self.sent += 1
        self.pos += 1
        if self.pos == len(self.frames):
            self.pos = 0
            self.repeat -= 1
            if self.repeat <= 0:
                self.finish("done")
                return False
        return True

    def finish(self, reason: str) -> None:
        if self.done:
            return
        self.done = True
        if self.leg.source is self:
            self.leg.source = None
        self.engine.emit(
            self.leg, {"event": "play-done", "file": self.name, "reason": reason, "duration": self.sent * 20}
        )


class DtmfSender:
    """Plays DTMF to a leg: RFC 4733 packets with its dtmf-payload-type, in-band tones without one."""

    def __init__(self, leg: Leg, digits: str, duration_ms: int, volume: int, pause_ms: int = 100):
        self.leg = leg
        # one entry per tick: (pt, marker, payload, samples this packet covers, event timestamp index) or None (pause)
        self.packets: list[tuple[int, bool, bytes, int, int] | None] = []
        ts_index = 0  # source timestamp, in samples, of the current packet/event
        for i, d in enumerate(digits):
            if i:
                self.packets += [None] * max(1, pause_ms // 20)
                ts_index += 160 * max(1, pause_ms // 20)
            if leg.dtmf_pt is not None:
                evs = rtp.event_packets(rtp.DTMF_CODES.index(d), duration_ms, volume)
                for marker, payload in evs:
                    self.packets.append((leg.dtmf_pt, marker, payload, 160, ts_index))
                ts_index += (len(evs) - 3) * 160
            else:
                freqs = sounds.DTMF_FREQS[d]
                n = max(1, duration_ms // 20)
                amp = min(0.9, 10 ** (-(min(max(volume, 0), 63)) / 20) * 1.4)  # -volume dBm0, roughly
                for k in range(n):
                    lin = sounds.tone(freqs, 20, amplitude=amp, start=k * 160)
                    self.packets.append((leg.pt, k == 0, leg.codec.encode(lin), 160, ts_index))
                    ts_index += 160
        self.pos = 0
        self.seq = 0

    def on_tick(self) -> bool:
        leg = self.leg
        if leg.dtmf_out is not self or self.pos >= len(self.packets):
            if leg.dtmf_out is self:
                leg.dtmf_out = None
            return False
        item = self.packets[self.pos]
        self.pos += 1
        if item is not None:
            pt, marker, payload, samples, ts_index = item
            leg.send_generated(self, payload, self.seq, ts_index, pt=pt, marker=marker, samples=samples)
            self.seq += 1
        if self.pos >= len(self.packets):
            leg.dtmf_out = None
            return False
        return True


class MohClass:
    """One shared hold-music generator per class: every listening leg gets the same frame per tick."""

    def __init__(self, engine: Engine, name: str, files: list[Path]):
        self.engine, self.name, self.files = engine, name, files
        self.listeners: list[Leg] = []
        self._file_index = -1
        self._frames: list[bytes] = []
        self._cache: dict[int, list[bytes]] = {}  # file index -> its decoded 20 ms frames
        self._pos = 0
        self.sent = 0

    def preload(self) -> None:
        """Decode every file of the class now (at start or first use), so that moving to the next
        file inside a 20 ms tick is a list lookup: decoding a two-minute WAV on the tick stalled
        every stream of the process for tens of milliseconds."""
        for i in range(len(self.files)):
            self._decoded(i)

    def _decoded(self, index: int) -> list[bytes]:
        frames = self._cache.get(index)
        if frames is None:
            try:
                frames = sounds.frames(sounds.load_linear(self.files[index]))
            except (OSError, ValueError, EOFError, wave.Error):
                log.warning("hold music %s: cannot read %s", self.name, self.files[index])
                frames = []
            self._cache[index] = frames
        return frames

    def _next_file(self) -> None:
        for _ in range(max(1, len(self.files))):
            if not self.files:
                self._frames = sounds.frames(sounds.melody())
            else:
                self._file_index = (self._file_index + 1) % len(self.files)
                self._frames = self._decoded(self._file_index)
            self._pos = 0
            if self._frames:
                return
        self._frames = sounds.frames(sounds.melody())

    def on_tick(self) -> bool:
        self.listeners = [leg for leg in self.listeners if leg.source is self]
        if not self.listeners:
            return False
        if self._pos >= len(self._frames):
            self._next_file()
        linear = self._frames[self._pos]
        self._pos += 1
        encoded: dict[str, bytes] = {}
        for leg in self.listeners:
            payload = encoded.get(leg.codec.name)
            if payload is None:
                payload = encoded[leg.codec.name] = leg.codec.encode(linear)
            leg.send_generated(self, payload, self.sent, self.sent * 160)
        self.sent += 1
        return True


class Leg:
    """One side of a call: its ports, remote address, codec, what feeds it and its figures."""

    def __init__(
        self, engine: Engine, call: Call, tag: str, port: int, rtp_sock: socket.socket, rtcp_sock: socket.socket
    ):
        self.engine, self.call, self.tag = engine, call, tag
        self.port, self.rtp_sock, self.rtcp_sock = port, rtp_sock, rtcp_sock
        self.created = time.time()
        self.controller: tuple[str, int] | None = None
        self.sdp_remote: tuple[str, int] | None = None
        self.remote: tuple[str, int] | None = None
        self.rtcp_remote: tuple[str, int] | None = None
        self.latched = False
        self.codec: Codec = PCMU
        self.pt = 0
        self.dtmf_pt: int | None = None
        self.ptime = 20
        self.direction = "sendrecv"
        self.we_send = self.we_accept = True
        self.timeout: float | None = None
        self.timed_out = False
        self.peer: Leg | None = None
        self.table: bytes | None = None  # transcoding table from this leg's codec to the peer's
        self.echo = False
        self.source: FilePlayer | MohClass | None = None
        self.dtmf_out: DtmfSender | None = None
        self.recorder: Recorder | None = None
        # inbound
        self.rx = rtp.ReceiveStats()
        self.errors = 0
        self.last_rx = time.monotonic()
        self._dtmf_last_ts: int | None = None
        self.dtmf_events = 0
        self.last_rtcp: dict | None = None
        self._sr_middle = 0  # LSR of the last SR received and when
        self._sr_at = 0.0
        # outbound
        self.ssrc = random.getrandbits(32)
        self.packets_out = 0
        self.bytes_out = 0
        self.dropped_out = 0
        self._out_src: object = None
        self._ts_off = 0
        self._seq_off = 0
        self._next_seq = random.getrandbits(16)
        self._next_ts = random.getrandbits(32)
        self._last_send = 0.0
        self.next_rtcp = time.monotonic() + RTCP_INTERVAL * random.uniform(0.5, 1.0)
        self._buf = bytearray(2048)
        self._mv = memoryview(self._buf)
        self._rtcp_buf = bytearray(1500)
        loop = engine.loop
        loop.add_reader(rtp_sock.fileno(), self._on_rtp)
        loop.add_reader(rtcp_sock.fileno(), self._on_rtcp)

    # --- configuration -------------------------------------------------------------------------

    def configure(self, req: dict) -> None:
        if "codec" in req:
            name = str(req["codec"]).upper()
            if name not in CODECS:
                raise MediaError(f"unsupported codec {req['codec']!r} (PCMU or PCMA)")
            self.codec = CODECS[name]
            self.pt = self.codec.default_pt
        if "payload-type" in req:
            self.pt = _int(req, "payload-type", 0, 127)
        if "dtmf-payload-type" in req:
            v = req["dtmf-payload-type"]
            self.dtmf_pt = None if v in ("", "none") else _int(req, "dtmf-payload-type", 0, 127)
        if "ptime" in req:
            self.ptime = _int(req, "ptime", 10, 60)
        if "direction" in req:
            d = str(req["direction"])
            if d not in DIRECTIONS:
                raise MediaError(f"direction must be one of {', '.join(DIRECTIONS)}")
            self.direction = d
            self.we_send = d in ("sendrecv", "recvonly")
            self.we_accept = d in ("sendrecv", "sendonly")
        if "timeout" in req:
            self.timeout = float(_int(req, "timeout", 0, 86400)) or None
        if "remote-address" in req or "remote-port" in req:
            host = str(req.get("remote-address") or (self.sdp_remote or ("",))[0])
            port = _int(req, "remote-port", 0, 65535) if "remote-port" in req else (self.sdp_remote or ("", 0))[1]
            if host and port:
                try:
                    socket.inet_aton(host)
                except OSError:
                    raise MediaError(f"remote-address must be an IPv4 address, not {host!r}") from None
                new = (host, port)
                if new != self.sdp_remote:
                    self.sdp_remote = new
                    self.remote = new
                    self.rtcp_remote = (host, port + 1)
                    self.latched = False
        for leg in (self, self.peer):
            if leg is not None and leg.peer is not None:
                leg.table = transcode_table(leg.codec, leg.peer.codec)

    # --- sending -------------------------------------------------------------------------------

    def _switch(self, src: object, in_seq: int, in_ts: int, now: float) -> None:
        """Continue this leg's sequence numbers and timestamps for a new source of packets."""
        gap = int(max(0.0, now - self._last_send - 0.02) * 8000) if self._last_send else 0
        self._ts_off = (self._next_ts + gap - in_ts) & MASK32
        self._seq_off = (self._next_seq - in_seq) & 0xFFFF
        self._out_src = src

    def send_generated(
        self,
        src: object,
        payload: bytes,
        seq: int,
        ts: int,
        pt: int | None = None,
        marker: bool = False,
        samples: int | None = None,
    ) -> None:
        """Send a packet made here (player, hold music, DTMF); seq/ts count from the source's start."""
        if not self.we_send or self.remote is None:
            self.dropped_out += 1
            return
        now = time.monotonic()
        if src is not self._out_src:
            self._switch(src, seq, ts, now)
            marker = True
        out_seq = (seq + self._seq_off) & 0xFFFF
        out_ts = (ts + self._ts_off) & MASK32
        data = rtp.build_header(self.pt if pt is None else pt, out_seq, out_ts, self.ssrc, marker) + payload
        self._sendto(data, now)
        self._next_seq = (out_seq + 1) & 0xFFFF
        self._next_ts = (out_ts + (len(payload) if samples is None else samples)) & MASK32

    def _sendto(self, data, now: float) -> None:
        try:
            self.rtp_sock.sendto(data, self.remote)
        except OSError:
            self.dropped_out += 1
            return
        self.packets_out += 1
        self.bytes_out += len(data)
        self._last_send = now

    def relay(
        self,
        src: object,
        buf: bytearray,
        mv: memoryview,
        n: int,
        off: int,
        pt: int,
        marker: bool,
        seq: int,
        ts: int,
        table: bytes | None,
        samples: int,
        now: float,
    ) -> None:
        """Send a packet received on another leg (or this one, for echo), header rewritten for this leg."""
        if src != self._out_src:
            self._switch(src, seq, ts, now)
            marker = True
        out_seq = (seq + self._seq_off) & 0xFFFF
        out_ts = (ts + self._ts_off) & MASK32
        if table is None:
            HDR.pack_into(buf, 1, (0x80 if marker else 0) | pt, out_seq, out_ts, self.ssrc)
            self._sendto(mv[:n], now)
        else:
            header = rtp.build_header(pt, out_seq, out_ts, self.ssrc, marker)
            self._sendto(header + bytes(mv[off:n]).translate(table), now)
        self._next_seq = (out_seq + 1) & 0xFFFF
        self._next_ts = (out_ts + samples) & MASK32
        self.engine.relayed += 1

    # --- receiving -----------------------------------------------------------------------------

    def _on_rtp(self) -> None:
        # one packet per readiness callback: a stream brings one packet every 20 ms, so a second
        # read would nearly always fail with EAGAIN (a wasted syscall and exception per packet);
        # the level-triggered poll calls again at once when more is queued
        try:
            n, addr = self.rtp_sock.recvfrom_into(self._buf)
        except OSError:  # EAGAIN (a spurious wake-up), ICMP errors
            return
        try:
            self._on_packet(n, addr)
        except Exception:  # a packet must never take the reader down
            self.errors += 1
            log.exception("leg %s/%s: packet handling failed", self.call.id, self.tag)

    def _on_packet(self, n: int, addr: tuple[str, int]) -> None:
        buf = self._buf
        b0 = buf[0]
        if n < 12 or b0 & 0xC0 != 0x80:
            self.errors += 1
            return
        off = 12 + 4 * (b0 & 0x0F)
        if b0 & 0x10:
            if n < off + 4:
                self.errors += 1
                return
            off += 4 + 4 * ((buf[off + 2] << 8) | buf[off + 3])
        end = n - buf[n - 1] if b0 & 0x20 else n
        if off > end:
            self.errors += 1
            return
        if not self.latched:
            self.latched = True
            self.remote = addr
            if self.rtcp_remote is None or self.rtcp_remote[0] != addr[0]:
                self.rtcp_remote = (addr[0], addr[1] + 1)
        now = time.monotonic()
        self.last_rx = now
        b1 = buf[1]
        pt = b1 & 0x7F
        seq, ts, ssrc = struct.unpack_from("!HII", buf, 2)
        dtmf = pt == self.dtmf_pt
        self.rx.update(seq, ts, now, n, not dtmf)
        if ssrc != self.rx.ssrc:
            if self.rx.ssrc:
                self.rx.restart_transit()
            self.rx.ssrc = ssrc
        if not self.we_accept:
            return
        mv = self._mv
        marker = bool(b1 & 0x80)
        src = (self, ssrc)
        if dtmf:
            samples = 0
            if end - off >= 4:
                code, is_end, _vol, duration = rtp.parse_event(bytes(mv[off : off + 4]))
                if is_end and ts != self._dtmf_last_ts:
                    self._dtmf_last_ts = ts
                    self.dtmf_events += 1
                    if code < 16:
                        self.engine.emit(
                            self,
                            {"event": "dtmf", "digit": rtp.DTMF_CODES[code], "duration": duration // 8, "volume": _vol},
                        )
                samples = duration
            peer = self.peer
            if (
                peer is not None
                and peer.dtmf_pt is not None
                and peer.we_send
                and peer.remote is not None
                and peer.source is None
                and peer.dtmf_out is None
            ):
                peer.relay(src, buf, mv, n, off, peer.dtmf_pt, marker, seq, ts, None, samples, now)
            return
        if pt != self.pt:
            self.errors += 1  # a payload type this leg did not negotiate
            return
        if self.recorder is not None:
            self.recorder.write(self.codec.decode(bytes(mv[off:end])))
        samples = end - off  # G.711: one byte per sample
        if self.echo and self.we_send and self.remote is not None and self.source is None and self.dtmf_out is None:
            self.relay((self, ssrc, "echo"), buf, mv, n, off, self.pt, marker, seq, ts, None, samples, now)
        peer = self.peer
        if (
            peer is not None
            and peer.we_send
            and peer.remote is not None
            and peer.source is None
            and peer.dtmf_out is None
        ):
            peer.relay(src, buf, mv, end if self.table else n, off, peer.pt, marker, seq, ts, self.table, samples, now)

    # --- RTCP ----------------------------------------------------------------------------------

    def _on_rtcp(self) -> None:
        for _ in range(16):
            try:
                n, addr = self.rtcp_sock.recvfrom_into(self._rtcp_buf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            try:
                reports = rtp.parse_rtcp(bytes(self._rtcp_buf[:n]))
            except (ValueError, struct.error):
                self.errors += 1
                continue
            self.rtcp_remote = addr
            for r in reports:
                r["received-at"] = round(time.time(), 3)
                if r["type"] == "SR":
                    self._sr_middle, self._sr_at = r["ntp-middle"], time.monotonic()
                for b in r["blocks"]:
                    b["jitter-ms"] = round(b["jitter"] / 8, 3)
                self.last_rtcp = r

    def send_rtcp(self, now: float) -> None:
        self.next_rtcp = now + RTCP_INTERVAL * random.uniform(0.5, 1.5)  # RFC 3550 6.3.1 randomization
        if self.rtcp_remote is None:
            return
        block = None
        if self.rx.packets:
            fraction, lost = self.rx.report_interval()
            dlsr = int((now - self._sr_at) * 65536) if self._sr_middle else 0
            block = rtp.ReportBlock(
                self.rx.ssrc, fraction, lost, self.rx.extended_max, int(self.rx.jitter), self._sr_middle, dlsr
            )
        sender = (self.packets_out, self.bytes_out - 12 * self.packets_out) if self.packets_out else None
        try:
            self.rtcp_sock.sendto(rtp.build_report(self.ssrc, block, sender), self.rtcp_remote)
        except OSError:
            pass

    # --- figures and teardown ------------------------------------------------------------------

    def stats(self) -> dict:
        rx = self.rx
        return {
            "tag": self.tag,
            "local-port": self.port,
            "remote-address": self.remote[0] if self.remote else None,
            "remote-port": self.remote[1] if self.remote else None,
            "latched": 1 if self.latched else 0,
            "codec": self.codec.name,
            "payload-type": self.pt,
            "dtmf-payload-type": self.dtmf_pt,
            "direction": self.direction,
            "bridged-to": self.peer.tag if self.peer else None,
            "packets-in": rx.packets,
            "bytes-in": rx.bytes,
            "packets-out": self.packets_out,
            "bytes-out": self.bytes_out,
            "packets-lost": rx.lost,
            "jitter": round(rx.jitter_ms, 3),
            "errors": self.errors,
            "dtmf-events": self.dtmf_events,
            "last-rtcp": self.last_rtcp,
            "playing": (
                "music on hold"
                if isinstance(self.source, MohClass)
                else "media"
                if self.source
                else "DTMF"
                if self.dtmf_out
                else None
            ),
            "recording": self.recorder.path if self.recorder else None,
            "echo": 1 if self.echo else 0,
        }

    def stop_source(self, reason: str = "stopped") -> None:
        src = self.source
        self.source = None
        if isinstance(src, FilePlayer):
            src.finish(reason)

    def close(self) -> dict:
        self.stop_source("deleted")
        self.dtmf_out = None
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None
        if self.peer is not None:
            self.peer.peer = None
            self.peer.table = None
            self.peer = None
        loop = self.engine.loop
        for s in (self.rtp_sock, self.rtcp_sock):
            loop.remove_reader(s.fileno())
            s.close()
        return self.stats()


class Call:
    def __init__(self, call_id: str):
        self.id = call_id
        self.created = time.time()
        self.legs: dict[str, Leg] = {}


class Engine:
    """All calls of one media process; the control protocol calls its methods."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        ports: tuple[int, int] = (10000, 20000),
        sound_dirs: list[str] | tuple[str, ...] = (),
        moh_dir: str | None = None,
        emit: Callable[[tuple[str, int], dict], None] | None = None,
        timeout: float = 0.0,
        loop: asyncio.AbstractEventLoop | None = None,
    ):
        self.loop = loop or asyncio.get_running_loop()
        self.host = host
        self.pool = PortPool(host, *ports)
        self.sound_dirs = sounds.search_path(list(sound_dirs))
        self.moh_dir = moh_dir
        self._emit = emit
        self.timeout = timeout
        self.ticker = Ticker(loop=self.loop)
        self.calls: dict[str, Call] = {}
        self.moh: dict[str, MohClass] = {}
        self.relayed = 0
        self.started = time.time()
        self._event_seq = itertools.count(1)
        self._frames_cache: dict[tuple[str, float, str], list[bytes]] = {}
        self._housekeeping: asyncio.Task | None = None

    def start(self) -> None:
        self._housekeeping = self.loop.create_task(self._housekeep())

    async def close(self) -> None:
        if self._housekeeping:
            self._housekeeping.cancel()
        self.ticker.stop()
        for call_id in list(self.calls):
            self.delete(call_id)

    def emit(self, leg: Leg, event: dict) -> None:
        if self._emit is None or leg.controller is None:
            return
        event = {"call-id": leg.call.id, "from-tag": leg.tag, "seq": next(self._event_seq), **event}
        self._emit(leg.controller, event)

    async def _housekeep(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for call in list(self.calls.values()):
                for leg in list(call.legs.values()):
                    if now >= leg.next_rtcp:
                        leg.send_rtcp(now)
                    limit = leg.timeout or self.timeout
                    if limit and not leg.timed_out and now - leg.last_rx > limit:
                        leg.timed_out = True
                        self.emit(leg, {"event": "timeout", "seconds": round(now - leg.last_rx, 1)})
                    elif leg.timed_out and now - leg.last_rx <= limit:
                        leg.timed_out = False

    # --- lookups -------------------------------------------------------------------------------

    def leg(self, call_id: str, tag: str) -> Leg:
        call = self.calls.get(call_id)
        if call is None:
            raise MediaError("Unknown call-id")
        leg = call.legs.get(tag)
        if leg is None:
            raise MediaError(f"Unknown tag {tag!r}")
        return leg

    # --- commands ------------------------------------------------------------------------------

    def leg_update(self, call_id: str, tag: str, req: dict, controller: tuple[str, int]) -> Leg:
        call = self.calls.get(call_id)
        leg = call.legs.get(tag) if call else None
        if leg is None:
            # validate before taking a port
            probe = dict(req)
            if "codec" in probe and str(probe["codec"]).upper() not in CODECS:
                raise MediaError(f"unsupported codec {probe['codec']!r} (PCMU or PCMA)")
            port, rs, rcs = self.pool.allocate()
            if call is None:
                call = self.calls[call_id] = Call(call_id)
            leg = Leg(self, call, tag, port, rs, rcs)
            call.legs[tag] = leg
            try:
                leg.configure(req)
            except Exception:
                self.delete(call_id, tag)
                raise
        else:
            leg.configure(req)
        leg.controller = controller
        return leg

    def bridge(self, call_id: str, a_tag: str, b_tag: str, b_call_id: str | None = None) -> None:
        """Legs a (of call_id) and b (of b_call_id, default the same call) exchange media. Legs of
        two calls bridge too (a parked call picked up, a caller and a waiting agent)."""
        a, b = self.leg(call_id, a_tag), self.leg(b_call_id or call_id, b_tag)
        if a is b:
            raise MediaError("a leg cannot be bridged to itself")
        for leg in (a, b):
            if leg.peer is not None and leg.peer not in (a, b):
                self.unbridge(leg)
        a.peer, b.peer = b, a
        a.table = transcode_table(a.codec, b.codec)
        b.table = transcode_table(b.codec, a.codec)

    def unbridge(self, leg: Leg) -> None:
        peer = leg.peer
        if peer is not None:
            peer.peer = None
            peer.table = None
        leg.peer = None
        leg.table = None

    def delete(self, call_id: str, tag: str | None = None) -> dict[str, dict]:
        call = self.calls.get(call_id)
        if call is None:
            raise MediaError("Unknown call-id")
        tags = [tag] if tag else list(call.legs)
        out = {}
        for t in tags:
            leg = call.legs.pop(t, None)
            if leg is None:
                raise MediaError(f"Unknown tag {t!r}")
            out[t] = leg.close()
        if not call.legs:
            del self.calls[call_id]
        return out

    def prepared_frames(self, name: str, codec: Codec) -> tuple[list[bytes], str]:
        try:
            path = sounds.find(name, self.sound_dirs)
        except sounds.SoundNotFound:
            raise MediaError(f"sound {name!r} not found") from None
        key = (str(path), path.stat().st_mtime, codec.name)
        cached = self._frames_cache.get(key)
        if cached is None:
            try:
                linear = sounds.load_linear(path)
            except (OSError, ValueError, EOFError, wave.Error) as e:
                raise MediaError(f"cannot read {path}: {e}") from None
            if not linear:
                raise MediaError(f"{path} holds no audio")
            cached = [codec.encode(f) for f in sounds.frames(linear)]
            if len(self._frames_cache) > 256:
                self._frames_cache.clear()
            self._frames_cache[key] = cached
        return cached, str(path)

    def play(self, leg: Leg, name: str, repeat: int) -> FilePlayer:
        frames, _path = self.prepared_frames(name, leg.codec)
        leg.stop_source("replaced")
        player = FilePlayer(self, leg, frames, repeat, name)
        leg.source = player
        self.ticker.add(player)
        return player

    def play_dtmf(self, leg: Leg, digits: str, duration: int, volume: int, pause: int) -> DtmfSender:
        sender = DtmfSender(leg, digits, duration, volume, pause)
        leg.dtmf_out = sender
        self.ticker.add(sender)
        return sender

    def moh_class(self, name: str) -> MohClass:
        cls = self.moh.get(name)
        if cls is None:
            if not name or "/" in name or name.startswith("."):
                raise MediaError(f"bad music-on-hold class {name!r}")
            dirs = []
            if self.moh_dir:
                dirs.append(Path(self.moh_dir) / name)
            if name == "default":
                dirs.append(Path("/usr/share/asterisk/moh"))
            files: list[Path] = []
            for d in dirs:
                if d.is_dir():
                    by_stem: dict[str, Path] = {}
                    for p in sorted(d.iterdir()):
                        if p.suffix in sounds.EXTENSIONS and p.is_file():
                            best = by_stem.get(p.stem)
                            if best is None or sounds.EXTENSIONS.index(p.suffix) < sounds.EXTENSIONS.index(best.suffix):
                                by_stem[p.stem] = p
                    files = [by_stem[k] for k in sorted(by_stem)]
                    if files:
                        break
            cls = self.moh[name] = MohClass(self, name, files)
            cls.preload()
        return cls

    def music_on_hold(self, leg: Leg, name: str) -> MohClass:
        cls = self.moh_class(name)
        leg.stop_source("replaced")
        leg.source = cls
        if leg not in cls.listeners:
            cls.listeners.append(leg)
        self.ticker.add(cls)
        return cls

    def start_recording(self, leg: Leg, path: str) -> None:
        if not os.path.isabs(path):
            raise MediaError("recording file must be an absolute path")
        if leg.recorder is not None:
            leg.recorder.close()
        try:
            leg.recorder = Recorder(path)
        except OSError as e:
            raise MediaError(f"cannot record to {path}: {e.strerror}") from None

    def stop_recording(self, leg: Leg) -> int:
        if leg.recorder is None:
            raise MediaError("not recording")
        ms = leg.recorder.close()
        leg.recorder = None
        return ms

    def statistics(self) -> dict:
        legs = [leg for c in self.calls.values() for leg in c.legs.values()]
        return {
            "calls": len(self.calls),
            "legs": len(legs),
            "packets-relayed": self.relayed,
            "packets-in": sum(leg.rx.packets for leg in legs),
            "packets-out": sum(leg.packets_out for leg in legs),
            "cpu-seconds": time.process_time(),
            "uptime": round(time.time() - self.started, 3),
            "ticks": self.ticker.ticks,
            "moh-classes": len(self.moh),
        }


def _int(req: dict, key: str, low: int, high: int) -> int:
    v = req.get(key)
    try:
        i = int(v)  # rtpengine accepts numbers as integers or as strings
    except (TypeError, ValueError):
        raise MediaError(f"{key} must be an integer") from None
    if not low <= i <= high:
        raise MediaError(f"{key} must be between {low} and {high}")
    return i
