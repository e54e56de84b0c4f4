"""Call benchmark: calls per second through `switchboard serve` (B2BUA + dialplan) against Kamailio 5.6
as a stateful proxy, and concurrent calls with RTP relayed by our media engine against rtpengine.

1. Calls/s, open loop: sipp's built-in `uac` scenario (INVITE → 100/180 → 200 → ACK, pause `--hold`
   ms, BYE → 200) offered at a fixed rate (`-r`) for `--step-seconds` per step, through X to a sipp
   `uas`; X = switchboard (`exten => 200,1,Dial(PJSIP/uas,10)`) or Kamailio (tm + rr + sl,
   `record_route(); t_relay()` to the uas). The rate climbs (`--rates`) until a step is unclean (a
   failed or missing call, a retransmission on either sipp side, an unexpected message); the
   figure is the highest clean offered rate. CPU per call: the server's processes' CPU time
   (/proc; switchboard: serve + its media process, Kamailio: all its processes) ÷ calls.
2. Concurrent relayed calls: N calls set up through switchboard over SIP by a Python UAC/UAS (one
   RTP socket per call on each side), then one PCMU packet per call every 20 ms (50 pps, one
   direction, the N streams' send times spread evenly over the 20 ms) from a sender process, and a
   receiver process taking the kernel's arrival time of each packet (SO_TIMESTAMPNS); the payload
   carries the send time. Added jitter = a packet's one-way delay minus the smallest delay of its
   stream. The same load is relayed by Debian's rtpengine (userspace, one thread, ng offer/answer)
   and sent directly, sender → receiver, with no relay (the measurement's own floor).
   Packets per CPU second = packets received in the measured window ÷ the relay's CPU time.
3. A queue: `--queue-callers` (200) callers call `exten => 300,1,Answer()` + `Queue(bench)` over
   `--queue-ramp` s, `--queue-agents` (20) registered Python phones as static members (rrmemory,
   ringinuse no, wrapuptime 0, musicclass default) answer after `--queue-ring` s and hang up after
   `--queue-talk` s. Calls offered / answered by an agent / lost, time to drain the queue, and the hold
   music at every caller's RTP socket timed by a receiver process (SO_TIMESTAMPNS): packets/s, loss,
   jitter = p99 of |arrival_i - arrival_(i-1) - 20 ms|; CPU of serve and of its media process.

    PYTHONPATH=src .venv/bin/python bench/call_bench.py [--rates 25,50,...] [--concurrent 100,250,500]
        [--skip-cps] [--skip-rtp] [--skip-queue] [--queue-callers 200 --queue-agents 20 --queue-talk 2]

See bench/README.md (Call benchmark).
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import multiprocessing
import os
import re
import resource
import secrets
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src"), str(ROOT / "bench")]

from media_bench import Ng, sdp, sdp_port, start_rtpengine  # noqa: E402
from sip_bench import tree_cpu  # noqa: E402

from tests.sip_peers import Jade, Kamailio, SipMessage, free_port, missing, stop_process  # noqa: E402

ADMIN, ADMIN_PASSWORD = "admin", "bench-" + secrets.token_hex(6)
# 6000 ports each (2 legs x RTP + RTCP per call: up to 1500 calls), below the kernel's ephemeral range (32768-)
OURS_RTP, RTPENGINE_RTP = "20000-25999", "26000-31999"
PJSIP = """[sipp]
type = endpoint
context = internal
disallow = all
allow = ulaw
aors = sipp

[sipp]
type = aor
max_contacts = 1

[uas]
type = endpoint
context = internal
disallow = all
allow = ulaw
aors = uas

[uas]
type = aor
contact = sip:uas@127.0.0.1:{uas_port}
"""
# sipp's built-in `uac`, with the hold (`-d`) as a wait for a late 180: a proxy with several worker
# processes (Kamailio) may forward the 180 after the 200, which the built-in scenario's <pause> takes
# for an unexpected message and aborts the call; a phone ignores it, and so does this scenario
UAC_SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="call_bench uac">
  <send retrans="500">
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Subject: Performance Test
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv response="100" optional="true"></recv>
  <recv response="180" optional="true"></recv>
  <recv response="183" optional="true"></recv>
  <recv response="200" rtd="true"></recv>
  <send>
    <![CDATA[

      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Subject: Performance Test
      Content-Length: 0

    ]]>
  </send>
  <label id="hold"/>
  <recv response="180" timeout="{hold}" ontimeout="bye"></recv>
  <nop next="hold"/>
  <label id="bye"/>
  <send retrans="500">
    <![CDATA[

      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Subject: Performance Test
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"></recv>
</scenario>
"""
EXTENSIONS = """[internal]
exten => 200,1,Dial(PJSIP/uas,10)
 same => n,Hangup()
"""


def fail(message: str) -> None:
    """Stop the bench with a clear message and exit status 1 (no figure is printed after this)."""
    raise SystemExit(f"call_bench: FAILED: {message}")


def cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return []


# ---- switchboard serve ----------------------------------------------------------------------------------
class Serve:
    """`switchboard serve` from this tree (PYTHONPATH=src) on a fresh SQLite database, SIP and HTTP on
    ports it picks (read back from its `listening` line), its embedded media engine on OURS_RTP."""

    def __init__(self, data: Path):
        self.data = data
        self.proc: subprocess.Popen | None = None
        self.log_path = data / "serve.log"

    def start(self) -> Serve:
        env = os.environ | {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
            "SWITCHBOARD_DATABASE_URL": f"sqlite:///{self.data}/switchboard.db",
            "SWITCHBOARD_HTTP_LISTEN": "127.0.0.1:0",
            "SWITCHBOARD_SIP_LISTEN": "127.0.0.1:0",
            "SWITCHBOARD_DATA_DIR": str(self.data),
            "SWITCHBOARD_ADMIN_USERNAME": ADMIN,
            "SWITCHBOARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "SWITCHBOARD_RTP_PORTS": OURS_RTP,
            "SWITCHBOARD_LOG_LEVEL": "warning",
        }
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "switchboard.cli", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.check("start-up", media=False)
            if m := re.search(r"switchboard: listening http=(\S+):(\d+) sip=(\S+):(\d+)", self.log()):
                self.url, self.sip_port = f"http://{m[1]}:{m[2]}", int(m[4])
                return self
            time.sleep(0.2)
        fail(f"serve did not say it was listening within 60 s; log:\n{self.log()[-3000:]}")

    def check(self, when: str, media: bool = True) -> None:
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            fail(f"switchboard serve died (exit {code}) during {when}; log tail:\n{self.log()[-3000:]}")
        if media and self.media_pid() is None:
            fail(f"switchboard serve's media process is gone during {when}; log tail:\n{self.log()[-3000:]}")

    def media_pid(self) -> int | None:
        for child in children_of(self.proc.pid):
            with contextlib.suppress(OSError):
                if b"media" in Path(f"/proc/{child}/cmdline").read_bytes():
                    return child
        return None

    def configure(self, uas_port: int, queue: tuple[int, str] | None = None) -> None:
        """pjsip.conf and extensions.conf through jade; with `queue` = (agents, strategy), also the
        queue step's endpoints, queues.conf and extension (QUEUE_EXTENSIONS)."""
        jade = Jade(self.url, ADMIN, ADMIN_PASSWORD)
        try:
            pjsip, extensions = PJSIP.format(uas_port=uas_port), EXTENSIONS
            if queue is not None:
                pjsip += queue_pjsip(queue[0])
                extensions += QUEUE_EXTENSIONS
                r = jade.call("PUT", "/admin/queue/configurations/queues.conf", json={"data": queues_conf(*queue)})
                if r.status_code != 200:
                    fail(f"queues.conf refused: {r.status_code} {r.text[:500]}")
            jade.put_pjsip(pjsip)
            r = jade.call("PUT", "/admin/dialplan/configurations/extensions.conf", json={"data": extensions})
            if r.status_code != 200:
                fail(f"extensions.conf refused: {r.status_code} {r.text[:500]}")
        finally:
            jade.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> int | None:
        return stop_process(self.proc, signal.SIGTERM, timeout=30)


# ---- 1. calls per second (sipp, open loop) ----------------------------------------------------------------
@dataclass
class Step:
    target: str
    rate: int
    offered: int  # calls sipp was told to place
    successful: int
    failed: int
    retrans_uac: int
    retrans_uas: int
    unexpected: int  # sipp's out-of-call / dead-call messages, both sides
    elapsed: float  # sipp UAC run, first call to last end
    server_cpu: float  # CPU seconds of the server's processes during the step
    sipp_cpu: float
    media_cpu: float  # switchboard: the part of server_cpu spent in its media process
    errors: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return (
            self.successful == self.offered
            and not self.failed
            and not self.retrans_uac
            and not self.retrans_uas
            and not self.unexpected
        )

    @property
    def cpu_per_call_ms(self) -> float:
        return self.server_cpu / self.successful * 1000 if self.successful else float("nan")

    @property
    def why(self) -> str:
        parts = []
        if self.successful != self.offered:
            parts.append(f"{self.successful}/{self.offered} calls completed")
        for what, n in (
            ("failed", self.failed),
            ("UAC retransmissions", self.retrans_uac),
            ("UAS retransmissions", self.retrans_uas),
            ("unexpected messages", self.unexpected),
        ):
            if n:
                parts.append(f"{n} {what}")
        return ", ".join(parts)


SIPP_EVENT = re.compile(r"\d{4}-\d\d-\d\d\t[\d:.]+\t[\d.]+: (.*?)(?=\d{4}-\d\d-\d\d\t|\Z)", re.S)


