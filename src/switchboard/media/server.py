"""`switchboard media`: the media process's main (control socket, engine, signals).

Prints exactly one line `switchboard-media: listening control=HOST:PORT` to stdout once the
control socket is bound (the port is the real one when 0 was asked), and nothing else to stdout:
logs go to stderr. SIGTERM/SIGINT close every leg and end the process with status 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from switchboard.media.engine import Engine
from switchboard.media.protocol import ControlProtocol

log = logging.getLogger(__name__)


def parse_hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT, not {text!r}")
    return host, int(port)


def parse_range(text: str) -> tuple[int, int]:
    low, sep, high = text.partition("-")
    if not sep or not low.isdigit() or not high.isdigit() or not 0 < int(low) < int(high) <= 65535:
        raise ValueError(f"expected LOW-HIGH ports, not {text!r}")
    return int(low), int(high)


async def serve(
    listen: str,
    rtp_ports: str,
    sounds: tuple[str, ...] = (),
    moh: str | None = None,
    rtp_host: str | None = None,
    timeout: float = 0.0,
    with_parent: bool = False,
) -> None:
    host, port = parse_hostport(listen)
    low, high = parse_range(rtp_ports)
    loop = asyncio.get_running_loop()
    media_host = rtp_host or host

    def factory(emit):
        return Engine(media_host, (low, high), sounds, moh, emit=emit, timeout=timeout, loop=loop)

    transport, proto = await loop.create_datagram_endpoint(lambda: ControlProtocol(factory), local_addr=(host, port))
    engine = proto.engine
    engine.start()
    bound = transport.get_extra_info("sockname")
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sys.stdout.write(f"switchboard-media: listening control={bound[0]}:{bound[1]}\n")
    sys.stdout.flush()
    if with_parent:  # the embedded engine of a `serve`: it ends with it, even when serve is SIGKILLed
        parent = os.getppid()

        def watch() -> None:
            if os.getppid() != parent:
                log.warning("the process that started this media engine is gone: stopping")
                stop.set()
            else:
                loop.call_later(1.0, watch)

        loop.call_later(1.0, watch)
    try:
        await stop.wait()
    finally:
        await engine.close()
        transport.close()


def run(**kwargs) -> None:
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - platforms without uvloop
        runner = asyncio.run
    runner(serve(**kwargs))
