"""The event bus: numbering, history ring, gap, viewers, subscriptions; the PostgreSQL packing."""

from __future__ import annotations

import asyncio
import time

import orjson

from switchboard.events.bus import EventBus, Viewer
from switchboard.events.pgbridge import MAX_PAYLOAD, pack, unpack

ADMIN = Viewer(1, True)


def test_sequence_is_monotonic_and_follows_the_clock():
    bus = EventBus()
    for i in range(5):
        bus.publish("t", {"i": i})
    events, cursor = bus.read(bus.first_seq - 1, ADMIN)
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert seqs[1] - seqs[0] == 1
    assert cursor == seqs[-1]
    # numbers start at the clock (µs): a restarted process keeps counting upwards
    assert abs(seqs[0] - time.time() * 1e6) < 60e6
    assert [e.data["i"] for e in events] == list(range(5))
    ev = orjson.loads(events[0].json())
    assert set(ev) == {"seq", "type", "time", "data"} and ev["time"].endswith("Z")


def test_publish_never_raises():
    bus = EventBus()
    bus._outbound = lambda ev: 1 / 0
    bus.publish("t", {})  # logged, not raised


def test_history_is_bounded_and_a_resume_from_before_it_gets_a_gap():
    bus = EventBus(max_events=10)
    for i in range(25):
        bus.publish("t", {"i": i})
    assert len(bus) == 10
    first = bus.first_seq
    events, _ = bus.read(first - 20, ADMIN)
    assert events[0].type == "gap"
    assert events[0].data == {"from": first - 19, "to": first - 1} and events[0].seq == first - 1
    assert [e.data["i"] for e in events[1:]] == list(range(15, 25))
    # resuming from the gap's seq: no second gap
    again, _ = bus.read(events[0].seq, ADMIN)
    assert again[0].type == "t" and len(again) == 10


def test_history_by_age():
    bus = EventBus(max_age=0.05)
    bus.publish("old", {})
    time.sleep(0.06)
    bus.publish("new", {})
    assert len(bus) == 1 and bus.first_seq is not None
    events, _ = bus.read(0, ADMIN)
    assert [e.type for e in events] == ["gap", "new"]


def test_viewers_see_their_own_events_only():
    bus = EventBus()
    start = bus.last_seq
    bus.publish("registration.added", {"aor": "100"})  # PBX: admins only
    bus.publish("probe.result", {"endpoint_id": 1}, owner=7)
    bus.publish("probe.result", {"endpoint_id": 2}, owner=8)
    bus.publish("alert", {"id": 3}, owner=7)
    admin, _ = bus.read(start, ADMIN)
    assert [e.type for e in admin] == ["registration.added", "probe.result", "probe.result", "alert"]
    seven, cursor = bus.read(start, Viewer(7, False))
    assert [(e.type, e.owner) for e in seven] == [("probe.result", 7), ("alert", 7)]
    assert cursor == bus.last_seq  # the cursor passes over what it may not see
    nobody, cursor = bus.read(start, Viewer(9, False))
    assert nobody == [] and cursor == bus.last_seq


async def test_subscription_waits_and_resumes():
    bus = EventBus()
    sub = bus.subscribe(ADMIN)  # from now on
    bus.publish("before-read", {})
    got = await sub.next(timeout=1)
    assert [e.type for e in got] == ["before-read"]

    async def later():
        await asyncio.sleep(0.05)
        bus.publish("later", {})

    task = asyncio.ensure_future(later())
    got = await sub.next(timeout=2)
    await task
    assert [e.type for e in got] == ["later"]
    assert await sub.next(timeout=0.05) == []  # keep-alive time: nothing
    sub.resume(got[0].seq - 1)
    assert [e.type for e in await sub.next(timeout=1)] == ["later"]


async def test_ordering_with_many_subscribers():
    bus = EventBus()
    subs = [bus.subscribe(ADMIN) for _ in range(20)]
    seen: list[list[int]] = [[] for _ in subs]

    async def reader(i):
        while len(seen[i]) < 500:
            for ev in await subs[i].next(timeout=2):
                seen[i].append(ev.data["n"])

    readers = [asyncio.ensure_future(reader(i)) for i in range(len(subs))]
    for n in range(500):
        bus.publish("t", {"n": n})
        if n % 50 == 0:
            await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(*readers), 5)
    assert all(s == list(range(500)) for s in seen)