def stat_row(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    if len(lines) < 2:
        return {}
    return dict(zip(lines[0].split(";"), lines[-1].split(";"), strict=False))


def _int(row: dict[str, str], key: str) -> int:
    return int(row.get(key, "0") or 0)


class SippUas:
    """sipp's built-in `uas` on a fixed port, one process per step (its -trace_stat counts are the step's)."""

    def __init__(self, workdir: Path, port: int, label: str):
        self.workdir, self.port = workdir, port
        self.stat = workdir / f"{label}-uas-stat.csv"
        self.stat.unlink(missing_ok=True)
        self.log_path = workdir / f"{label}-uas.log"
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            ["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-mp", str(free_port()), "-nostdin",
             "-trace_stat", "-stf", str(self.stat), "-fd", "1",
             "-trace_err", "-error_file", str(workdir / f"{label}-uas-err.log")],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 5
        while not self.stat.exists() and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                fail(f"sipp uas exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.05)

    def finish(self, expected: int) -> dict[str, str]:
        """Its counts once it has seen `expected` calls end (or 3 s passed), then stop it (`cpu`: its CPU
        seconds)."""
        deadline = time.monotonic() + 3
        row = stat_row(self.stat)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                fail(f"sipp uas died (exit {self.proc.returncode}): {self.log_path.read_text()[-2000:]}")
            row = stat_row(self.stat)
            if _int(row, "SuccessfulCall(C)") + _int(row, "FailedCall(C)") >= expected:
                time.sleep(1.1)  # one more -fd period: retransmissions after the last call
                row = stat_row(self.stat)
                break
            time.sleep(0.2)
        self.cpu = 0.0
        with contextlib.suppress(OSError):
            self.cpu = cpu_of(self.proc.pid)
        stop_process(self.proc, signal.SIGTERM, timeout=5)
        return row


def cps_step(target: str, port: int, uas_port: int, rate: int, args, workdir: Path, pids, media) -> Step:
    label = f"{target}-{rate}"
    calls = int(rate * args.step_seconds)
    uas = SippUas(workdir, uas_port, label)
    stat = workdir / f"{label}-uac-stat.csv"
    stat.unlink(missing_ok=True)
    scenario = workdir / "uac.xml"
    scenario.write_text(UAC_SCENARIO.format(hold=args.hold))
    cmd = ["sipp", f"127.0.0.1:{port}", "-sf", str(scenario), "-s", "200", "-i", "127.0.0.1", "-p", str(free_port()),
           "-mp", str(free_port()), "-nostdin", "-r", str(rate), "-rp", "1000", "-m", str(calls),
           "-l", str(max(1000, rate * 10)), "-recv_timeout", "5000", "-timeout", f"{int(args.step_seconds + 30)}s",
           "-trace_stat", "-stf", str(stat), "-fd", "1",
           "-trace_err", "-error_file", str(workdir / f"{label}-uac-err.log")]  # fmt: skip
    media_pid = media()
    cpu0, m0 = sum(tree_cpu(p) for p in pids()), cpu_of(media_pid) if media_pid else 0.0
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, timeout=args.step_seconds + 60)
    (workdir / f"{label}-uac.log").write_text(out.stdout + out.stderr)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu1, m1 = sum(tree_cpu(p) for p in pids()), cpu_of(media_pid) if media_pid else 0.0
    if out.returncode not in (0, 1) or not stat.exists():
        uas.finish(0)
        fail(f"sipp uac ({target}, {rate}/s) exited with {out.returncode}:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    row = stat_row(stat)
    uas_row = uas.finish(_int(row, "SuccessfulCall(C)") + _int(row, "FailedCall(C)"))
    if not row or not uas_row:
        fail(f"no sipp statistics for {target} at {rate}/s (see {stat})")
    elapsed = float(row["CurrentTime"].split("\t")[-1]) - float(row["StartTime"].split("\t")[-1])
    errors: Counter[str] = Counter()
    for side in ("uac", "uas"):
        err = workdir / f"{label}-{side}-err.log"
        if err.exists():
            for event in SIPP_EVENT.findall(err.read_text(errors="replace")):
                if "jumping to label" not in event:  # the hold's timeout (UAC_SCENARIO), every call
                    first = event.strip().splitlines()[0] if event.strip() else ""
                    errors[f"{side}: " + re.sub(r"\d+", "N", first)[:200]] += 1
    return Step(
        target,
        rate,
        calls,
        _int(row, "SuccessfulCall(C)"),
        _int(row, "FailedCall(C)"),
        _int(row, "Retransmissions(C)"),
        _int(uas_row, "Retransmissions(C)"),
        sum(_int(r, k) for r in (row, uas_row) for k in ("OutOfCallMsgs(C)", "DeadCallMsgs(C)")),
        elapsed,
        cpu1 - cpu0,
        after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime + uas.cpu,
        m1 - m0,
        [f"{n} x {e}" for e, n in errors.most_common(4)],
    )


def cps_ramp(target: str, port: int, uas_port: int, args, workdir: Path, pids, alive, media=lambda: None):
    steps: list[Step] = []
    for rate in args.rates:
        step = cps_step(target, port, uas_port, rate, args, workdir, pids, media)
        alive(f"the {rate} calls/s step")
        steps.append(step)
        mark = "clean" if step.clean else f"UNCLEAN: {step.why}"
        share, sipp_share = (x / step.elapsed * 100 if step.elapsed else 0.0 for x in (step.server_cpu, step.sipp_cpu))
        print(
            f"  {target:<12}{rate:>5} calls/s offered: {step.successful}/{step.offered} ok in {step.elapsed:.1f} s, "
            f"{share:.0f}% cpu, {step.cpu_per_call_ms:.2f} ms cpu/call, sipp {sipp_share:.0f}% cpu — {mark}",
            flush=True,
        )
        if not step.clean:
            break
        time.sleep(args.pause)
    return steps


# ---- 2. concurrent calls with RTP -------------------------------------------------------------------------
MAGIC = b"SBcb"
PAYLOAD_PAD = b"\xff" * (160 - 16)
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)  # Linux: a cmsg with the socket's count of dropped packets


def udp_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


def sender_main(conn, socks: list[socket.socket], dests: list[tuple[str, int]], warmup: float, seconds: float):
    """Child process: one PCMU packet per stream every 20 ms, stream i at i/N of the period; the payload
    holds MAGIC, the stream index and time.time_ns() just before sendto. Reports ("w", ns) when the
    warm-up ends, then ("e", ns, sent per stream, late sends) at the end."""
    n = len(socks)
    sent = [0] * n
    sendto = [s.sendto for s in socks]
    hdr = struct.Struct("!BBHII")
    period = 0.02
    ticks = int(round((warmup + seconds) / period))
    warm_ticks = int(round(warmup / period))
    late = 0
    base = time.monotonic() + 0.05
    for k in range(ticks):
        if k == warm_ticks:
            conn.send(("w", time.time_ns()))
        tick = base + k * period
        for i in range(n):
            due = tick + period * i / n
            ahead = due - time.monotonic()
            if ahead > 0.0005:
                time.sleep(ahead)
            elif ahead < -0.005:
                late += 1
            seq = k & 0xFFFF
            packet = hdr.pack(0x80, 0, seq, (k * 160) & 0xFFFFFFFF, 0x5B000000 + i) + MAGIC + i.to_bytes(4, "big")
            try:
                sendto[i](packet + time.time_ns().to_bytes(8, "big") + PAYLOAD_PAD, dests[i])
                sent[i] += 1
            except OSError:
                pass
    conn.send(("e", time.time_ns(), sent, late))


def receiver_main(conn, socks: list[socket.socket], n_streams: int):
    """Child process: every packet's kernel arrival time (SO_TIMESTAMPNS, CLOCK_REALTIME) and its send
    time, per stream, until told to stop; then (per-stream lists of (sent_ns, delay_ns), foreign packets)."""
    sel = selectors.EpollSelector()
    for s in socks:
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    sel.register(conn, selectors.EVENT_READ)
    sent_ns: list[list[int]] = [[] for _ in range(n_streams)]
    delay_ns: list[list[int]] = [[] for _ in range(n_streams)]
    foreign = 0
    anc = socket.CMSG_SPACE(16)
    ts = struct.Struct("@qq")
    conn.send("ready")
    running = True
    while running:
        for key, _ in sel.select(1.0):
            if key.fileobj is conn:
                conn.recv()
                running = False
                continue
            recvmsg = key.fileobj.recvmsg
            while True:
                try:
                    data, ancdata, _, _ = recvmsg(2048, anc)
                except (BlockingIOError, InterruptedError):
                    break
                if len(data) != 172 or data[12:16] != MAGIC or data[1] & 0x7F != 0 or not ancdata:
                    foreign += 1  # e.g. a relay's RTCP sent to "RTP port + 1", another stream's socket here
                    continue
                sec, nsec = ts.unpack(ancdata[0][2][:16])
                i = int.from_bytes(data[16:20], "big")
                sent = int.from_bytes(data[20:28], "big")
                sent_ns[i].append(sent)
                delay_ns[i].append(sec * 1_000_000_000 + nsec - sent)
    # drain what is still queued (stop came after the last packets were sent + a grace period)
    conn.send((sent_ns, delay_ns, foreign))


@dataclass
class RelayRun:
    relay: str
    streams: int
    sent: int = 0
    received: int = 0
    lost: int = 0
    window_packets: int = 0  # received, sent within the measured window
    window_s: float = 0.0
    relay_cpu: float = 0.0  # CPU seconds of the relay within the window
    other_cpu: float = 0.0  # serve (without its media process) within the window
    delay_p50: float = 0.0  # ms
    delay_p99: float = 0.0
    jitter_p50: float = 0.0  # added jitter, ms (delay - the stream's minimum delay)
    jitter_p99: float = 0.0
    jitter_max: float = 0.0
    rfc3550_avg: float = 0.0  # ms, RFC 3550 interarrival jitter, average over streams (as media_bench)
    late_sends: int = 0
    foreign: int = 0
    setup_s: float = 0.0
    note: str = ""

    @property
    def pps_per_cpu(self) -> float:
        return self.window_packets / self.relay_cpu if self.relay_cpu > 0 else float("nan")

    @property
    def cpu_share(self) -> float:
        return self.relay_cpu / self.window_s * 100 if self.window_s else 0.0


def pct(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))] / 1e6


