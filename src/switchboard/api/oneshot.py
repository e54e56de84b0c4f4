"""uvicorn's httptools protocol, with each response's head and body handed to the socket in one
write.

uvicorn writes a response in two `transport.write` calls: the status line and headers when the
application sends `http.response.start`, the body when it sends `http.response.body`. On an idle
socket each is its own `send` system call, and on loopback each wakes the client: ~15 % of a small
authenticated request's CPU here was those writes (cProfile, bench/http_profile.py). This protocol
gives each request's cycle a transport whose first write (the head) is held until the next one (the
body, which Starlette's responses send right after it) and then both go in one `writelines`; a head
with no body following it in the same loop step (a HEAD request, a 100 Continue, a streaming
response's first await) is written at the loop's next step. Nothing else changes: the bytes, their
order, flow control and closing are uvicorn's (close() writes a held head first)."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _HeadHeld:
    """A request cycle's view of the connection's transport: the first write waits for the next."""

    __slots__ = ("_transport", "_held", "_first")

    def __init__(self, transport: asyncio.Transport):
        self._transport = transport
        self._held: bytes | None = None
        self._first = True

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.writelines((held, data))
        elif self._first:
            self._first = False
            self._held = data
            asyncio.get_running_loop().call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, ...: the transport's own
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol whose request cycles write through _HeadHeld."""

    def on_headers_complete(self) -> None:
        transport = self.transport
        super().on_headers_complete()
        cycle = self.cycle
        # an upgrade request (WebSocket) makes no cycle; the cycle's task has not run yet
        if cycle is not None and cycle.transport is transport:
            cycle.transport = _HeadHeld(transport)
