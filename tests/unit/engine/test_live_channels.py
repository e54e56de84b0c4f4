"""Live channels on the Pbx: the device state of a PJSIP endpoint aggregated from its channels (as
chan_pjsip + ast_devstate_aggregate), and end_channel (processed_calls, the CDR hook)."""

from __future__ import annotations

import time

import pytest

from switchboard.domain import pbxconf
from switchboard.engine.channel import BUSY, DOWN, RING, RINGING, UP, Channel
from switchboard.engine.registrar import Binding
from switchboard.engine.runtime import Loaded, Pbx
from tests.sip_peers import pjsip_account


@pytest.fixture
def pbx() -> Pbx:
    p = Pbx()
    text = pjsip_account("alice", None) + pjsip_account("bob", None)
    p.config["pjsip"] = Loaded(pbxconf.validate_text("pjsip", text), time.time_ns())
    return p


def register(pbx: Pbx, aor: str) -> None:
    now = int(time.time())
    uri = f"sip:{aor}@192.0.2.1:5060"
    pbx.contacts[aor] = {uri: Binding(aor, uri, aor, "cid", 1, "ua", "192.0.2.1:5060", "UDP", "", now + 60, now)}


def live(pbx: Pbx, endpoint: str, state: int, *, on_hold: bool = False) -> Channel:
    ch = Channel(endpoint)
    ch.set_state(state)
    ch.on_hold = on_hold
    pbx.add_channel(ch)
    return ch


def test_without_channels_registration_decides(pbx):
    assert pbx.device_state("PJSIP/alice") == "UNAVAILABLE"
    register(pbx, "alice")
    assert pbx.device_state("PJSIP/alice") == "NOT_INUSE"
    assert pbx.device_state("PJSIP/nobody") == "INVALID"


@pytest.mark.parametrize(
    ("states", "want"),
    [
        ([UP], "INUSE"),
        ([RINGING], "RINGING"),
        ([RING], "INUSE"),  # the caller's own channel before answer (Asterisk: in use)
        ([UP, RINGING], "RINGINUSE"),
        ([(UP, True)], "ONHOLD"),
        ([(UP, True), UP], "INUSE"),
        ([(UP, True), RINGING], "RINGINUSE"),
        ([BUSY], "BUSY"),
        ([DOWN], "NOT_INUSE"),
    ],
)
def test_channels_aggregate(pbx, states, want):
    register(pbx, "alice")
    for s in states:
        state, hold = s if isinstance(s, tuple) else (s, False)
        live(pbx, "alice", state, on_hold=hold)
    live(pbx, "bob", UP)  # another endpoint's channel does not count
    assert pbx.device_state("PJSIP/alice") == want


def test_a_channel_makes_an_unregistered_endpoint_in_use(pbx):
    live(pbx, "alice", UP)
    assert pbx.device_state("PJSIP/alice") == "INUSE"


def test_end_channel_counts_once_and_calls_the_hooks(pbx):
    ended = []
    pbx.on_channel_ended.append(ended.append)
    pbx.on_channel_ended.append(lambda ch: 1 / 0)  # a failing listener is logged, not raised
    ch = live(pbx, "alice", UP)
    assert pbx.device_state("PJSIP/alice") == "INUSE"
    ch.mark_gone(16)
    assert pbx.device_state("PJSIP/alice") == "UNAVAILABLE"  # a gone channel no longer counts
    pbx.end_channel(ch)
    pbx.end_channel(ch)
    assert pbx.processed_calls == 1 and ended == [ch] and pbx.channels == {}