def drive(
    run: RelayRun,
    tx: list[socket.socket],
    rx: list[socket.socket],
    dests: list[tuple[str, int]],
    warmup: float,
    seconds: float,
    relay_pid: int | None,
    other_pid: int | None,
    alive,
) -> RelayRun:
    """Sender + receiver processes over the prepared sockets; fills in `run`."""
    ctx = multiprocessing.get_context("fork")
    r_parent, r_child = ctx.Pipe()
    s_parent, s_child = ctx.Pipe()
    receiver = ctx.Process(target=receiver_main, args=(r_child, rx, len(tx)), daemon=True)
    receiver.start()
    if not r_parent.poll(10) or r_parent.recv() != "ready":
        fail("the RTP receiver process did not start")
    sender = ctx.Process(target=sender_main, args=(s_child, tx, dests, warmup, seconds), daemon=True)
    sender.start()

    def cpu(pid):
        return cpu_of(pid) if pid else 0.0

    try:
        if not s_parent.poll(warmup + 10):
            fail("the RTP sender process said nothing")
        _, w_ns = s_parent.recv()
        c0, o0 = cpu(relay_pid), cpu(other_pid)
        if not s_parent.poll(seconds + 30):
            fail("the RTP sender process did not finish")
        _, e_ns, sent, late = s_parent.recv()
        c1, o1 = cpu(relay_pid), cpu(other_pid)
        alive(f"{run.relay} with {run.streams} streams")
        time.sleep(0.3)  # the last packets in flight
        r_parent.send("stop")
        if not r_parent.poll(60):
            fail("the RTP receiver process did not report")
        sent_ns, delay_ns, foreign = r_parent.recv()
    finally:
        for p in (sender, receiver):
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join()
    run.sent, run.late_sends, run.foreign = sum(sent), late, foreign
    run.received = sum(len(d) for d in delay_ns)
    run.lost = run.sent - run.received
    run.relay_cpu, run.other_cpu = c1 - c0, o1 - o0
    run.window_s = (e_ns - w_ns) / 1e9
    window: list[int] = []
    rfc = []
    for stream_sent, stream_delay in zip(sent_ns, delay_ns, strict=True):
        if not stream_delay:
            continue
        floor = min(stream_delay)
        j = 0.0
        prev = None
        for s_ns, d in zip(stream_sent, stream_delay, strict=True):
            if prev is not None:
                j += (abs(d - prev) - j) / 16
            prev = d
            if w_ns <= s_ns <= e_ns:
                window.append(d - floor)
        rfc.append(j / 1e6)
    run.window_packets = len(window)
    window.sort()
    all_delays = sorted(d for stream in delay_ns for d in stream)
    run.delay_p50, run.delay_p99 = pct(all_delays, 0.5), pct(all_delays, 0.99)
    run.jitter_p50, run.jitter_p99 = pct(window, 0.5), pct(window, 0.99)
    run.jitter_max = window[-1] / 1e6 if window else float("nan")
    run.rfc3550_avg = sum(rfc) / len(rfc) if rfc else float("nan")
    return run


# -- a minimal SIP UAC/UAS over asyncio to set up the calls through serve --
class SipCalls(asyncio.DatagramProtocol):
    """Both ends of N calls through serve: the UAC (From sipp, to 200) and the UAS `uas` (its aor's
    static contact). Each call's SDP names its own socket: the UAC's sender socket, the UAS's receiver."""

    def __init__(self, serve_port: int, uas_port: int):
        self.server = ("127.0.0.1", serve_port)
        self.uas_port = uas_port
        self.pending: dict[str, asyncio.Future] = {}  # call-id → 200 OK of our INVITE / BYE
        self.dialogs: dict[str, dict] = {}  # UAC call-id → to-tag, contact
        self.uas_answers: dict[str, bytes] = {}  # UAS call-id (serve's) → our 200 OK (resent on retransmission)
        self.uas_sockets: list[socket.socket] = []
        self.uas_free: list[socket.socket] = []
        self.errors: Counter[str] = Counter()

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self.uac, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
        self.uac_port = self.uac.get_extra_info("sockname")[1]
        self.uas, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", self.uas_port))

    def close(self) -> None:
        self.uac.close()
        self.uas.close()

    def datagram_received(self, data: bytes, addr) -> None:
        try:
            msg = SipMessage.parse(data)
            call_id = msg.get("call-id") or ""
            if msg.status is not None:
                self._response(msg, call_id, addr)
            else:
                self._request(msg, call_id, addr)
        except Exception as exc:  # noqa: BLE001 - a bench peer: count it, carry on
            self.errors[f"{type(exc).__name__}: {exc}"] += 1

    def _response(self, msg: SipMessage, call_id: str, addr) -> None:
        cseq = msg.get("cseq") or ""
        if msg.status < 200:
            return
        method = cseq.split()[-1]
        if method == "INVITE" and call_id in self.dialogs:  # (re)sent 200 OK: ACK every copy
            d = self.dialogs[call_id]
            if msg.status >= 300:
                fut = self.pending.get(call_id)
                if fut and not fut.done():
                    fut.set_exception(RuntimeError(f"INVITE answered {msg.first_line}"))
                return
            d["to"] = msg.get("to")
            d["contact"] = re.search(r"<([^>]+)>", msg.get("contact") or "") or None
            d["target"] = d["contact"][1] if d["contact"] else f"sip:200@{self.server[0]}:{self.server[1]}"
            self.uac.sendto(self._req("ACK", call_id, d, 1), addr)
            fut = self.pending.get(call_id)
            if fut and not fut.done():
                fut.set_result(msg)
        elif method == "BYE":
            fut = self.pending.get(call_id + "/bye")
            if fut and not fut.done():
                fut.set_result(msg)

    def _req(self, method: str, call_id: str, d: dict, cseq: int, body: str = "") -> bytes:
        head = [
            f"{method} {d.get('target', f'sip:200@{self.server[0]}:{self.server[1]}')} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.uac_port};branch=z9hG4bK{secrets.token_hex(8)};rport",
            "Max-Forwards: 70",
            f"From: <sip:sipp@127.0.0.1>;tag={d['tag']}",
            f"To: {d.get('to') or f'<sip:200@{self.server[0]}:{self.server[1]}>'}",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:sipp@127.0.0.1:{self.uac_port}>",
        ]
        if body:
            head.append("Content-Type: application/sdp")
        head.append(f"Content-Length: {len(body.encode())}")
        return ("\r\n".join(head) + "\r\n\r\n" + body).encode()

    def _request(self, msg: SipMessage, call_id: str, addr) -> None:
        method = msg.method
        if method == "ACK":
            return
        if method == "INVITE" and call_id in self.uas_answers:
            self.uas.sendto(self.uas_answers[call_id], addr)
            return
        body = ""
        to = msg.get("to") or ""
        if method == "INVITE":
            if not self.uas_free:
                self.errors["INVITE at the UAS with no receiver socket left"] += 1
                return
            sock = self.uas_free.pop()
            body = sdp(sock.getsockname()[1])
            if ";tag=" not in to:
                to += f";tag={secrets.token_hex(4)}"
        elif ";tag=" not in to and method != "OPTIONS":
            to += f";tag={secrets.token_hex(4)}"
        head = ["SIP/2.0 200 OK"]
        head += [f"Via: {v}" for v in msg.get_all("via")]
        head += [f"From: {msg.get('from')}", f"To: {to}", f"Call-ID: {call_id}", f"CSeq: {msg.get('cseq')}"]
        head.append(f"Contact: <sip:uas@127.0.0.1:{self.uas_port}>")
        if body:
            head.append("Content-Type: application/sdp")
        head.append(f"Content-Length: {len(body.encode())}")
        out = ("\r\n".join(head) + "\r\n\r\n" + body).encode()
        if method == "INVITE":
            self.uas_answers[call_id] = out
        self.uas.sendto(out, addr)

    async def call(self, i: int, tx: socket.socket, timeout: float = 10) -> tuple[str, tuple[str, int]]:
        """INVITE 200 from `tx`'s port; the relay's address for this call's RTP (from the 200 OK)."""
        call_id = f"cb{i}-{secrets.token_hex(6)}@callbench"
        d = {"tag": secrets.token_hex(4)}
        self.dialogs[call_id] = d
        fut = asyncio.get_running_loop().create_future()
        self.pending[call_id] = fut
        invite = self._req("INVITE", call_id, d, 1, sdp(tx.getsockname()[1]))
        for attempt in range(int(timeout / 0.5)):
            if attempt == 0 or not fut.done() and attempt in (1, 3, 7):  # RFC 3261 timer A: 0.5, 1, 2, 4 s
                self.uac.sendto(invite, self.server)
            try:
                ok = await asyncio.wait_for(asyncio.shield(fut), 0.5)
                break
            except TimeoutError:
                continue
        else:
            raise RuntimeError(f"call {i}: no final answer to INVITE in {timeout} s")
        host = re.search(r"c=IN IP4 (\S+)", ok.body)
        return call_id, (host[1] if host else "127.0.0.1", sdp_port(ok.body))

    async def hangup(self, call_id: str, timeout: float = 10) -> bool:
        d = self.dialogs[call_id]
        fut = asyncio.get_running_loop().create_future()
        self.pending[call_id + "/bye"] = fut
        bye = self._req("BYE", call_id, d, 2)
        for _ in range(int(timeout / 0.5)):
            self.uac.sendto(bye, self.server)
            try:
                await asyncio.wait_for(asyncio.shield(fut), 0.5)
                return True
            except TimeoutError:
                continue
        return False


async def _bounded(coros, window: int):
    sem = asyncio.Semaphore(window)

    async def one(c):
        async with sem:
            return await c

    return await asyncio.gather(*(one(c) for c in coros), return_exceptions=True)


def relay_ours(serve: Serve, uas_port: int, n: int, args) -> RelayRun:
    run = RelayRun("switchboard", n)
    tx = [udp_socket() for _ in range(n)]
    rx = [udp_socket() for _ in range(n)]
    loop = asyncio.new_event_loop()
    calls = SipCalls(serve.sip_port, uas_port)
    calls.uas_sockets, calls.uas_free = rx, list(reversed(rx))
    try:
        loop.run_until_complete(calls.open())
        started = time.monotonic()
        results = loop.run_until_complete(_bounded([calls.call(i, tx[i]) for i in range(n)], args.setup_window))
        run.setup_s = time.monotonic() - started
        bad = [r for r in results if isinstance(r, BaseException)]
        if bad:
            fail(f"{len(bad)} of {n} calls could not be set up through switchboard: {bad[0]}; "
                 f"peer errors: {dict(calls.errors)}\nserve log tail:\n{serve.log()[-2000:]}")  # fmt: skip
        if calls.uas_free:
            fail(f"{len(calls.uas_free)} of {n} calls answered without reaching the uas")
        serve.check(f"the set-up of {n} calls")
        # the receiver stream index is the sender's, whatever rx socket serve's INVITE got
        dests = [dest for _, dest in results]
        drive(run, tx, rx, dests, args.warmup, args.rtp_seconds, serve.media_pid(), serve.proc.pid,
              lambda when: serve.check(when))  # fmt: skip
        ended = loop.run_until_complete(_bounded([calls.hangup(cid) for cid, _ in results], args.setup_window))
        if not all(ended):
            run.note = f"{sum(1 for e in ended if e is not True)} BYEs unanswered"
        if calls.errors:
            run.note += f" peer errors: {dict(calls.errors)}"
    finally:
        calls.close()
        loop.run_until_complete(asyncio.sleep(0.1))
        loop.close()
        for s in tx + rx:
            s.close()
    return run


