"""The media control client against two real UDP media-protocol responders (bencoded, ng framing):
replies matched by cookie, a lost datagram retried, errors raised, calls pinned to the least loaded
engine and unpinned once their last leg is deleted, events handed over."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.engine.mediactl import MediaControl, MediaError
from switchboard.media.protocol import frame, unframe


class Responder(asyncio.DatagramProtocol):
    def __init__(self, drop_first: bool = False):
        self.seen: list[dict] = []
        self.drop_first = drop_first

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        cookie, body = unframe(data)
        body = {str(k): v.decode() if isinstance(v, bytes) else v for k, v in body.items()}
        if self.drop_first:
            self.drop_first = False
            return
        self.seen.append(body)
        if body["command"] == "boom":
            reply = {"result": "error", "error-reason": "no such thing"}
        else:
            reply = {"result": "ok", "local-address": "127.0.0.1", "local-port": 4000}
        self.transport.sendto(frame(cookie, reply), addr)


async def responder(**kw):
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(lambda: Responder(**kw), local_addr=("127.0.0.1", 0))
    return transport, proto, transport.get_extra_info("sockname")[:2]


async def test_calls_are_pinned_to_the_least_loaded_engine_until_their_last_leg_goes():
    t1, p1, a1 = await responder()
    t2, p2, a2 = await responder()
    ctl = MediaControl([a1, a2], timeout=0.5)
    try:
        for call in ("c1", "c2"):
            for leg in ("x", "y"):
                reply = await ctl.command({"command": "leg", "call-id": call, "from-tag": f"{call}-{leg}"})
                assert reply["local-port"] == 4000
        assert {b["call-id"] for b in p1.seen} == {"c1"} and {b["call-id"] for b in p2.seen} == {"c2"}
        await ctl.command({"command": "delete", "call-id": "c1", "from-tag": "c1-x"})
        await ctl.command({"command": "delete", "call-id": "c1", "from-tag": "c1-y"})
        await ctl.command({"command": "leg", "call-id": "c3", "from-tag": "c3-x"})  # engine 1 is free again
        assert p1.seen[-1]["call-id"] == "c3"
        with pytest.raises(MediaError, match="no such thing"):
            await ctl.command({"command": "boom", "call-id": "c3"})
    finally:
        ctl.close()
        t1.close()
        t2.close()


async def test_a_lost_datagram_is_retried_and_silence_is_an_error():
    t1, p1, a1 = await responder(drop_first=True)
    ctl = MediaControl([a1], timeout=0.2, retries=1)
    try:
        assert (await ctl.command({"command": "ping"}))["result"] == "ok"
        t1.close()
        with pytest.raises(MediaError, match="no answer"):
            await ctl.command({"command": "ping"})
    finally:
        ctl.close()


async def test_events_reach_the_handler():
    t1, _, a1 = await responder()
    ctl = MediaControl([a1])
    got: list[dict] = []
    ctl.on_event = got.append
    await ctl.start()
    try:
        await ctl.command({"command": "ping"})
        t1.sendto(
            frame(b"0", {"event": "dtmf", "from-tag": "leg1", "digit": "5"}), ctl._transport.get_extra_info("sockname")
        )
        for _ in range(50):
            if got:
                break
            await asyncio.sleep(0.01)
        assert got == [{"event": "dtmf", "from-tag": "leg1", "digit": "5"}]
    finally:
        ctl.close()
        t1.close()
