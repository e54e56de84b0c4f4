"""engine/workers.py's hub link: the messages sent in one step of the event loop reach the other
end in one write, whole and in order; close() writes what is queued first."""

from __future__ import annotations

import asyncio
import socket

from switchboard.engine.workers import _Link


async def pair() -> tuple[_Link, _Link, list[bytes]]:
    loop = asyncio.get_running_loop()
    a_sock, b_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    got: list[bytes] = []
    _, a = await loop.create_connection(lambda: _Link(lambda msg, link: None), sock=a_sock)
    _, b = await loop.create_connection(lambda: _Link(lambda msg, link: got.append(msg)), sock=b_sock)
    return a, b, got


async def test_one_loop_steps_messages_go_in_one_write_in_order():
    a, b, got = await pair()
    writes = []
    real = a.transport.write
    a.transport.write = lambda data: (writes.append(len(data)), real(data))
    messages = [b"F1\0first", b"E{}", b"x" * 70_000, b"B7"]
    for m in messages:
        assert a.send(m)
    assert writes == []  # queued until the end of this step
    for _ in range(100):
        await asyncio.sleep(0.01)
        if len(got) == len(messages):
            break
    assert got == messages
    assert writes == [sum(4 + len(m) for m in messages)]
    a.send(b"later")
    a.close()  # written before the close
    for _ in range(100):
        await asyncio.sleep(0.01)
        if got[-1] == b"later":
            break
    assert got[-1] == b"later" and len(writes) == 2
    assert not a.send(b"after the close")
    b.close()