def relay_rtpengine(proc: subprocess.Popen, addr, n: int, step: int, args) -> RelayRun:
    run = RelayRun("rtpengine", n)
    tx = [udp_socket() for _ in range(n)]
    rx = [udp_socket() for _ in range(n)]
    ng = Ng(addr)
    try:
        started = time.monotonic()
        dests = []
        for i in range(n):
            call = f"cb{step}-{i}"
            ng(command="offer", sdp=sdp(tx[i].getsockname()[1]), **{"call-id": call, "from-tag": "a"})
            ans = ng(command="answer", sdp=sdp(rx[i].getsockname()[1]),
                     **{"call-id": call, "from-tag": "a", "to-tag": "b"})  # fmt: skip
            dests.append(("127.0.0.1", sdp_port(ans["sdp"])))
        run.setup_s = time.monotonic() - started

        def alive(when):
            if proc.poll() is not None:
                fail(f"rtpengine died (exit {proc.returncode}) during {when}")

        drive(run, tx, rx, dests, args.warmup, args.rtp_seconds, proc.pid, None, alive)
        for i in range(n):
            ng(command="delete", **{"call-id": f"cb{step}-{i}"})
    finally:
        ng.sock.close()
        for s in tx + rx:
            s.close()
    return run


def relay_direct(n: int, args) -> RelayRun:
    run = RelayRun("no relay", n)
    tx = [udp_socket() for _ in range(n)]
    rx = [udp_socket() for _ in range(n)]
    try:
        drive(run, tx, rx, [s.getsockname() for s in rx], args.warmup, args.rtp_seconds, None, None, lambda w: None)
    finally:
        for s in tx + rx:
            s.close()
    return run


# ---- 3. a queue: callers on hold music, agents answering ----------------------------------------------------
QUEUE_EXTEN = "300"
QUEUE_EXTENSIONS = f"""exten => {QUEUE_EXTEN},1,Answer()
 same => n,Queue(bench)
 same => n,Hangup()
"""
MS20 = 20_000_000  # ns


def agent_names(n: int) -> list[str]:
    return [f"agent{i:02d}" for i in range(1, n + 1)]


def queue_pjsip(agents: int) -> str:
    """The callers' endpoint (`qcaller`, no auth; each caller's own name is its From display name) and
    the agents' (no auth, registering: an aor with max_contacts = 1)."""
    text = "\n[qcaller]\ntype = endpoint\ncontext = internal\ndisallow = all\nallow = ulaw\naors = qcaller\n"
    text += "\n[qcaller]\ntype = aor\nmax_contacts = 1\n"
    for a in agent_names(agents):
        text += f"\n[{a}]\ntype = endpoint\ncontext = internal\ndisallow = all\nallow = ulaw\naors = {a}\n"
        text += f"\n[{a}]\ntype = aor\nmax_contacts = 1\nremove_existing = yes\n"
    return text


def queues_conf(agents: int, strategy: str) -> str:
    members = "".join(f"member => PJSIP/{a}\n" for a in agent_names(agents))
    return (
        "[general]\n\n[bench]\n"
        f"strategy = {strategy}\nmusicclass = default\ntimeout = 15\nretry = 1\nwrapuptime = 0\nringinuse = no\n"
        + members
    )


def music_receiver_main(conn, socks: list[socket.socket]) -> None:
    """Child process: every RTP packet (PCMU) on the callers' sockets, with the kernel's arrival time
    (SO_TIMESTAMPNS, CLOCK_REALTIME), its sequence number and marker bit, per caller, until told to stop;
    then (arrival ns, seq, marker arrays as bytes per caller, foreign packets, packets the kernel dropped
    because a socket's receive buffer was full (SO_RXQ_OVFL))."""
    sel = selectors.EpollSelector()
    for i, s in enumerate(socks):
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        s.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
    sel.register(conn, selectors.EVENT_READ, -1)
    arrivals = [array.array("q") for _ in socks]
    seqs = [array.array("H") for _ in socks]
    marks = [array.array("B") for _ in socks]
    foreign = 0
    drops = [0] * len(socks)
    anc = socket.CMSG_SPACE(16) + socket.CMSG_SPACE(4)
    ts = struct.Struct("@qq")

    def drain(i: int, recvmsg) -> int:
        bad = 0
        while True:
            try:
                data, ancdata, _, _ = recvmsg(2048, anc)
            except (BlockingIOError, InterruptedError):
                return bad
            stamp = None
            for level, kind, value in ancdata:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    stamp = value[:16]
                elif level == socket.SOL_SOCKET and kind == SO_RXQ_OVFL:
                    drops[i] = int.from_bytes(value[:4], sys.byteorder)
            if len(data) < 12 or data[0] >> 6 != 2 or data[1] & 0x7F != 0 or stamp is None:
                bad += 1  # e.g. RTCP sent to "RTP port + 1", which may be another caller's socket
                continue
            sec, nsec = ts.unpack(stamp)
            arrivals[i].append(sec * 1_000_000_000 + nsec)
            seqs[i].append((data[2] << 8) | data[3])
            marks[i].append(data[1] >> 7)

    conn.send("ready")
    running = True
    while running:
        for key, _ in sel.select(1.0):
            if key.data == -1:
                conn.recv()
                running = False
                continue
            foreign += drain(key.data, key.fileobj.recvmsg)
    for i, s in enumerate(socks):
        foreign += drain(i, s.recvmsg)
    conn.send(
        (
            [a.tobytes() for a in arrivals],
            [s.tobytes() for s in seqs],
            [m.tobytes() for m in marks],
            foreign,
            sum(drops),
        )
    )


@dataclass
class QCall:
    """One caller: its dialog with serve and what happened to it (ns: time.time_ns())."""

    i: int
    call_id: str
    tag: str
    rtp_port: int
    to: str = ""
    target: str = ""
    invited_ns: int = 0
    up_ns: int = 0  # serve's 200 OK (Answer())
    ended_ns: int = 0  # serve's BYE
    provisional: bool = False
    error: str = ""
    answered: asyncio.Future | None = None
    ended: asyncio.Future | None = None


@dataclass
class AgentCall:
    agent: str
    call_id: str
    caller: int | None  # the caller's index (from the INVITE's From display name), None: unknown
    rung_ns: int
    answered_ns: int = 0  # our 200 OK
    acked_ns: int = 0
    bye_ns: int = 0  # our BYE (after the talk time)
    ended_ns: int = 0  # the 200 to our BYE, or serve's BYE / CANCEL
    how: str = ""  # "talked", "cancelled", "hung up by serve", "busy"


def _response(
    msg: SipMessage, status: str, to: str | None = None, extra: list[str] | None = None, body: str = ""
) -> bytes:
    head = [f"SIP/2.0 {status}"] + [f"Via: {v}" for v in msg.get_all("via")]
    head += [f"From: {msg.get('from')}", f"To: {to or msg.get('to')}", f"Call-ID: {msg.get('call-id')}",
             f"CSeq: {msg.get('cseq')}"]  # fmt: skip
    head += extra or []
    if body:
        head.append("Content-Type: application/sdp")
    head.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(head) + "\r\n\r\n" + body).encode()


class QueueCallers(asyncio.DatagramProtocol):
    """The N callers on one UDP socket: INVITE 300 from `"qI" <sip:qcaller@...>` naming the caller's
    own RTP socket, ACK serve's 200, answer serve's BYE."""

    def __init__(self, serve_port: int):
        self.server = ("127.0.0.1", serve_port)
        self.calls: dict[str, QCall] = {}
        self.errors: Counter[str] = Counter()

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.port = transport.get_extra_info("sockname")[1]

    def _req(self, method: str, c: QCall, cseq: int, body: str = "") -> bytes:
        uri = c.target or f"sip:{QUEUE_EXTEN}@{self.server[0]}:{self.server[1]}"
        head = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{secrets.token_hex(8)};rport",
            "Max-Forwards: 70",
            f'From: "q{c.i}" <sip:qcaller@127.0.0.1:{self.port}>;tag={c.tag}',
            f"To: {c.to or f'<sip:{QUEUE_EXTEN}@{self.server[0]}:{self.server[1]}>'}",
            f"Call-ID: {c.call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:qcaller@127.0.0.1:{self.port}>",
        ]
        if body:
            head.append("Content-Type: application/sdp")
        head.append(f"Content-Length: {len(body.encode())}")
        return ("\r\n".join(head) + "\r\n\r\n" + body).encode()

    def datagram_received(self, data: bytes, addr) -> None:
        try:
            msg = SipMessage.parse(data)
            c = self.calls.get(msg.get("call-id") or "")
            if c is None:
                self.errors[f"message for no caller: {msg.first_line}"] += 1
                return
            if msg.status is not None:
                self._on_response(msg, c, addr)
            else:
                self._on_request(msg, c, addr)
        except Exception as exc:  # noqa: BLE001 - a bench peer: count it, carry on
            self.errors[f"{type(exc).__name__}: {exc}"] += 1

    def _on_response(self, msg: SipMessage, c: QCall, addr) -> None:
        method = (msg.get("cseq") or "").split()[-1]
        if method != "INVITE":
            return  # 200 to a clean-up BYE
        if msg.status < 200:
            c.provisional = True
            return
        if msg.status >= 300:
            if not c.answered.done():
                c.error = f"INVITE answered {msg.first_line}"
                c.answered.set_result(False)
            return
        # 200 OK (and its retransmissions): ACK each copy
        c.to = msg.get("to") or ""
        contact = re.search(r"<([^>]+)>", msg.get("contact") or "")
        c.target = contact[1] if contact else c.target
        self.transport.sendto(self._req("ACK", c, 1), addr)
        if not c.answered.done():
            c.up_ns = time.time_ns()
            c.answered.set_result(True)

    def _on_request(self, msg: SipMessage, c: QCall, addr) -> None:
        if msg.method == "ACK":
            return
        if msg.method == "BYE":
            self.transport.sendto(_response(msg, "200 OK"), addr)
            if not c.ended.done():
                c.ended_ns = time.time_ns()
                c.ended.set_result(True)
            return
        self.errors[f"{msg.method} in a caller's call"] += 1
        body = sdp(c.rtp_port) if msg.method == "INVITE" else ""
        self.transport.sendto(_response(msg, "200 OK", body=body), addr)

    async def call(self, c: QCall, timeout: float = 10) -> None:
        loop = asyncio.get_running_loop()
        c.answered, c.ended = loop.create_future(), loop.create_future()
        self.calls[c.call_id] = c
        invite = self._req("INVITE", c, 1, sdp(c.rtp_port))
        c.invited_ns = time.time_ns()
        waited = 0.0
        for delay in (0.5, 1, 2, 4, 8):  # RFC 3261 timer A, until a provisional answer
            if not c.provisional:
                self.transport.sendto(invite, self.server)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(c.answered), min(delay, timeout - waited))
                break
            waited += delay
            if waited >= timeout:
                break
        if not c.answered.done():
            c.error = f"no final answer to INVITE in {timeout:g} s"
            c.answered.set_result(False)

    async def hangup(self, c: QCall) -> None:
        """Clean-up BYE for a caller still in a call at the end (already counted as lost)."""
        if c.up_ns and not c.ended_ns:
            self.transport.sendto(self._req("BYE", c, 2), self.server)