def test_a_slow_reader_gets_a_gap_not_a_stall():
    bus = EventBus(max_events=100)
    sub = bus.subscribe(ADMIN)
    for n in range(1000):
        bus.publish("t", {"n": n})
    events, _ = bus.read(sub.cursor, ADMIN)
    assert events[0].type == "gap" and events[1].data["n"] == 900


def test_mark_lost_and_deliver_in_order():
    bus = EventBus()
    bus.reset(0)  # the PostgreSQL bridge's numbering
    bus.mark_lost(100)
    from switchboard.events.bus import Event

    bus.deliver(Event(99, "late", "t", {}))  # already lost: ignored
    bus.deliver(Event(101, "a", "t", {}))
    bus.deliver(Event(101, "dup", "t", {}))  # repeated: ignored
    bus.deliver(Event(105, "b", "t", {}))
    events, _ = bus.read(50, ADMIN)
    assert [e.type for e in events] == ["gap", "a", "b"]
    assert events[0].data == {"from": 51, "to": 100}


def test_pack_unpack_keeps_order_and_fits_notify():
    bus = EventBus()
    for n in range(300):
        bus.publish("channel.state", {"n": n, "channel": f"PJSIP/100-{n:08d}", "pad": "x" * 50}, owner=n % 3 or None)
    events, _ = bus.read(0, ADMIN)
    events = [e for e in events if e.type != "gap"]
    payloads = pack(events)
    assert len(payloads) > 1 and all(len(p.encode()) <= MAX_PAYLOAD for p in payloads)
    back = [e for p in payloads for e in unpack(p)]
    assert [(e.seq, e.data, e.owner) for e in back] == [(e.seq, e.data, e.owner) for e in events]
    huge = events[0].__class__(1, "channel.created", "t", {"channel": "c", "variables": {"x": "y" * 20000}})
    [p] = pack([huge])
    [e] = unpack(p)
    assert e.data["truncated"] is True and e.data["channel"] == "c"


def test_event_stamps_are_the_clocks_microseconds_in_rfc3339(monkeypatch):
    """now_rfc3339 keeps each second's text: what it writes is the clock's time, truncated to the
    microsecond, whatever the order of the seconds."""
    import importlib
    import random
    from datetime import UTC, datetime

    bus_mod = importlib.import_module("switchboard.events.bus")  # the module (the package's `bus` is the bus)

    rng = random.Random(3)
    values = [rng.randrange(0, 4_000_000_000 * 10**9) for _ in range(500)] + [0, 999_999_999, 10**9]
    for ns in values * 2:
        monkeypatch.setattr(bus_mod.time, "time_ns", lambda ns=ns: ns)
        sec, rest = divmod(ns, 10**9)
        expected = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{rest // 1000:06d}Z"
        assert bus_mod.now_rfc3339() == expected


def test_taps_see_every_kept_event_in_order_and_a_failing_tap_stops_nothing():
    bus = EventBus()
    seen: list[tuple[int, str]] = []
    bus.taps.append(lambda ev: 1 / 0)  # logged, not raised
    bus.taps.append(lambda ev: seen.append((ev.seq, ev.type)))
    for name in ("a", "b", "c"):
        bus.publish(name, {})
    events, _ = bus.read(bus.first_seq - 1, ADMIN)
    assert seen == [(e.seq, e.type) for e in events] and [t for _, t in seen] == ["a", "b", "c"]


def test_an_events_time_is_its_publication_time_rendered_when_read(monkeypatch):
    """publish stamps the nanoseconds and renders RFC 3339 only when the time is read."""
    import importlib
    from datetime import UTC, datetime

    bus_mod = importlib.import_module("switchboard.events.bus")
    stamp = 1_765_000_000_123_456_789
    monkeypatch.setattr(bus_mod.time, "time_ns", lambda: stamp)
    bus = EventBus()
    bus.publish("t", {"x": 1})
    monkeypatch.setattr(bus_mod.time, "time_ns", lambda: stamp + 5 * 10**9)  # later reads do not restamp
    (ev,), _ = bus.read(bus.first_seq - 1, ADMIN)
    expected = datetime.fromtimestamp(stamp // 10**9, UTC).strftime("%Y-%m-%dT%H:%M:%S") + ".123456Z"
    assert ev.time == expected and orjson.loads(ev.json())["time"] == expected
    assert ev.public() == {"seq": ev.seq, "type": "t", "time": expected, "data": {"x": 1}}
