"""jade's pjsip endpoint list holds each endpoint's JSON cached beside its view: the body is byte for
byte the one of the views themselves, and follows the endpoints' live state (device state, active
channels) even when nothing cleared the cache."""

from __future__ import annotations

import time
from types import SimpleNamespace

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


def bodies(pbx) -> tuple[bytes, bytes]:
    cfg, tm = pbx.pjsip(), envelope.ts(pbx.pjsip_ns())
    views = envelope.listing([api._endpoint(pbx, cfg, n, tm) for n in cfg.endpoints], stamped=True)
    texts = envelope.listing([api._endpoint_json(pbx, cfg, n, tm) for n in cfg.endpoints], stamped=True)
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