class QueueAgent(asyncio.DatagramProtocol):
    """One agent's phone: registers, answers each INVITE after `ring` s of 180 (100 at once, 200 resent
    until ACK), talks `talk` s, then sends BYE. An INVITE while in a call is refused 486 and counted."""

    def __init__(self, name: str, serve_port: int, rtp_port: int, ring: float, talk: float, log: list[AgentCall]):
        self.name, self.server, self.rtp_port = name, ("127.0.0.1", serve_port), rtp_port
        self.ring, self.talk, self.log = ring, talk, log
        self.calls: dict[str, dict] = {}
        self.registered: asyncio.Future | None = None
        self.errors: Counter[str] = Counter()
        self.in_call = 0

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.port = transport.get_extra_info("sockname")[1]

    async def register(self, timeout: float = 10) -> None:
        self.registered = asyncio.get_running_loop().create_future()
        call_id = f"reg-{self.name}-{secrets.token_hex(4)}"
        for attempt in range(int(timeout / 0.5)):
            msg = (
                f"REGISTER sip:127.0.0.1:{self.server[1]} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:{self.name}@127.0.0.1>;tag={secrets.token_hex(4)}\r\n"
                f"To: <sip:{self.name}@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: {attempt + 1} REGISTER\r\n"
                f"Contact: <sip:{self.name}@127.0.0.1:{self.port}>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n"
            ).encode()
            self.transport.sendto(msg, self.server)
            with contextlib.suppress(TimeoutError):
                status = await asyncio.wait_for(asyncio.shield(self.registered), 0.5)
                if status != 200:
                    raise RuntimeError(f"{self.name}: REGISTER answered {status}")
                return
        raise RuntimeError(f"{self.name}: no answer to REGISTER in {timeout:g} s")

    def datagram_received(self, data: bytes, addr) -> None:
        try:
            msg = SipMessage.parse(data)
            if msg.status is not None:
                self._on_response(msg)
            else:
                self._on_request(msg, addr)
        except Exception as exc:  # noqa: BLE001 - a bench peer: count it, carry on
            self.errors[f"{type(exc).__name__}: {exc}"] += 1

    def _on_response(self, msg: SipMessage) -> None:
        method = (msg.get("cseq") or "").split()[-1]
        if method == "REGISTER":
            if self.registered is not None and not self.registered.done():
                self.registered.set_result(msg.status)
        elif method == "BYE" and msg.status >= 200:
            d = self.calls.get(msg.get("call-id") or "")
            if d is not None:
                self._end(d, "talked")

    def _end(self, d: dict, how: str) -> None:
        rec: AgentCall = d["rec"]
        if rec.ended_ns:
            return
        rec.ended_ns, rec.how = time.time_ns(), how
        for h in ("retrans", "talk", "bye_retrans", "answer"):
            if d.get(h) is not None:
                d[h].cancel()
        if d.get("counted"):
            self.in_call -= 1

    def _on_request(self, msg: SipMessage, addr) -> None:
        call_id = msg.get("call-id") or ""
        d = self.calls.get(call_id)
        method = msg.method
        if method == "INVITE" and d is None:
            frm = msg.get("from") or ""
            m = re.search(r'"q(\d+)"', frm)
            rec = AgentCall(self.name, call_id, int(m[1]) if m else None, time.time_ns())
            self.log.append(rec)
            to = (msg.get("to") or "") + f";tag={secrets.token_hex(4)}"
            contact = re.search(r"<([^>]+)>", msg.get("contact") or "")
            target = contact[1] if contact else f"sip:127.0.0.1:{self.server[1]}"
            d = self.calls[call_id] = {
                "invite": msg,
                "to": to,
                "addr": addr,
                "rec": rec,
                "last": None,
                "target": target,
            }
            if self.in_call:
                d["last"] = _response(msg, "486 Busy Here", to)
                self.transport.sendto(d["last"], addr)
                rec.how, rec.ended_ns = "busy", time.time_ns()
                return
            self.in_call += 1
            d["counted"] = True
            self.transport.sendto(_response(msg, "100 Trying"), addr)
            d["last"] = _response(msg, "180 Ringing", to, [f"Contact: <sip:{self.name}@127.0.0.1:{self.port}>"])
            self.transport.sendto(d["last"], addr)
            d["answer"] = asyncio.get_running_loop().call_later(self.ring, self._answer, d)
        elif method == "INVITE":  # a retransmission: the last answer again
            if d["last"] is not None:
                self.transport.sendto(d["last"], addr)
        elif method == "ACK":
            if d is not None and not d["rec"].acked_ns and d["rec"].answered_ns:
                d["rec"].acked_ns = time.time_ns()
                if d.get("retrans") is not None:
                    d["retrans"].cancel()
                d["talk"] = asyncio.get_running_loop().call_later(self.talk, self._bye, d)
        elif method == "CANCEL":
            self.transport.sendto(_response(msg, "200 OK"), addr)
            if d is not None and not d["rec"].answered_ns:
                d["last"] = _response(d["invite"], "487 Request Terminated", d["to"])
                self.transport.sendto(d["last"], addr)
                self._end(d, "cancelled")
        elif method == "BYE":
            self.transport.sendto(_response(msg, "200 OK"), addr)
            if d is not None:
                self._end(d, "hung up by serve")
        else:
            self.errors[f"{method} at an agent"] += 1
            self.transport.sendto(_response(msg, "200 OK"), addr)

    def _answer(self, d: dict) -> None:
        d["rec"].answered_ns = time.time_ns()
        d["last"] = _response(d["invite"], "200 OK", d["to"], [f"Contact: <sip:{self.name}@127.0.0.1:{self.port}>"],
                              sdp(self.rtp_port))  # fmt: skip
        self._resend(d, 0.5)

    def _resend(self, d: dict, interval: float) -> None:
        if d["rec"].acked_ns or d["rec"].ended_ns:
            return
        if interval > 16:
            self.errors["200 OK to INVITE never ACKed"] += 1
            self._end(d, "no ACK")
            return
        self.transport.sendto(d["last"], d["addr"])
        d["retrans"] = asyncio.get_running_loop().call_later(interval, self._resend, d, interval * 2)

    def _bye(self, d: dict, interval: float = 0.5) -> None:
        rec: AgentCall = d["rec"]
        if rec.ended_ns:
            return
        if interval > 8:
            self.errors["BYE never answered"] += 1
            self._end(d, "BYE unanswered")
            return
        if not rec.bye_ns:
            rec.bye_ns = time.time_ns()
            d["bye"] = (
                f"BYE {d['target']} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: {d['to']}\r\nTo: {d['invite'].get('from')}\r\nCall-ID: {rec.call_id}\r\n"
                f"CSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"
            ).encode()
        self.transport.sendto(d["bye"], d["addr"])
        d["bye_retrans"] = asyncio.get_running_loop().call_later(interval, self._bye, d, interval * 2)


@dataclass
class QueueRun:
    callers: int
    agents: int
    offered: int = 0
    up: int = 0  # callers whose INVITE serve answered (Answer())
    answered: int = 0  # callers an agent answered, whose call then ended normally
    lost: int = 0
    lost_why: Counter = field(default_factory=Counter)
    drain_s: float = 0.0  # nan: not drained before the step's deadline
    end_ns: int = 0  # the step's end (drained or deadline): later agent calls are the clean-up's
    ideal_s: float = 0.0
    wait_p50: float = 0.0  # s, caller up -> agent answered
    wait_max: float = 0.0
    agent_calls: Counter = field(default_factory=Counter)
    agent_busy: int = 0  # INVITEs to an agent already in a call (ringinuse=no should prevent them)
    agent_cancelled: int = 0
    serve_cpu: float = 0.0
    media_cpu: float = 0.0
    music_packets: int = 0
    music_lost: int = 0  # sequence numbers never received, except at a ring start (music_skipped)
    music_skipped: int = 0  # ... at a ring start: the queue stops the music, Dial's m() starts it again
    kernel_drops: int = 0  # dropped by the kernel at the callers' full receive buffers (SO_RXQ_OVFL)
    music_expected: int = 0
    music_seconds: float = 0.0  # caller-seconds of hold music (first to last packet, summed)
    pps_mean: float = 0.0
    pps_min: float = 0.0
    jit_p50: float = 0.0  # ms, |inter-arrival - 20 ms|
    jit_p99: float = 0.0
    jit_p999: float = 0.0
    jit_max: float = 0.0
    jit_pairs: int = 0
    gaps: int = 0  # inter-arrivals >= 40 ms within a caller's music (no marker), ring starts included
    ring_gaps: int = 0  # ... of them at a ring start
    restarts: int = 0  # marker bits (the music's source switched)
    dup: int = 0
    foreign: int = 0
    music_start_p50: float = 0.0  # ms, serve's 200 OK at the caller -> first music packet
    music_start_max: float = 0.0
    no_music: int = 0  # callers who received no music at all
    peer_errors: Counter = field(default_factory=Counter)
    log_problems: Counter = field(default_factory=Counter)


