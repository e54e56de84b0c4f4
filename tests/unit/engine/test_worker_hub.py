"""The SIP worker hub's plumbing, in process: framing and coalescing of its writes, and which worker a
registration event is forwarded to (the processes themselves: tests/e2e/test_sip_workers.py)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import orjson

from switchboard.engine.workers import WorkerHub, _Link
from switchboard.events import Event
from switchboard.sip.steer import aor_owner


class _Transport:
    def __init__(self):
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name):
        return None


def _frames(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        out.append(data[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return out


async def test_what_is_sent_in_one_turn_goes_out_in_one_write_in_order():
    link = _Link(lambda msg, link: None)
    t = _Transport()
    link.connection_made(t)
    for msg in (b"Pone", b"E{}", b"B7"):
        assert link.send(msg)
    assert t.writes == []  # not yet: at the end of this turn of the loop
    await asyncio.sleep(0)
    assert len(t.writes) == 1 and _frames(t.writes[0]) == [b"Pone", b"E{}", b"B7"]
    link.send(b"Ptwo")
    await asyncio.sleep(0)
    assert len(t.writes) == 2 and _frames(t.writes[1]) == [b"Ptwo"]


async def test_a_link_closed_with_messages_queued_writes_them_first():
    link = _Link(lambda msg, link: None)
    t = _Transport()
    link.connection_made(t)
    link.send(b"A1\x001")
    link.close()
    assert t.closed and [f for w in t.writes for f in _frames(w)] == [b"A1\x001"]
    assert not link.send(b"late")  # a closing transport takes nothing more
    await asyncio.sleep(0)


async def test_a_framed_stream_cut_anywhere_gives_back_the_same_messages():
    got: list[bytes] = []
    link = _Link(lambda msg, link: got.append(msg))
    sent = [b"P" + bytes([i]) * i for i in range(1, 40)]
    stream = b"".join(len(m).to_bytes(4, "big") + m for m in sent)
    for i in range(0, len(stream), 7):
        link.data_received(stream[i : i + 7])
    assert got == sent


class _Recorder:
    def __init__(self):
        self.sent: list[bytes] = []

    def send(self, msg: bytes) -> bool:
        self.sent.append(msg)
        return True


async def test_a_registration_event_reaches_only_the_worker_that_owns_its_aor():
    hub = WorkerHub(engine=None, registrar=None, workers=3, run_dir="/nonexistent")
    hub.links = {1: _Recorder(), 2: _Recorder()}
    hub.nodes = {"worker-node"}
    aors = [f"user{i}" for i in range(30)]
    for aor in aors:
        hub._forward(Event(1, "registration.removed", 0, {"aor": aor, "node": "main-node", "reason": "expired"}))
    hub._forward(Event(2, "registration.added", 0, {"aor": "user1", "node": "worker-node"}))  # a worker's own
    hub._forward(Event(3, "call.started", 0, {"aor": "user1"}))  # not a registration
    for index, link in hub.links.items():
        got = [orjson.loads(m[1:])["data"]["aor"] for m in link.sent]
        assert all(m[:1] == b"E" for m in link.sent)
        assert got == [a for a in aors if aor_owner(a, 3) == index]
    assert {aor_owner(a, 3) for a in aors} == {0, 1, 2}  # the main process's own aors were not sent


def _event(kind: str, aor: str, contact: str, expires: int, **more) -> bytes:
    data = {"aor": aor, "contact": contact, "endpoint": aor, "user_agent": "ua", "expires": expires}
    data |= {"via_address": "192.0.2.9:5062", "transport": "UDP", "path": "", "node": "worker-node", **more}
    return b"E" + orjson.dumps({"type": kind, "data": data})


async def test_a_workers_binding_changes_are_applied_from_its_events_without_a_database_read():
    """The main process's copy of a worker's bindings follows its events: a binding added (a phone that
    moved: the old one removed), refreshed and removed, with no re-read scheduled; an aor being re-read
    (whose read may be older than the event) is read again instead."""
    pbx = SimpleNamespace(contacts={}, view_cache=SimpleNamespace(clear=lambda: None))
    registrar = SimpleNamespace(pbx=pbx, generation={})
    hub = WorkerHub(engine=None, registrar=registrar, workers=2, run_dir="/nonexistent")
    link = _Recorder()
    now = int(time.time())
    hub._message(_event("registration.added", "alice", "sip:alice@192.0.2.9:5062", 600), link)
    b = pbx.contacts["alice"]["sip:alice@192.0.2.9:5062"]
    assert (b.aor, b.endpoint, b.user_agent, b.via_address, b.transport, b.status) == (
        "alice", "alice", "ua", "192.0.2.9:5062", "UDP", "Unknown"
    )  # fmt: skip
    assert now + 600 <= b.expires_at <= int(time.time()) + 600 and registrar.generation == {"alice": 1}
    hub._message(_event("registration.refreshed", "alice", "sip:alice@192.0.2.9:5062", 60, user_agent="ua2"), link)
    assert pbx.contacts["alice"]["sip:alice@192.0.2.9:5062"] is b and b.user_agent == "ua2"
    assert b.expires_at <= int(time.time()) + 60
    # the phone moved (max_contacts 1, remove_existing): the new binding added, the old one removed
    hub._message(_event("registration.added", "alice", "sip:alice@192.0.2.9:6000", 600), link)
    hub._message(_event("registration.removed", "alice", "sip:alice@192.0.2.9:5062", 0, reason="unregistered"), link)
    assert list(pbx.contacts["alice"]) == ["sip:alice@192.0.2.9:6000"]
    hub._message(_event("registration.removed", "alice", "sip:alice@192.0.2.9:6000", 0, reason="unregistered"), link)
    assert "alice" not in pbx.contacts and hub._refresh == set() and hub._refreshing is None
    # an aor being re-read: read again after this read, not applied over it
    hub._reading = {"bob"}
    hub._refreshing = asyncio.get_running_loop().create_future()  # (the re-read in flight)
    hub._message(_event("registration.added", "bob", "sip:bob@192.0.2.9:5062", 600), link)
    assert "bob" not in pbx.contacts and hub._refresh == {"bob"}
