"""The call engine's side of the media control protocol (docs/media-protocol.md): commands to one or
more `switchboard media` processes over UDP, replies matched by cookie, events (DTMF, end of
playback) handed to `on_event`.

Several media processes: each call (media call-id = the channel's linkedid) is pinned to one of
them, chosen least-loaded (fewest calls) when its first leg is made; every later command for that
call goes to the same process. A command unanswered within `timeout` is retried (same cookie, as
ng: the process answers a repeated cookie from its cache) and then fails with MediaError.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import Counter
from collections.abc import Callable

from switchboard.media.bencode import decode, encode

log = logging.getLogger("switchboard.media.client")


class MediaError(RuntimeError):
    pass


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, owner: MediaControl):
        self.owner = owner

    def datagram_received(self, data: bytes, addr) -> None:
        self.owner._received(data, addr)

    def error_received(self, exc) -> None:
        log.debug("media control socket: %s", exc)


class MediaControl:
    def __init__(self, servers: list[tuple[str, int]], *, timeout: float = 1.0, retries: int = 2):
        if not servers:
            raise ValueError("no media engine")
        self.servers = list(servers)
        self.timeout, self.retries = timeout, retries
        self.on_event: Callable[[dict], None] | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._waiting: dict[bytes, asyncio.Future] = {}
        self._cookies = itertools.count(1)
        self._pinned: dict[str, tuple[str, int]] = {}  # media call-id -> server
        self._load: Counter[tuple[str, int]] = Counter()
        self._legs: dict[str, set[str]] = {}  # media call-id -> its legs (from-tags)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), local_addr=("127.0.0.1", 0))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _server_for(self, cmd: dict) -> tuple[str, int]:
        call_id = str(cmd.get("call-id") or "")
        if not call_id:
            return self.servers[0]
        server = self._pinned.get(call_id)
        if server is None:
            server = min(self.servers, key=lambda s: self._load[s])
            self._pinned[call_id] = server
            self._load[server] += 1
        return server

    def _forget(self, cmd: dict) -> None:
        """Keep count of each call's legs: once its last leg (or the whole call) is deleted, the call
        no longer counts toward its engine's load."""
        call_id = str(cmd.get("call-id") or "")
        if not call_id:
            return
        command, leg = cmd.get("command"), str(cmd.get("from-tag") or "")
        if command == "leg" and leg:
            self._legs.setdefault(call_id, set()).add(leg)
        elif command == "delete":
            legs = self._legs.get(call_id, set())
            legs.discard(leg)
            if not leg or not legs:
                self._legs.pop(call_id, None)
                server = self._pinned.pop(call_id, None)
                if server is not None:
                    self._load[server] -= 1

    async def command(self, cmd: dict) -> dict:
        """Send one command; the reply dictionary (MediaError on an error reply or no reply)."""
        if self._transport is None:
            await self.start()
        server = self._server_for(cmd)
        cookie = str(next(self._cookies)).encode()
        data = cookie + b" " + encode(cmd)
        fut = asyncio.get_running_loop().create_future()
        self._waiting[cookie] = fut
        try:
            for _ in range(self.retries + 1):
                self._transport.sendto(data, server)
                with contextlib.suppress(TimeoutError):
                    reply = await asyncio.wait_for(asyncio.shield(fut), self.timeout)
                    break
            else:
                raise MediaError(f"no answer from the media engine at {server[0]}:{server[1]} to {cmd.get('command')}")
        finally:
            self._waiting.pop(cookie, None)
        if reply.get("result") == "error":
            if cmd.get("command") == "delete":
                self._forget(cmd)

            raise MediaError(str(reply.get("error-reason", "error")))
        self._forget(cmd)
        return reply

    def _received(self, data: bytes, addr) -> None:
        cookie, _, payload = data.partition(b" ")
        try:
            message = _text(decode(payload))
        except ValueError:
            log.warning("media engine %s sent something unreadable", addr)
            return
        if not isinstance(message, dict):
            return
        fut = self._waiting.get(cookie)
        if fut is not None and not fut.done():
            fut.set_result(message)
        elif "event" in message and self.on_event is not None:
            try:
                self.on_event(message)
            except Exception:
                log.exception("media event handler failed")


def _text(value):
    """bencode gives bytes: keys and strings as str for the engine."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {_text(k): _text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_text(v) for v in value]
    return value