RING_START_NS = 100_000_000  # a gap within 100 ms of an agent's INVITE for this caller is the ring start's


def music_figures(run: QueueRun, arrivals, seqs, marks, calls: list[QCall], rings: dict[int, list[int]]) -> None:
    jit: list[int] = []
    rates: list[float] = []
    starts: list[int] = []
    for c, a_raw, s_raw, m_raw in zip(calls, arrivals, seqs, marks, strict=True):
        a, s, m = array.array("q"), array.array("H"), array.array("B")
        a.frombytes(a_raw)
        s.frombytes(s_raw)
        m.frombytes(m_raw)
        n = len(a)
        if not n:
            run.no_music += 1
            continue
        run.music_packets += n
        run.music_expected += 1
        if c.up_ns:
            starts.append(a[0] - c.up_ns)
        for k in range(1, n):
            ds = (s[k] - s[k - 1]) & 0xFFFF
            if ds == 0 or ds > 0x8000:
                run.dup += 1  # a duplicate or a reordered packet
                continue
            at_ring = any(abs(a[k] - r) < RING_START_NS for r in rings.get(c.i, ()))
            run.music_expected += ds
            if at_ring:
                run.music_skipped += ds - 1
            else:
                run.music_lost += ds - 1
            if m[k]:
                run.restarts += 1
                continue
            dt = a[k] - a[k - 1]
            if dt >= 2 * MS20:
                run.gaps += 1
                run.ring_gaps += at_ring
            if ds == 1:
                jit.append(abs(dt - MS20))
        span = (a[-1] - a[0]) / 1e9
        run.music_seconds += span
        if span >= 1:
            rates.append((n - 1) / span)
    jit.sort()
    run.jit_pairs = len(jit)
    run.jit_p50, run.jit_p99, run.jit_p999 = pct(jit, 0.5), pct(jit, 0.99), pct(jit, 0.999)
    run.jit_max = jit[-1] / 1e6 if jit else float("nan")
    run.pps_mean = sum(rates) / len(rates) if rates else float("nan")
    run.pps_min = min(rates) if rates else float("nan")
    starts.sort()
    run.music_start_p50 = pct(starts, 0.5)
    run.music_start_max = starts[-1] / 1e6 if starts else float("nan")


