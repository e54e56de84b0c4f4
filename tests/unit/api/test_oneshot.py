"""api/oneshot.py: uvicorn with a response's head and body handed to the socket in one write;
what a client reads is unchanged (a GET, a HEAD, a streamed body, a 100 Continue, keep-alive)."""

from __future__ import annotations

import asyncio

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

from switchboard.api.oneshot import HttpProtocol, _HeadHeld


class Recorder:
    def __init__(self):
        self.calls: list[tuple] = []

    def write(self, data):
        self.calls.append(("write", bytes(data)))

    def writelines(self, parts):
        self.calls.append(("writelines", tuple(bytes(p) for p in parts)))

    def is_closing(self):
        return False

    def close(self):
        self.calls.append(("close",))


async def test_head_and_body_go_in_one_call_and_a_lone_head_at_the_next_step():
    t = Recorder()
    held = _HeadHeld(t)
    held.write(b"HTTP/1.1 200 OK\r\n\r\n")
    held.write(b"body")
    held.write(b"more")
    await asyncio.sleep(0)
    assert t.calls == [("writelines", (b"HTTP/1.1 200 OK\r\n\r\n", b"body")), ("write", b"more")]
    t = Recorder()
    held = _HeadHeld(t)
    held.write(b"HTTP/1.1 200 OK\r\n\r\n")  # HEAD: no body follows
    assert t.calls == []
    await asyncio.sleep(0)
    assert t.calls == [("write", b"HTTP/1.1 200 OK\r\n\r\n")]
    t = Recorder()
    held = _HeadHeld(t)
    held.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n")
    held.close()  # written before the close
    assert t.calls == [("write", b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n"), ("close",)]


async def hello(request: Request):
    return PlainTextResponse("hello")


async def stream(request: Request):
    async def parts():
        for n in range(3):
            await asyncio.sleep(0.01)
            yield f"part{n};".encode()

    return StreamingResponse(parts(), media_type="text/plain")


async def echo(request: Request):
    return PlainTextResponse(await request.body())


async def exchange(port: int, raw: bytes, *, until: bytes, first: bytes | None = None, times: int = 1) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if first is not None:  # send the head, wait for the interim answer, then the body
            writer.write(raw[: raw.index(b"\r\n\r\n") + 4])
            got = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert got == first
            writer.write(raw[raw.index(b"\r\n\r\n") + 4 :])
        else:
            writer.write(raw)
        data = b""
        while data.count(until) < times:
            chunk = await asyncio.wait_for(reader.read(65536), 5)
            assert chunk, data
            data += chunk
        return data
    finally:
        writer.close()


async def test_a_real_server_answers_as_uvicorn_does():
    app = Starlette(
        routes=[
            Route("/", hello, methods=["GET", "HEAD"]),
            Route("/stream", stream),
            Route("/echo", echo, methods=["POST"]),
        ]
    )
    config = uvicorn.Config(app, host="127.0.0.1", port=0, http=HttpProtocol, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        two = await exchange(
            port, b"GET / HTTP/1.1\r\nhost: x\r\n\r\nGET / HTTP/1.1\r\nhost: x\r\n\r\n", until=b"hello", times=2
        )
        assert two.count(b"HTTP/1.1 200 OK\r\n") == 2 and b"content-length: 5\r\n" in two
        head = await exchange(port, b"HEAD / HTTP/1.1\r\nhost: x\r\n\r\n", until=b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
        streamed = await exchange(port, b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n", until=b"0\r\n\r\n")
        assert b"transfer-encoding: chunked" in streamed and b"part0;" in streamed and b"part2;" in streamed
        post = b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\nexpect: 100-continue\r\n\r\nping"
        echoed = await exchange(port, post, until=b"ping", first=b"HTTP/1.1 100 Continue\r\n\r\n")
        assert echoed.startswith(b"HTTP/1.1 200 OK\r\n") and echoed.endswith(b"\r\n\r\nping")
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
