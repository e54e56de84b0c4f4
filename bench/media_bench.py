"""RTP relay benchmark: `switchboard media` against Debian's rtpengine (userspace, --table=-1).

For each relay, N calls are set up (ours: `leg` a + `leg` b + `bridge`; rtpengine: ng `offer` +
`answer` with one PCMU stream); then this process sends one 20 ms PCMU packet per call every
20 ms (50 pps per stream, one direction, paced against a monotonic base) for D seconds and
receives what the relay forwards, computing loss and RFC 3550 interarrival jitter per stream.
The relay's CPU time (utime + stime from /proc/PID/stat) over the measured interval gives
packets relayed per CPU second. Both relays run in the same run on the same host, one after
the other, with the same load.

    .venv/bin/python bench/media_bench.py --streams 100 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from switchboard.media import bencode, rtp  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


class Ng:
    def __init__(self, addr):
        self.addr = addr
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5)
        self.n = 0
        self.prefix = os.urandom(4).hex()  # cookies must be unique: a repeated one gets the cached reply

    def __call__(self, **body) -> dict:
        self.n += 1
        cookie = f"{self.prefix}-{self.n}".encode()
        self.sock.sendto(cookie + b" " + bencode.encode(body), self.addr)
        while True:
            data = self.sock.recv(65535)
            c, _, rest = data.partition(b" ")
            if c == cookie:
                reply = bencode.decode(rest)
                if reply.get("result") not in ("ok", "pong"):
                    raise RuntimeError(f"{body.get('command')}: {reply}")
                return reply


def sdp(port: int) -> str:
    return ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n")  # fmt: skip


def sdp_port(text: str) -> int:
    return int(re.search(r"m=audio (\d+)", text).group(1))


class Stream:
    def __init__(self):
        self.tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.tx.bind(("127.0.0.1", 0))
        self.rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rx.bind(("127.0.0.1", 0))
        self.rx.setblocking(False)
        self.tx.setblocking(False)
        self.rx_port = self.rx.getsockname()[1]
        self.tx_port = self.tx.getsockname()[1]
        self.dest: tuple[str, int] | None = None
        self.stats = rtp.ReceiveStats()
        self.seq = 0
        self.sent = 0

    def close(self):
        self.tx.close()
        self.rx.close()


def setup_ours(ng: Ng, streams: list[Stream]) -> None:
    for i, s in enumerate(streams):
        call = f"bench-{i}"
        a = ng(command="leg", **{"call-id": call, "from-tag": "a", "codec": "PCMU", "remote-address": "127.0.0.1",
                                 "remote-port": s.tx_port})  # fmt: skip
        ng(command="leg", **{"call-id": call, "from-tag": "b", "codec": "PCMU", "remote-address": "127.0.0.1",
                             "remote-port": s.rx_port})  # fmt: skip
        ng(command="bridge", **{"call-id": call, "from-tag": "a", "to-tag": "b"})
        s.dest = ("127.0.0.1", a["local-port"])


def setup_rtpengine(ng: Ng, streams: list[Stream]) -> None:
    for i, s in enumerate(streams):
        call = f"bench-{i}"
        ng(command="offer", sdp=sdp(s.tx_port), **{"call-id": call, "from-tag": "a"})
        ans = ng(command="answer", sdp=sdp(s.rx_port), **{"call-id": call, "from-tag": "a", "to-tag": "b"})
        s.dest = ("127.0.0.1", sdp_port(ans["sdp"]))


async def load(streams: list[Stream], seconds: float, pid: int) -> dict:
    loop = asyncio.get_running_loop()
    buf = bytearray(2048)
    payload = b"\xff" * 160

    def reader(s: Stream):
        def on_readable():
            while True:
                try:
                    n = s.rx.recv_into(buf)
                except (BlockingIOError, InterruptedError):
                    return
                if n < 12 or buf[1] & 0x7F != 0:
                    continue  # not our PCMU stream: e.g. the relay's RTCP sent to "RTP port + 1" of a phone,
                    # which here may be another stream's socket
                seq, ts = int.from_bytes(buf[2:4], "big"), int.from_bytes(buf[4:8], "big")
                s.stats.update(seq, ts, time.monotonic(), n)

        return on_readable

    for s in streams:
        loop.add_reader(s.rx.fileno(), reader(s))
    warmup = 1.0
    ticks = int((seconds + warmup) / 0.02)
    base = loop.time()
    cpu0 = None
    late = 0
    for k in range(ticks):
        if k == int(warmup / 0.02):
            cpu0, t0 = cpu_seconds(pid), time.monotonic()
            got0 = sum(s.stats.packets for s in streams)
            sent0 = sum(s.sent for s in streams)
        due = base + k * 0.02
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.005:
            late += 1
        for s in streams:
            try:
                s.tx.sendto(rtp.build_header(0, s.seq, s.seq * 160, 0x10000 + s.seq % 1) + payload, s.dest)
                s.sent += 1
            except BlockingIOError:
                pass
            s.seq += 1
    await asyncio.sleep(0.3)  # the last packets in flight
    cpu = cpu_seconds(pid) - cpu0
    wall = time.monotonic() - t0
    for s in streams:
        loop.remove_reader(s.rx.fileno())
    total_sent = sum(s.sent for s in streams)
    got = sum(s.stats.packets for s in streams) - got0
    sent = sum(s.sent for s in streams) - sent0
    jit = sorted(s.stats.jitter_ms for s in streams)
    return {
        "sent": sent,
        "received": got,
        "loss % (all)": 100 * (1 - sum(s.stats.packets for s in streams) / total_sent),
        "jitter ms avg": sum(jit) / len(jit),
        "jitter ms max": jit[-1],
        "relay cpu s": cpu,
        "cpu %": 100 * cpu / wall,
        "pkts per cpu s": got / cpu if cpu else float("inf"),
        "late ticks": late,
    }


def start_ours(port_range: str):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    proc = subprocess.Popen([sys.executable, "-m", "switchboard.cli", "media", "--listen", "127.0.0.1:0",
                             "--rtp-ports", port_range], stdout=subprocess.PIPE, env=env)  # fmt: skip
    line = proc.stdout.readline().decode()
    host, port = line.strip().split("=", 1)[1].rsplit(":", 1)
    return proc, (host, int(port))


def start_rtpengine(port_range: str):
    exe = shutil.which("rtpengine")
    if not exe:
        raise SystemExit("rtpengine not found (Debian package rtpengine-daemon)")
    low, high = port_range.split("-")
    for _ in range(10):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            ng_port = s.getsockname()[1]
        tmp = tempfile.mkdtemp()
        proc = subprocess.Popen([exe, "--foreground", "--table=-1", "--interface=127.0.0.1",
                                 f"--listen-ng=127.0.0.1:{ng_port}", f"--port-min={low}", f"--port-max={high}",
                                 "--log-stderr", "--log-level=3", f"--pidfile={tmp}/pid", "--num-threads=1",
                                 "--delete-delay=0"], stderr=subprocess.DEVNULL)  # fmt: skip
        ng = Ng(("127.0.0.1", ng_port))
        ng.sock.settimeout(0.5)
        for _ in range(20):
            try:
                ng(command="ping")
                ng.sock.settimeout(5)
                return proc, ("127.0.0.1", ng_port)
            except (TimeoutError, ConnectionRefusedError):
                if proc.poll() is not None:
                    break
        proc.kill()
        proc.wait()
    raise SystemExit("rtpengine did not start")


def run_one(name, start, setup, streams_n, seconds, port_range):
    proc, addr = start(port_range)
    streams = [Stream() for _ in range(streams_n)]
    try:
        setup(Ng(addr), streams)
        return asyncio.run(load(streams, seconds, proc.pid))
    finally:
        for s in streams:
            s.close()
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=10)
    args = ap.parse_args()
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    results = {
        "switchboard media": run_one("ours", start_ours, setup_ours, args.streams, args.seconds, "22000-23999"),
        "rtpengine (userspace)": run_one(
            "rtpengine", start_rtpengine, setup_rtpengine, args.streams, args.seconds, "24000-25999"
        ),  # fmt: skip
    }
    print(f"{args.streams} streams x 50 pps, one direction, {args.seconds:g} s measured (after 1 s warm-up)")
    names = list(results)
    keys = list(results[names[0]])
    print(f"{'':16}" + "".join(f"{n:>24}" for n in names))
    for k in keys:
        print(f"{k:16}" + "".join(f"{results[n][k]:>24.2f}" if isinstance(results[n][k], float)
                                  else f"{results[n][k]:>24}" for n in names))  # fmt: skip


if __name__ == "__main__":
    main()
