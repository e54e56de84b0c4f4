"""Event stream benchmark: RATE events/s published on the bus, fanned out to N subscribers over the
real `/events/stream` (SSE) route served by uvicorn, for DURATION seconds.

The server side (this process): the event bus, the real route module (switchboard.api.ui.events)
under uvicorn (uvloop, httptools, as serve runs it), with the token check answered by a stub (an
admin), and a publisher that publishes RATE events/s in 10 ms ticks; each event carries its publish
time. The subscribers run in a child process (asyncio, one httpx stream each) and record, per event,
publish→receive latency. Printed: events published, delivered/s over all subscribers (expected: RATE
× N), events missed (must be 0), `gap` events (must be 0), p50/p99/max latency, and the max lag (the
most events a subscriber was behind the newest published one, sampled when it received).

    .venv/bin/python bench/event_bench.py [--rate 1000] [--subscribers 50] [--duration 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import socket
import statistics
import sys
import time
from types import SimpleNamespace


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- subscribers (child process) ---------------------------------------------------------------
async def _subscriber(port: int, stop_at: float, out: dict, ready: asyncio.Event, n_ready: list) -> None:
    lat: list[float] = []
    got = gaps = max_lag = 0
    try:
        await _read(port, stop_at, ready, n_ready, lat, counts := [0, 0, 0])
    finally:  # (cancelled at the end: what was read counts)
        got, gaps, max_lag = counts
        out["lat"] += lat
        out["got"].append(got)
        out["gaps"] += gaps
        out["max_lag"] = max(out["max_lag"], max_lag)


async def _read(port: int, stop_at: float, ready: asyncio.Event, n_ready: list, lat: list, counts: list) -> None:
    """A raw HTTP/1.1 reader (the client must not be the bottleneck): every `data: ` line is an event;
    chunked-encoding size lines fall between frames and are skipped."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /events/stream?token=x HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n")
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n", 1)[0], head
    n_ready[0] += 1
    if n_ready[0] == n_ready[1]:
        ready.set()
    buf = b""
    loads = json.loads
    try:
        while time.time() < stop_at:
            chunk = await reader.read(1 << 16)
            if not chunk:
                break
            now = time.time()
            buf += chunk
            lines = buf.split(b"\n")
            buf = lines.pop()
            for line in lines:
                if line.startswith(b"data: "):
                    ev = loads(line[6:])
                    if ev["type"] == "gap":
                        counts[1] += 1
                        continue
                    counts[0] += 1
                    lat.append(now - ev["data"]["t"])
                    counts[2] = max(counts[2], ev["data"]["head"] - ev["data"]["n"])
    finally:
        writer.close()


def _clients(port: int, n: int, seconds: float, conn) -> None:
    async def main():
        out = {"lat": [], "got": [], "gaps": 0, "max_lag": 0}
        ready = asyncio.Event()
        n_ready = [0, n]
        stop_at = time.time() + seconds + 30
        tasks = [asyncio.ensure_future(_subscriber(port, stop_at, out, ready, n_ready)) for _ in range(n)]
        await asyncio.wait_for(ready.wait(), 30)
        conn.send("ready")
        # the publisher is done: read what is still on the way, then stop (waited for off the loop)
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        await asyncio.sleep(1.0)
        for t in tasks:
            t.cancel()
        errors = [r for r in await asyncio.gather(*tasks, return_exceptions=True) if isinstance(r, Exception)]
        out["errors"] = [repr(e) for e in errors[:3]]
        conn.send(out)

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())


# ---- server + publisher (this process) -------------------------------------------------------------
class _Tx:
    async def __aenter__(self):
        return None

    async def __aexit__(self, *exc):
        return False


async def run(rate: int, subscribers: int, duration: float) -> dict:
    import uvicorn
    from fastapi import FastAPI

    from switchboard.api.ui import events as ui_events
    from switchboard.events import EventBus

    bus = EventBus()
    admin = SimpleNamespace(id=1, is_admin=True)

    async def authenticate_token(conn, token):
        return admin

    app = FastAPI()
    app.state.services = SimpleNamespace(
        events=bus,
        db=SimpleNamespace(transaction=lambda write=True: _Tx()),
        identity=SimpleNamespace(authenticate_token=authenticate_token),
    )
    app.include_router(ui_events.router)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", loop="none", http="httptools")
    )
    serving = asyncio.ensure_future(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)

    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=_clients, args=(port, subscribers, duration, child))
    proc.start()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, parent.recv)  # every subscriber connected

    published = 0
    tick = 0.01
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < duration:
        due = int(elapsed * rate)
        head = due
        while published < due:
            bus.publish("bench", {"n": published, "head": head, "t": time.time(), "pad": "x" * 100})
            published += 1
        await asyncio.sleep(tick)
    took = time.perf_counter() - start
    parent.send("done")
    out = await loop.run_in_executor(None, parent.recv)
    proc.join(10)
    server.should_exit = True
    with contextlib.suppress(Exception):
        await asyncio.wait_for(serving, 5)
    if out.get("errors"):
        print("subscriber errors:", out["errors"], file=sys.stderr)
    lat = sorted(out["lat"])
    delivered = sum(out["got"])
    return {
        "published": published,
        "seconds": took,
        "subscribers": subscribers,
        "delivered": delivered,
        "delivered_per_s": delivered / took,
        "missed": published * subscribers - delivered,
        "gaps": out["gaps"],
        "min_per_subscriber": min(out["got"]) if out["got"] else 0,
        "p50_ms": statistics.median(lat) * 1000 if lat else float("nan"),
        "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1000 if lat else float("nan"),
        "max_ms": lat[-1] * 1000 if lat else float("nan"),
        "max_lag_events": out["max_lag"],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=int, default=1000)
    p.add_argument("--subscribers", type=int, default=50)
    p.add_argument("--duration", type=float, default=10.0)
    a = p.parse_args()
    try:
        import uvloop

        r = uvloop.run(run(a.rate, a.subscribers, a.duration))
    except ImportError:
        r = asyncio.run(run(a.rate, a.subscribers, a.duration))
    print(f"event stream: {a.rate} events/s to {a.subscribers} SSE subscribers for {r['seconds']:.1f} s")
    cols = ("published", "delivered/s", "missed", "gaps", "p50 ms", "p99 ms", "max ms", "max lag")
    print(" ".join(f"{c:>{w}}" for c, w in zip(cols, (10, 12, 7, 5, 7, 7, 7, 8), strict=True)))
    print(
        f"{r['published']:>10} {r['delivered_per_s']:>12.0f} {r['missed']:>7} {r['gaps']:>5} "
        f"{r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f} {r['max_ms']:>7.1f} {r['max_lag_events']:>8}"
    )
    ok = r["missed"] == 0 and r["gaps"] == 0
    print("kept up: yes" if ok else "kept up: NO (events missed or gaps)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
