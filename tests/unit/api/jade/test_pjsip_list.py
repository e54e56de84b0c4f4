"""jade's pjsip endpoint list holds each endpoint's JSON cached beside its view: the body is byte for
byte the one of the views themselves, and follows the endpoints' live state (device state, active
channels) even when nothing cleared the cache."""

from __future__ import annotations

import time
from types import SimpleNamespace

import orjson
import pytest

from switchboard.api.jade import envelope
from switchboard.api.jade import pjsip as api
from switchboard.asterisk import pjsip
from switchboard.engine.runtime import UP, Loaded, Pbx


def sec(name: str, **opts: str):
    return name, opts, {k: [v] for k, v in opts.items()}


@pytest.fixture
def pbx(monkeypatch):
    monkeypatch.setattr(envelope, "ns_timestamp", lambda ns=None: "2020-01-01T00:00:00.000000000Z")
    sections = []
    for n in range(20):
        sections += [
            sec(f"ep{n}", type="endpoint", context="demo", aors=f"ep{n}", allow="ulaw", callerid=f'"Ep {n}" <{n}>'),
            sec(f"ep{n}", type="aor", max_contacts="1"),
        ]
    pbx = Pbx()
    pbx.config["pjsip"] = Loaded(pjsip.load(sections), time.time_ns())
    return pbx


def endpoint_json(pbx, cfg, name: str, tm: str, state=None) -> orjson.Fragment:
    """An endpoint's JSON as the list holds it (its live state read one by one unless given)."""
    return orjson.Fragment(api._endpoint_bytes(pbx, cfg, name, tm, state or api._endpoint_state(pbx, cfg, name)))


def one_by_one(pbx, cfg):
    """(name, device state, live channels) of every endpoint by the per-endpoint rule (endpoint_state)."""
    return [(n, pbx.endpoint_state(cfg, n, pbx.channels_of(n)), pbx.channels_of(n)) for n in cfg.endpoints]


def bodies(pbx) -> tuple[bytes, bytes]:
    cfg, tm = pbx.pjsip(), envelope.ts(pbx.pjsip_ns())
    views = envelope.listing([api._endpoint(pbx, cfg, n, tm) for n in cfg.endpoints], stamped=True)
    texts = envelope.listing([endpoint_json(pbx, cfg, n, tm) for n in cfg.endpoints], stamped=True)
    return views.body, texts.body


def test_list_bytes_are_those_of_the_views(pbx):
    for _ in range(2):  # the second time from the cache
        views, texts = bodies(pbx)
        assert texts == views
    assert b'"device_state":"Unavailable"' in texts and b'"caller_id":"\\"Ep 3\\" <3>"' in texts


def test_list_follows_live_state_without_a_cache_clear(pbx):
    bodies(pbx)
    call = SimpleNamespace(resource="ep3", hung_up=False, on_hold=False, state=UP, name="PJSIP/ep3-00000001")
    pbx.channels["1"] = call  # behind the engine's back: no view_cache.clear()
    views, texts = bodies(pbx)
    assert texts == views
    assert b'"active_channels":"PJSIP/ep3-00000001","aggregate_mwi"' in texts
    assert texts.count(b'"device_state":"In use"') == 1
    call.hung_up = True
    assert bodies(pbx)[1] == bodies(pbx)[0] and b"In use" not in bodies(pbx)[1]


def contact(aor: str, n: int, *, status: str = "Unknown", expires_in: int = 60) -> SimpleNamespace:
    now = int(time.time())
    return SimpleNamespace(uri=f"sip:{aor}-{n}@10.0.0.1", expires_at=now + expires_in, registered_at=now, status=status)


def test_a_whole_list_reads_the_live_state_once_and_says_what_each_endpoint_does(pbx):
    """The list takes every endpoint's channels in one pass (Pbx.live_channels); each endpoint's
    device state is still Asterisk's: registered and not found unreachable → Not in use, every
    contact unreachable or expired → Unavailable, a live channel's state over its contacts'."""
    pbx.contacts["ep1"] = {"a": contact("ep1", 1, status="Reachable")}
    pbx.contacts["ep2"] = {"a": contact("ep2", 1, status="Unreachable")}
    pbx.contacts["ep4"] = {"a": contact("ep4", 1, expires_in=-1)}
    pbx.contacts["ep5"] = {"a": contact("ep5", 1, status="Unreachable"), "b": contact("ep5", 2)}
    pbx.contacts["ep6"] = {"a": contact("ep6", 1)}
    pbx.channels["1"] = SimpleNamespace(resource="ep6", hung_up=False, on_hold=True, state=UP, name="PJSIP/ep6-01")
    expected = {"ep1": "NOT_INUSE", "ep2": "UNAVAILABLE", "ep3": "UNAVAILABLE", "ep4": "UNAVAILABLE"}
    expected |= {"ep5": "NOT_INUSE", "ep6": "ONHOLD"}
    assert {n: pbx.device_state(f"PJSIP/{n}") for n in expected} == expected
    cfg, tm = pbx.pjsip(), envelope.ts(pbx.pjsip_ns())
    assert pbx.live_channels() == {"ep6": [pbx.channels["1"]]}
    busy = pbx.busy_endpoints(cfg)
    states = [(n, *(busy.get(n) or ("UNAVAILABLE", []))) for n in cfg.endpoints]  # as the list reads them
    assert [(n, s) for n, s, _ in states] == [(n, pbx.device_state(f"PJSIP/{n}")) for n in cfg.endpoints]
    assert [ch for n, _, ch in states] == [pbx.channels_of(n) for n in cfg.endpoints]
    one_pass = [endpoint_json(pbx, cfg, n, tm, api._live(s, ch)) for n, s, ch in states]
    each = [endpoint_json(pbx, cfg, n, tm) for n in cfg.endpoints]
    assert envelope.listing(one_pass, stamped=True).body == envelope.listing(each, stamped=True).body
    states = [orjson.loads(orjson.dumps(f))["device_state"] for f in one_pass]
    assert states[1:7] == ["Not in use", "Unavailable", "Unavailable", "Unavailable", "Not in use", "On Hold"]


