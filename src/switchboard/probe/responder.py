"""A SIP responder for tests and benchmarks: answers OPTIONS with 200 OK, late, jittered or not at all.

Every request's fate is drawn from seeded RNGs in arrival order, so a run is reproducible: the n-th
OPTIONS received is dropped when the n-th draw of `random.Random(seed).random()` is below `drop`, and
the delay of the n-th answered one is `delay_ms` plus a uniform draw in ±`jitter_ms` from a second,
independent generator (`random.Random(seed + 1)`), floored at 0. `requests` keeps, per request, its
Call-ID, when it arrived and when it was answered (time.perf_counter), so a client's RTT can be checked
against the responder's own timestamps.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from dataclasses import dataclass

from switchboard.sip.message import ParseError, parse, response_to


@dataclass
class Received:
    call_id: str
    received_at: float  # time.perf_counter() when the datagram was handed to the protocol
    dropped: bool
    answered_at: float | None = None  # time.perf_counter() just before the 200 OK was sent


def expected_drops(n: int, drop: float, seed: int = 0) -> list[bool]:
    """Which of the first n OPTIONS a Responder(drop=drop, seed=seed) drops."""
    rng = random.Random(seed)
    return [rng.random() < drop for _ in range(n)]


class Responder:
    """UDP SIP responder on the running loop; `await start()`, then `port`, and `stop()` when done.

    It reads its socket itself (add_reader, draining every datagram queued at each wake-up, with a large
    receive buffer) rather than through an asyncio transport, which reads one datagram per loop turn and
    so lets bursts from hundreds of concurrent probes overflow the socket buffer."""

    _RCVBUF = 8 * 1024 * 1024  # the kernel caps it at net.core.rmem_max
    _BATCH = 1024  # datagrams read per wake-up at most, so one busy socket cannot starve the loop

    def __init__(self, *, delay_ms: float = 0.0, jitter_ms: float = 0.0, drop: float = 0.0, seed: int = 0) -> None:
        if delay_ms < 0 or jitter_ms < 0 or not 0.0 <= drop <= 1.0:
            raise ValueError("delay_ms and jitter_ms must be >= 0, drop in 0..1")
        self.delay_ms = delay_ms
        self.jitter_ms = jitter_ms
        self.drop = drop
        self._drop_rng = random.Random(seed)
        self._delay_rng = random.Random(seed + 1)
        self.requests: list[Received] = []
        self.send_errors = 0
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handles: set[asyncio.TimerHandle] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Responder:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE)
        family, _, _, _, addr = infos[0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._RCVBUF)
            sock.bind(addr)
        except OSError:
            sock.close()
            raise
        self._sock, self._loop = sock, loop
        loop.add_reader(sock.fileno(), self._readable)
        return self

    @property
    def port(self) -> int:
        if self._sock is None:
            raise RuntimeError("responder not started")
        return self._sock.getsockname()[1]

    def stop(self) -> None:
        for h in self._handles:
            h.cancel()
        self._handles.clear()
        if self._sock is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    @property
    def answered(self) -> int:
        return sum(1 for r in self.requests if r.answered_at is not None)

    def _readable(self) -> None:
        sock = self._sock
        for _ in range(self._BATCH):
            if sock is None or self._sock is None:
                return
            try:
                data, addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # e.g. an ICMP error queued on the socket
            self.datagram_received(data, addr)

    def datagram_received(self, data: bytes, addr) -> None:
        now = time.perf_counter()
        try:
            req = parse(data)
        except ParseError:
            return
        if req.method != "OPTIONS":
            return
        rec = Received(req.get("Call-ID") or "", now, self._drop_rng.random() < self.drop)
        self.requests.append(rec)
        if rec.dropped:
            return
        delay = self.delay_ms
        if self.jitter_ms:
            delay = max(0.0, delay + self._delay_rng.uniform(-self.jitter_ms, self.jitter_ms))
        payload = response_to(req, 200).to_bytes()
        if delay <= 0:
            self._answer(rec, payload, addr, None)
            return
        # schedule relative to the arrival, not to now: parsing time must not add to the delay
        loop = asyncio.get_running_loop()
        when = loop.time() + delay / 1000.0 - (time.perf_counter() - now)
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            self._answer(rec, payload, addr, handle)

        handle = loop.call_at(when, fire)
        self._handles.add(handle)

    def _answer(self, rec: Received, payload: bytes, addr, handle) -> None:
        if handle is not None:
            self._handles.discard(handle)
        if self._sock is None:
            return
        rec.answered_at = time.perf_counter()
        try:
            self._sock.sendto(payload, addr)
        except OSError:
            self.send_errors += 1  # a full send buffer: the answer is lost, as on a real network