def queue_step(serve: Serve, args) -> QueueRun:
    """N callers call 300 (Answer + Queue(bench)) spread over --queue-ramp s; M registered agents answer
    and talk --queue-talk s each; a receiver process times the hold music on every caller's socket."""
    n, m = args.queue_callers, args.queue_agents
    run = QueueRun(n, m, offered=n)
    rtp = [udp_socket() for _ in range(n)]
    agent_rtp = [udp_socket() for _ in range(m)]
    ctx = multiprocessing.get_context("fork")
    r_parent, r_child = ctx.Pipe()
    receiver = ctx.Process(target=music_receiver_main, args=(r_child, rtp), daemon=True)
    receiver.start()
    if not r_parent.poll(10) or r_parent.recv() != "ready":
        fail("the hold-music receiver process did not start")
    loop = asyncio.new_event_loop()
    log_from = len(serve.log())
    agent_log: list[AgentCall] = []
    calls = [QCall(i, f"q{i}-{secrets.token_hex(6)}@callbench", secrets.token_hex(4), rtp[i].getsockname()[1])
             for i in range(n)]  # fmt: skip
    callers: QueueCallers | None = None
    agents: list[QueueAgent] = []
    transports = []

    async def scenario() -> None:
        nonlocal callers
        lp = asyncio.get_running_loop()
        for name, sock in zip(agent_names(m), agent_rtp, strict=True):
            t, a = await lp.create_datagram_endpoint(
                lambda name=name, sock=sock: QueueAgent(
                    name, serve.sip_port, sock.getsockname()[1], args.queue_ring, args.queue_talk, agent_log
                ),  # fmt: skip
                local_addr=("127.0.0.1", 0),
            )
            transports.append(t)
            agents.append(a)
        reg = await asyncio.gather(*(a.register() for a in agents), return_exceptions=True)
        if bad := [r for r in reg if isinstance(r, BaseException)]:
            fail(f"{len(bad)} of {m} agents could not register: {bad[0]}\nserve log tail:\n{serve.log()[-2000:]}")
        t, callers = await lp.create_datagram_endpoint(
            lambda: QueueCallers(serve.sip_port), local_addr=("127.0.0.1", 0)
        )
        transports.append(t)
        serve.check("the queue's set-up")
        media_pid = serve.media_pid()
        c0, mc0 = cpu_of(serve.proc.pid), cpu_of(media_pid)
        t0 = time.monotonic()

        async def one(c: QCall) -> None:
            await asyncio.sleep(args.queue_ramp * c.i / n)
            await callers.call(c)

        tasks = [asyncio.ensure_future(one(c)) for c in calls]
        deadline = t0 + args.queue_timeout
        while time.monotonic() < deadline:
            serve.check(f"the queue step ({sum(1 for c in calls if c.ended_ns)}/{n} callers done)")
            if receiver.exitcode is not None:
                fail(f"the hold-music receiver process died (exit {receiver.exitcode})")
            if all(t.done() for t in tasks) and all(c.ended_ns or c.error for c in calls):
                break
            await asyncio.sleep(0.2)
        t1 = time.monotonic()
        c1, mc1 = cpu_of(serve.proc.pid), cpu_of(media_pid)
        last_end = max((c.ended_ns for c in calls if c.ended_ns), default=0)
        first = min((c.invited_ns for c in calls if c.invited_ns), default=0)
        drained = all(c.ended_ns or c.error for c in calls)
        run.drain_s = (last_end - first) / 1e9 if drained and last_end and first else float("nan")
        run.end_ns = time.time_ns()
        window = max(t1 - t0, 1e-9)
        run.serve_cpu, run.media_cpu = (c1 - c0) / window * 100, (mc1 - mc0) / window * 100
        for t in tasks:
            t.cancel()
        for c in calls:
            await callers.hangup(c)
        await asyncio.sleep(args.queue_talk + 1.0 if any(c.up_ns and not c.ended_ns for c in calls) else 0.3)

    try:
        loop.run_until_complete(scenario())
    finally:
        for t in transports:
            t.close()
        loop.run_until_complete(asyncio.sleep(0.1))
        loop.close()
        r_parent.send("stop")
        got = r_parent.recv() if r_parent.poll(60) else None
        receiver.join(5)
        if receiver.is_alive():
            receiver.kill()
            receiver.join()
        for s in rtp + agent_rtp:
            s.close()
    if got is None:
        fail("the hold-music receiver process did not report")
    arrivals, seqs, marks, run.foreign, run.kernel_drops = got

    # outcomes: a caller counts as answered when an agent took its call (200 ACKed) and serve then ended it
    took: dict[int, AgentCall] = {}
    for rec in agent_log:
        if rec.how == "busy":
            run.agent_busy += 1
        elif rec.how == "cancelled":
            run.agent_cancelled += 1
        if rec.rung_ns > run.end_ns:
            continue  # rung after the deadline, during the clean-up
        if rec.acked_ns and rec.caller is not None:
            took.setdefault(rec.caller, rec)
            run.agent_calls[rec.agent] += 1
        elif rec.caller is None:
            run.peer_errors["an agent's INVITE without the caller's name"] += 1
    waits = []
    for c in calls:
        run.up += bool(c.up_ns)
        rec = took.get(c.i)
        if c.error:
            run.lost_why[c.error] += 1
        elif not c.up_ns:
            run.lost_why["never answered by serve"] += 1
        elif rec is None and c.ended_ns:
            run.lost_why["hung up by serve without reaching an agent"] += 1
        elif rec is None:
            run.lost_why["still waiting at the deadline"] += 1
        elif not c.ended_ns:
            run.lost_why["reached an agent but its call did not end"] += 1
        else:
            run.answered += 1
            waits.append((rec.answered_ns - c.up_ns) / 1e9)
    run.lost = n - run.answered
    waits.sort()
    run.wait_p50 = waits[len(waits) // 2] if waits else float("nan")
    run.wait_max = waits[-1] if waits else float("nan")
    rounds = -(-n // m)
    run.ideal_s = rounds * (args.queue_ring + args.queue_talk)
    if callers is not None:
        run.peer_errors.update(callers.errors)
    for a in agents:
        run.peer_errors.update(a.errors)
    run.log_problems = log_problems(serve.log()[log_from:])
    rings: dict[int, list[int]] = {}
    for rec in agent_log:
        if rec.caller is not None:
            rings.setdefault(rec.caller, []).append(rec.rung_ns)
    music_figures(run, arrivals, seqs, marks, calls, rings)
    return run


def print_queue(run: QueueRun, args) -> bool:
    """The queue section; True when both targets are met."""
    print(
        f"\n== 3. queue: {run.callers} callers call {QUEUE_EXTEN} (Answer() + Queue(bench)) over "
        f"{args.queue_ramp:g} s, {run.agents} agents =="
    )
    print(f"queues.conf [bench]: strategy {args.queue_strategy}, musicclass default, ringinuse no, wrapuptime 0, "
          f"{run.agents} static members PJSIP/agentNN (registered Python phones: 180, answer after "
          f"{args.queue_ring:g} s, talk {args.queue_talk:g} s, BYE).")  # fmt: skip
    print("hold music timed at the callers by a receiver process (kernel arrival times, SO_TIMESTAMPNS); "
          "jitter = |arrival_i - arrival_(i-1) - 20 ms|\nover consecutive packets (seq + 1) of a caller's music, "
          "a source switch (marker bit) excluded.\n")  # fmt: skip
    why = "; ".join(f"{k}: {v}" for k, v in run.lost_why.most_common(4))
    print(f"  calls offered               {run.offered}")
    print(f"  answered by serve (Answer)  {run.up}")
    print(f"  answered by an agent        {run.answered}")
    print(f"  lost                        {run.lost}" + (f"  ({why})" if why else ""))
    drain = f"{run.drain_s:.1f} s" if run.drain_s == run.drain_s else f"NOT DRAINED within {args.queue_timeout:g} s"
    print(f"  time to drain the queue     {drain} (first INVITE to the last caller's hang-up; "
          f"{-(-run.callers // run.agents)} rounds x (ring + talk) = {run.ideal_s:.1f} s at best)")  # fmt: skip
    print(f"  wait for an agent           p50 {run.wait_p50:.1f} s, max {run.wait_max:.1f} s")
    per_agent = sorted(run.agent_calls.values())
    spread = f"{per_agent[0]}-{per_agent[-1]}" if per_agent else "-"
    print(f"  calls per agent             {spread} ({len(per_agent)} agents took calls); INVITEs to a busy agent "
          f"{run.agent_busy}, cancelled rings {run.agent_cancelled}")  # fmt: skip
    loss_pct = run.music_lost / run.music_expected * 100 if run.music_expected else float("nan")
    print(
        f"  hold music                  {run.music_packets} packets over {run.music_seconds:.0f} caller-seconds; "
        f"{run.pps_mean:.1f} packets/s per caller (min {run.pps_min:.1f}); callers without music {run.no_music}"
    )
    print(
        f"  hold music loss             lost {run.music_lost} ({loss_pct:.3f}%; of them dropped by the kernel at the "
        f"callers' sockets {run.kernel_drops}); frames skipped at a ring start {run.music_skipped}"
    )
    print(f"  hold music jitter           p50 {run.jit_p50:.3f}, p99 {run.jit_p99:.3f}, p99.9 {run.jit_p999:.3f}, "
          f"max {run.jit_max:.2f} ms over {run.jit_pairs} inter-arrivals; gaps >= 40 ms {run.gaps} "
          f"({run.ring_gaps} at a ring start), source switches {run.restarts}")  # fmt: skip
    print(f"  music start after Answer    p50 {run.music_start_p50:.1f} ms, max {run.music_start_max:.1f} ms")
    print(f"  CPU during the run          serve {run.serve_cpu:.1f}% of a core, media process {run.media_cpu:.1f}%")
    if run.peer_errors:
        print(f"  bench peer errors           {dict(run.peer_errors.most_common(4))}")
    if run.foreign or run.dup:
        print(f"  other packets at the callers' sockets: {run.foreign} (RTCP etc.), duplicates/reordered {run.dup}")
    print("  serve log during the queue step (WARNING/ERROR/CRITICAL, tracebacks), most frequent first:"
          + ("" if run.log_problems else " none"))  # fmt: skip
    for what, k in run.log_problems.most_common(8):
        print(f"    {k:>6} x {what}")
    calls_ok = run.lost == 0
    jit_ok = run.jit_p99 < 1.0 and run.jit_pairs > 0
    print(f"target: 0 lost calls: {'PASS' if calls_ok else 'FAIL'} ({run.lost} lost)")
    print(f"target: hold-music jitter p99 < 1 ms: {'PASS' if jit_ok else 'FAIL'} ({run.jit_p99:.3f} ms)")
    return calls_ok and jit_ok


# ---- report -----------------------------------------------------------------------------------------------
def log_problems(text: str) -> Counter[str]:
    """WARNING/ERROR/CRITICAL records and tracebacks, numbers folded to N so that repeats group."""
    problems: Counter[str] = Counter()
    in_traceback = False
    for line in text.splitlines():
        if line.startswith("Traceback"):
            in_traceback = True
        elif in_traceback and not line.startswith(" "):
            problems[f"exception: {line}"[:200]] += 1
            in_traceback = False
        elif record := re.search(r"\b(WARNING|ERROR|CRITICAL)\b.*", line):
            problems[re.sub(r"\d+", "N", record[0])[:200]] += 1
    return problems


def best(steps: list[Step]) -> Step | None:
    clean = [s for s in steps if s.clean]
    return clean[-1] if clean else None


def environment() -> str:
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    model = ""
    with contextlib.suppress(OSError):
        m = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        model = m[1] if m else ""
    versions = []
    for cmd in (["sipp", "-v"], ["kamailio", "-v"], ["rtpengine", "--version"]):
        with contextlib.suppress(Exception):
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
            text = (out.stdout + out.stderr).strip()
            first = next((line.strip() for line in text.splitlines() if line.strip()), "")
            versions.append(first[:60])
    return (
        f"{os.cpu_count()} cores ({model}), load average {load} (shared machine); "
        f"python {sys.version.split()[0]}; " + "; ".join(versions)
    )


def print_cps(ours: list[Step], kam: list[Step], args) -> None:
    print(
        f"\n== 1. calls per second, open loop: sipp uac -> X -> sipp uas, {args.step_seconds:g} s per step, "
        f"calls held {args.hold} ms =="
    )
    print("a step is clean when every offered call completes, with 0 failed calls, 0 retransmissions (uac and uas)")
    print("and 0 unexpected messages. cpu% = the server's processes' CPU time / the step's time (100% = one core);")
    print("ms/call = that CPU time / calls; for switchboard, serve + its media process (media: the latter's share);")
    print("sipp% = the load generator's CPU (uac + uas sipp), which shares the 2 cores.\n")
    print(f"{'offered/s':>10} | {'switchboard':^46} | {'kamailio (tm+rr proxy, 2 children)':^40}")
    print(f"{'':>10} | {'ok':>7}{'fail':>6}{'retr':>6}{'cpu%':>6}{'ms/call':>8}{'media':>6}{'sipp%':>6}  | "
          f"{'ok':>7}{'fail':>6}{'retr':>6}{'cpu%':>6}{'ms/call':>8}{'sipp%':>6}")  # fmt: skip
    by_rate: dict[int, dict[str, Step]] = {}
    for s in ours + kam:
        by_rate.setdefault(s.rate, {})[s.target] = s
    for rate in sorted(by_rate):
        cells = []
        for target, width in (("switchboard", 46), ("kamailio", 40)):
            s = by_rate[rate].get(target)
            if s is None:
                cells.append(f"{'-':>{width - 1}} ")
                continue
            share = s.server_cpu / s.elapsed * 100 if s.elapsed else 0.0
            flag = " " if s.clean else "x"
            media = f"{s.media_cpu / s.successful * 1000:>6.2f}" if target == "switchboard" and s.successful else ""
            sipp_share = s.sipp_cpu / s.elapsed * 100 if s.elapsed else 0.0
            cells.append(
                f"{s.successful:>7}{s.failed:>6}{s.retrans_uac + s.retrans_uas:>6}{share:>5.0f}%"
                f"{s.cpu_per_call_ms:>8.2f}{media}{sipp_share:>5.0f}% {flag}"
            )
        print(f"{rate:>10} | " + " | ".join(cells))
    print("(x: unclean step; the ramp stops there)")
    bo, bk = best(ours), best(kam)
    ro, rk = (bo.rate if bo else 0), (bk.rate if bk else 0)
    top = max(args.rates)

    def figure(b: Step | None, steps: list[Step]) -> str:
        if b is None:
            return "none clean"
        return f">= {b.rate}" if steps and steps[-1].clean and b.rate == top else f"{b.rate}"

    ratio = ro / rk if rk else float("nan")
    cpu_ratio = bo.cpu_per_call_ms / bk.cpu_per_call_ms if bo and bk else float("nan")
    print(
        f"\n{'':<36}{'switchboard':>14}{'kamailio':>14}{'ours/kam':>10}\n"
        f"{'highest clean offered calls/s':<36}{figure(bo, ours):>14}{figure(bk, kam):>14}{ratio:>10.2f}\n"
        f"{'server CPU per call at that rate':<36}"
        f"{(f'{bo.cpu_per_call_ms:.2f} ms' if bo else '-'):>14}{(f'{bk.cpu_per_call_ms:.2f} ms' if bk else '-'):>14}"
        f"{cpu_ratio:>10.2f}"
    )
    for name, steps in (("switchboard", ours), ("kamailio", kam)):
        last = steps[-1] if steps else None
        if last is not None and not last.clean:
            print(f"{name}: first unclean step {last.rate}/s: {last.why}")
            for e in last.errors[:4]:
                print(f"    {e[:220]}")
        elif last is not None and last.rate == top:
            print(f"{name}: clean up to the top of the ramp ({top}/s): its figure is a lower bound")
    print(f"target: >= 200 calls/s clean for switchboard: {'MET' if ro >= 200 else 'NOT MET'}")


def print_rtp(rows: list[tuple[RelayRun, RelayRun, RelayRun | None]], args) -> None:
    print(
        f"\n== 2. concurrent calls with RTP relayed: one PCMU stream per call, 50 pps, one direction, "
        f"{args.rtp_seconds:g} s measured after {args.warmup:g} s =="
    )
    print(
        "switchboard: calls set up over SIP through serve (uac -> Dial(PJSIP/uas) -> uas), RTP relayed by its "
        "media process;\nrtpengine: Debian's rtpengine-daemon, userspace (--table=-1), 1 thread, calls made "
        "with ng offer/answer (no SIP);\nno relay: sender -> receiver directly (the measurement's floor). "
        "added jitter = delay - the stream's minimum delay;\ndelays from the sender's clock read just before "
        "sendto to the kernel's arrival timestamp (SO_TIMESTAMPNS).\n"
    )
    cols = [
        ("calls", lambda r: f"{r.streams}"),
        ("relay", lambda r: r.relay),
        ("sent", lambda r: f"{r.sent}"),
        ("lost", lambda r: f"{r.lost}"),
        ("jit p50", lambda r: f"{r.jitter_p50:.3f}"),
        ("jit p99", lambda r: f"{r.jitter_p99:.3f}"),
        ("jit max", lambda r: f"{r.jitter_max:.2f}"),
        ("dly p50", lambda r: f"{r.delay_p50:.3f}"),
        ("rfc3550", lambda r: f"{r.rfc3550_avg:.3f}"),
        ("cpu%", lambda r: f"{r.cpu_share:.1f}" if r.relay != "no relay" else "-"),
        ("pkt/cpu s", lambda r: f"{r.pps_per_cpu:,.0f}" if r.relay != "no relay" else "-"),
        ("setup s", lambda r: f"{r.setup_s:.1f}" if r.relay != "no relay" else "-"),
    ]
    widths = [6, 12, 9, 6, 8, 8, 8, 8, 8, 6, 11, 8]
    print("".join(f"{name:>{w}}" for (name, _), w in zip(cols, widths, strict=True)) + "   (ms unless said)")
    for ours, theirs, direct in rows:
        for r in (ours, theirs, direct):
            if r is None:
                continue
            line = "".join(f"{fmt(r):>{w}}" for (_, fmt), w in zip(cols, widths, strict=True))
            line += f"  {r.note}" if r.note else ""
            print(line + (f"  late sends {r.late_sends}" if r.late_sends else ""))
        ratio = ours.pps_per_cpu / theirs.pps_per_cpu if theirs.pps_per_cpu else float("nan")
        print(f"{'':6}ours/rtpengine packets per CPU second: {ratio:.2f}; serve's own CPU meanwhile: "
              f"{ours.other_cpu / ours.window_s * 100 if ours.window_s else 0:.1f}%")  # fmt: skip
    print("\nswitchboard per step (target: 0 loss and added jitter p99 < 1 ms at >= 500 concurrent calls):")
    for ours, theirs, direct in rows:
        ok = ours.lost == 0 and ours.jitter_p99 < 1.0
        why = "" if ok else f" (lost {ours.lost}, added jitter p99 {ours.jitter_p99:.3f} ms)"
        late = [f"{r.relay} {r.late_sends}" for r in (ours, theirs, direct) if r is not None and r.late_sends]
        note = (f"; the sender itself ran > 5 ms late (packets: {', '.join(late)}): the machine was busy, "
                "run again before concluding") if late else ""  # fmt: skip
        print(f"  {ours.streams:>5} calls: {'meets' if ok else 'DOES NOT meet'} it{why}{note}")
    last_o, last_t, _ = rows[-1]
    ratio = last_o.pps_per_cpu / last_t.pps_per_cpu if last_t.pps_per_cpu else float("nan")
    verdict = "MET" if ratio >= 0.5 else "NOT MET"
    print(f"packets per CPU second at {last_o.streams} calls: switchboard {last_o.pps_per_cpu:,.0f}, rtpengine "
          f"{last_t.pps_per_cpu:,.0f}, ratio {ratio:.2f} (target >= 0.5: {verdict})")  # fmt: skip


# ---- main -------------------------------------------------------------------------------------------------
def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rates",
        type=ints,
        default=ints("25,50,100,150,200,300,400,500,600,800,1000,1500,2000,3000"),
        help="offered calls/s",
    )
    parser.add_argument("--step-seconds", type=float, default=5, help="seconds of calls offered per rate step")
    parser.add_argument("--hold", type=int, default=300, help="call duration in ms (sipp -d)")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between steps")
    parser.add_argument("--concurrent", type=ints, default=ints("100,250,500"), help="concurrent relayed calls")
    parser.add_argument("--rtp-seconds", type=float, default=5, help="seconds of RTP measured per step")
    parser.add_argument("--warmup", type=float, default=1, help="seconds of RTP before measuring")
    parser.add_argument("--setup-window", type=int, default=20, help="INVITEs in flight while setting up")
    parser.add_argument("--no-floor", action="store_true", help="skip the no-relay runs")
    parser.add_argument("--skip-cps", action="store_true", help="only the concurrent calls part")
    parser.add_argument("--skip-rtp", action="store_true", help="only the calls/s part")
    parser.add_argument("--targets", type=lambda t: t.split(","), default=["switchboard", "kamailio"],
                        help="calls/s targets (default switchboard,kamailio)")  # fmt: skip
    parser.add_argument("--skip-queue", action="store_true", help="skip the queue step")
    parser.add_argument("--queue-callers", type=int, default=200, help="callers calling the queue at once")
    parser.add_argument("--queue-agents", type=int, default=20, help="agents (static queue members)")
    parser.add_argument("--queue-talk", type=float, default=2.0, help="seconds an agent talks before hanging up")
    parser.add_argument("--queue-ring", type=float, default=0.5, help="seconds an agent rings before answering")
    parser.add_argument("--queue-ramp", type=float, default=1.0, help="seconds over which the callers call")
    parser.add_argument("--queue-strategy", default="rrmemory", help="the queue's strategy")
    parser.add_argument(
        "--queue-timeout",
        type=float,
        default=None,
        help="seconds before the queue step gives up (default 60 + 3 x the ideal drain time)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, sipp stats)")
    args = parser.parse_args()
    if args.queue_timeout is None:
        rounds = -(-args.queue_callers // max(args.queue_agents, 1))
        args.queue_timeout = 60 + 3 * rounds * (args.queue_ring + args.queue_talk)
    if not args.skip_queue and (args.queue_callers < 1 or args.queue_agents < 1):
        fail("--queue-callers and --queue-agents must be at least 1")
    if reason := missing("sipp", "kamailio"):
        fail(f"needs sipp and kamailio: {reason}")
    if not args.skip_rtp and not shutil.which("rtpengine"):
        fail("needs rtpengine (Debian package rtpengine-daemon)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(4 * max(args.concurrent, default=0), 2 * args.queue_callers + 4 * args.queue_agents) + 256
    if soft < want:
        if hard < want:
            fail(f"open files limit {hard} < {want} needed for {max(args.concurrent)} calls")
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    started = time.monotonic()
    env_before = environment()
    tmp = Path(tempfile.mkdtemp(prefix="switchboard-call-bench-"))
    serve = Serve(tmp)
    uas_port, kam_uas_port = free_port(), free_port()  # two: late retransmissions of one cannot reach the other
    # 512 MB of shared memory: with the default 64 MB, tm runs out ("out of mem" in new_t) after about
    # 2400 calls at 600-800 calls/s (each transaction stays a few seconds after it ends)
    kam = Kamailio(tmp / "kamailio", children=2, proxy_to=f"sip:127.0.0.1:{kam_uas_port}", shm_mb=512)
    rtpe: subprocess.Popen | None = None
    ours_cps: list[Step] = []
    kam_cps: list[Step] = []
    rtp_rows = []
    queue_run: QueueRun | None = None
    code = 0
    try:
        print(f"environment: {env_before}", flush=True)
        serve.start()
        serve.configure(uas_port, None if args.skip_queue else (args.queue_agents, args.queue_strategy))
        print(f"switchboard serve up (sip {serve.sip_port}, media pid {serve.media_pid()}); work dir {tmp}", flush=True)
        if not args.skip_cps:
            print("calls/s ramp:", flush=True)
            if "switchboard" in args.targets:
                ours_cps = cps_ramp("switchboard", serve.sip_port, uas_port, args, tmp, lambda: [serve.proc.pid],
                                    serve.check, serve.media_pid)  # fmt: skip
            if "kamailio" in args.targets:
                try:
                    kam.start()
                except RuntimeError as exc:
                    fail(str(exc))

                def kam_alive(when):
                    if kam.proc.poll() is not None:
                        fail(f"kamailio died (exit {kam.proc.returncode}) during {when}:\n{kam.log()[-2000:]}")

                kam_cps = cps_ramp("kamailio", kam.port, kam_uas_port, args, tmp, lambda: [kam.proc.pid], kam_alive)
                kam.stop()
        if not args.skip_rtp:
            print("concurrent calls with RTP:", flush=True)
            rtpe, ng_addr = start_rtpengine(RTPENGINE_RTP)
            for step, n in enumerate(args.concurrent):
                ours = relay_ours(serve, uas_port, n, args)
                time.sleep(args.pause)
                theirs = relay_rtpengine(rtpe, ng_addr, n, step, args)
                direct = None if args.no_floor else relay_direct(n, args)
                rtp_rows.append((ours, theirs, direct))
                for r in (ours, theirs, direct):
                    if r is not None:
                        print(f"  {n:>4} calls {r.relay:<12} lost {r.lost}/{r.sent}, added jitter p99 "
                              f"{r.jitter_p99:.3f} ms, {r.pps_per_cpu:,.0f} pkt per cpu s", flush=True)  # fmt: skip
                time.sleep(args.pause)
        if not args.skip_queue:
            print(f"queue: {args.queue_callers} callers, {args.queue_agents} agents:", flush=True)
            queue_run = queue_step(serve, args)
            q = queue_run
            print(f"  answered by an agent {q.answered}/{q.offered}, lost {q.lost}, drained in {q.drain_s:.1f} s, "
                  f"hold-music jitter p99 {q.jit_p99:.3f} ms", flush=True)  # fmt: skip
        serve.check("the end of the run")

        print(f"\nenvironment at start: {env_before}")
        print(f"environment at end:   load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
        print("baselines: Kamailio 5.6 (Debian) as a stateful proxy (tm + rr + sl, 2 UDP children) for calls/s; "
              "rtpengine (Debian rtpengine-daemon, userspace, 1 thread) for RTP relay.")  # fmt: skip
        if not args.skip_cps:
            print_cps(ours_cps, kam_cps, args)
        if rtp_rows:
            print_rtp(rtp_rows, args)
        if queue_run is not None:
            print_queue(queue_run, args)
        problems = log_problems(serve.log())
        print("\nserve log (WARNING/ERROR/CRITICAL, tracebacks), most frequent first:" + ("" if problems else " none"))
        for what, n in problems.most_common(12):
            print(f"  {n:>6} x {what}")
        if kam_cps:
            kam_problems = log_problems(kam.log())
            print("\nkamailio log (WARNING/ERROR/CRITICAL), most frequent first:" + ("" if kam_problems else " none"))
            for what, n in kam_problems.most_common(6):
                print(f"  {n:>6} x {what}")
        print(f"\nwhole bench run: {time.monotonic() - started:.0f} s")
        if ours_cps and not best(ours_cps):
            print("call_bench: switchboard had no clean calls/s step")
            code = 1
        if any(o.lost > 0 for o, _, _ in rtp_rows):
            code = 1
        if queue_run is not None and queue_run.lost:
            print(f"call_bench: {queue_run.lost} queue callers lost")
            code = 1
    finally:
        serve.stop()
        kam.stop()
        if rtpe is not None:
            rtpe.terminate()
            try:
                rtpe.wait(5)
            except subprocess.TimeoutExpired:
                rtpe.kill()
                rtpe.wait()
        if args.keep:
            print(f"work directory kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