def whole_list(pbx) -> bytes:
    cfg, tm = pbx.pjsip(), envelope.ts(pbx.pjsip_ns())
    return envelope.listing(api._endpoint_list(pbx, cfg, tm), stamped=True).body


def test_the_kept_list_follows_every_live_change_without_a_cache_clear(pbx):
    """The whole array is kept by the busy endpoints' live states: each change below (behind the
    engine's back: no view_cache.clear()) gives the body of the views themselves, and a contact
    that expires between two requests turns its endpoint idle again."""
    assert whole_list(pbx) == bodies(pbx)[0] == whole_list(pbx)
    pbx.contacts["ep1"] = {"a": contact("ep1", 1, status="Reachable")}
    assert whole_list(pbx) == bodies(pbx)[0] and b'"device_state":"Not in use"' in whole_list(pbx)
    call = SimpleNamespace(resource="ep3", hung_up=False, on_hold=False, state=UP, name="PJSIP/ep3-00000001")
    pbx.channels["1"] = call
    assert whole_list(pbx) == bodies(pbx)[0] and b'"device_state":"In use"' in whole_list(pbx)
    call.on_hold = True
    assert whole_list(pbx) == bodies(pbx)[0] and b'"device_state":"On Hold"' in whole_list(pbx)
    call.hung_up = True
    pbx.contacts["ep1"]["a"].expires_at = int(time.time()) - 1
    idle = whole_list(pbx)
    assert idle == bodies(pbx)[0] and b"In use" not in idle and b"Not in use" not in idle and b"On Hold" not in idle


def test_busy_endpoints_are_the_ones_not_idle(pbx):
    """busy_endpoints (from the channels and contacts) and endpoint_state (endpoint by endpoint)
    are one rule; a channel of something that is not an endpoint (a trunk) counts for none."""
    cfg = pbx.pjsip()
    pbx.contacts["ep2"] = {"a": contact("ep2", 1)}
    pbx.contacts["ep7"] = {"a": contact("ep7", 1, status="Unreachable")}
    pbx.channels["1"] = SimpleNamespace(resource="ep9", hung_up=False, on_hold=False, state=UP, name="PJSIP/ep9-01")
    pbx.channels["2"] = SimpleNamespace(resource="trunk", hung_up=False, on_hold=False, state=UP, name="PJSIP/trunk-02")
    busy = pbx.busy_endpoints(cfg)
    assert {n: s for n, (s, _) in busy.items()} == {"ep2": "NOT_INUSE", "ep9": "INUSE"}
    expected = {n: (s, ch) for n, s, ch in one_by_one(pbx, cfg) if (s, ch) != ("UNAVAILABLE", [])}
    assert busy == expected
    assert all(pbx.endpoint_state(cfg, n, pbx.channels_of(n)) == s for n, (s, _) in busy.items())


def test_an_aor_shared_by_two_endpoints_makes_both_busy():
    sections = [
        sec("front", type="endpoint", context="demo", aors="desk,shared"),
        sec("back", type="endpoint", context="demo", aors="shared"),
        sec("other", type="endpoint", context="demo", aors="desk"),
        sec("desk", type="aor", max_contacts="1"),
        sec("shared", type="aor", max_contacts="2"),
    ]
    pbx = Pbx()
    pbx.config["pjsip"] = Loaded(pjsip.load(sections), time.time_ns())
    cfg = pbx.pjsip()
    pbx.contacts["shared"] = {"a": contact("shared", 1)}
    assert {n: s for n, (s, _) in pbx.busy_endpoints(cfg).items()} == {"front": "NOT_INUSE", "back": "NOT_INUSE"}
    assert [pbx.endpoint_state(cfg, n, []) for n in ("front", "back", "other")] == ["NOT_INUSE"] * 2 + ["UNAVAILABLE"]
