"""Call parking through a real `switchboard serve` with real SIP peers (our test Phone): res_parking.conf
and extensions.conf loaded through jade; calls parked by Park() in the dialplan and by a blind transfer
(REFER) to a park extension, hold music heard (RTP measured), picked up with ParkedCall (a tone each way),
timed out back to the parker (its phone rings) or into a comeback context; every step in jade's live
routes while it happens; jade's DELETE ends a parked call with a BYE. One server per backend."""

from __future__ import annotations

import threading
import time

import pytest

from tests.call_peers import Phone, dominant_frequency, rms
from tests.sip_peers import EXTENSIONS_PATH, Jade, running_pbx, skip_without, wait_for

PJSIP = """
[alice]
type=endpoint
context=internal
auth=alice
aors=alice
callerid="Alice" <1001>
allow=ulaw

[alice]
type=auth
username=alice
password=alice-pass

[alice]
type=aor
max_contacts=2

[bob]
type=endpoint
context=internal
auth=bob
aors=bob
allow=ulaw

[bob]
type=auth
username=bob
password=bob-pass

[bob]
type=aor
max_contacts=2
"""

RES_PARKING = """
[general]

[default]
parkext => 700
parkpos => 701-720
context => parkedcalls
parkingtime => 45
parkinghints => yes

[short]
parkext => 750
parkpos => 751-755
context => parkedcalls
parkext_exclusive => yes
parkingtime => 3
comebackdialtime => 8

[tocontext]
parkpos => 761-765
parkingtime => 2
comebacktoorigin => no
comebackcontext => parked-timeout
"""

EXTENSIONS = """
[general]
autofallthrough=yes

[internal]
include => parkedcalls
exten => 200,1,Dial(PJSIP/bob,20)
 same => n,Hangup()
exten => 7000,1,Answer()
 same => n,Park(default)
exten => 7001,1,Park(tocontext,s)
exten => 7200,1,Answer()
 same => n,Set(HINT=${EXTENSION_STATE(701@parkedcalls)})
 same => n,Set(DEV=${DEVICE_STATE(park:701@parkedcalls)})
 same => n,Wait(5)
 same => n,Hangup()

[parked-timeout]
exten => PJSIP_alice,1,Answer()
 same => n,Wait(20)
 same => n,Hangup()
"""

PARKED = "/admin/park/parkedcalls"


class Pbx:
    def __init__(self, srv, jade: Jade):
        self.srv, self.jade = srv, jade

    @property
    def port(self) -> int:
        return self.srv.sip_port

    def parked(self) -> list[dict]:
        return self.jade.get(PARKED)["list"]

    def channels(self) -> list[dict]:
        return self.jade.get("/admin/core/channels")["list"]

    def wait_parked(self, predicate=lambda p: True, timeout: float = 8.0) -> dict:
        found = wait_for(lambda: [p for p in self.parked() if predicate(p)], timeout)
        assert found, self.parked()
        return found[0]

    def channel(self, predicate, timeout: float = 8.0) -> dict:
        found = wait_for(lambda: [c for c in self.channels() if predicate(c)], timeout)
        assert found, self.channels()
        return found[0]


@pytest.fixture(scope="module")
def pbx(backend, tmp_path_factory):
    skip_without("sipp")
    tmp = tmp_path_factory.mktemp(f"parking-{backend}")
    files = {"/admin/park/configurations/res_parking.conf": RES_PARKING, EXTENSIONS_PATH: EXTENSIONS}
    with running_pbx(backend, tmp, PJSIP, files, SWITCHBOARD_RTP_PORTS="30000-34999") as (srv, jade):
        yield Pbx(srv, jade)


@pytest.fixture
def bob(pbx):
    with Phone(user="bob") as phone:
        resp = phone.register(pbx.port, "bob", "bob-pass")
        assert resp.status == 200, resp
        yield phone
        phone.register(pbx.port, "bob", "bob-pass", expires=0)


def _alice_calls_bob(pbx, alice, bob):
    invite = alice.invite(pbx.port, "200", user="alice", password="alice-pass")
    incoming = bob.answer_incoming(timeout=10)
    assert incoming is not None and invite.wait_final(10) == 200
    return invite, incoming


def _music(phone, since: float):
    got = phone.received(since=since)
    assert len(got.audio) >= 40, len(got.audio)
    assert rms(got.pcm) > 100, "hold music, not silence"


def test_the_lots_loaded_are_jades_parkinglots(pbx):
    lots = {lot["name"]: lot for lot in pbx.jade.get("/admin/park/parkinglots")["list"]}
    assert set(lots) == {"default", "short", "tocontext"}
    assert (lots["default"]["start_space"], lots["default"]["stop_spcae"], lots["default"]["timeout"]) == (
        "701",
        "720",
        45,
    )
    assert (lots["tocontext"]["start_space"], lots["tocontext"]["stop_space"], lots["tocontext"]["timeout"]) == (
        "761",
        "765",
        2,
    )
    assert pbx.parked() == []


def test_park_from_the_dialplan_music_hint_reload_and_delete_with_a_bye(pbx, bob):
    with Phone(user="alice") as alice:
        call = alice.call(pbx.port, "7000", user="alice", password="alice-pass")
        assert call.status == 200
        t0 = time.monotonic()
        p = pbx.wait_parked(lambda p: p["parkee_channel"].startswith("PJSIP/alice-"))
        assert (p["parking_lot"], p["parking_space"], p["parker_dial_string"]) == ("default", "701", "PJSIP/alice")
        assert (p["parkee_channel_state"], p["parkee_channel_state_desc"]) == ("6", "Up")
        assert (p["parkee_caller_id_num"], p["parkee_caller_id_name"]) == ("1001", "Alice")
        assert (p["parkee_context"], p["parkee_exten"], p["parkee_priority"]) == ("internal", "7000", "2")
        assert 40 <= p["parking_timeout"] <= 45 and 0 <= p["parking_duration"] <= 5
        assert p["parkee_linked_id"] and p["tm_update"].endswith("Z")
        detail = pbx.jade.get(f"{PARKED}/{p['parkee_unique_id']}")
        assert detail["parkee_channel"] == p["parkee_channel"] and detail["parking_space"] == "701"
        # the space is said (digits/7, 0, 1), then the music: measure what comes after the prompt
        time.sleep(3.5)
        _music(alice, time.monotonic() - 1.2)
        assert alice.received(since=t0).audio, "the announcement"
        # the hint park:701@parkedcalls is in use while the call is parked there
        probe = bob.call(pbx.port, "7200", user="bob", password="bob-pass")
        assert probe.status == 200
        ch = pbx.channel(lambda c: c["exten"] == "7200" and "DEV" in c["variables"])
        assert (ch["variables"]["HINT"], ch["variables"]["DEV"]) == ("INUSE", "INUSE")
        probe.bye()
        # a reload through jade applies to the next park; the parked call stays, with its own settings
        r = pbx.jade.call(
            "PUT",
            "/admin/park/cfg_parkinglots/default",
            json={"parkext": "700", "parkpos": "701-720", "context": "parkedcalls", "parkingtime": "30"},
        )
        assert r.status_code == 200, r.text
        assert wait_for(lambda: [x for x in pbx.jade.get("/admin/park/parkinglots")["list"] if x["timeout"] == 30], 5)
        still = pbx.parked()
        assert [x["parkee_unique_id"] for x in still] == [p["parkee_unique_id"]]
        assert still[0]["parking_timeout"] > 30
        # DELETE hangs the parked call up for real
        r = pbx.jade.call("DELETE", f"{PARKED}/{p['parkee_unique_id']}")
        assert r.status_code == 200, r.text
        assert call.wait_bye(5), "jade's DELETE sends a BYE"
        assert wait_for(lambda: pbx.parked() == [], 5)
        pbx.jade.call("PUT", "/admin/park/cfg_parkinglots/default", json={"parkext": "700", "parkpos": "701-720",
                                                                          "context": "parkedcalls",
                                                                          "parkingtime": "45"})  # fmt: skip


def test_blind_transfer_to_the_park_extension_then_parkedcall_picks_it_up(pbx, bob):
    with Phone(user="alice") as alice:
        invite, incoming = _alice_calls_bob(pbx, alice, bob)
        result = incoming.refer(f"sip:700@127.0.0.1:{pbx.port}")
        assert result.response.status == 202
        assert wait_for(lambda: any("200" in f for f in result.sipfrags), 5), result.sipfrags
        incoming.bye()
        t0 = time.monotonic()
        p = pbx.wait_parked(lambda p: p["parkee_channel"].startswith("PJSIP/alice-"))
        assert (p["parking_lot"], p["parking_space"], p["parker_dial_string"]) == ("default", "701", "PJSIP/bob")
        ch = pbx.channel(lambda c: c["unique_id"] == p["parkee_unique_id"])
        assert ch["application"] == "Park" and ch["exten"] == "700"
        assert ch["variables"]["BLINDTRANSFER"].startswith("PJSIP/bob-")
        time.sleep(1.5)
        _music(alice, t0 + 0.3)  # a blind transfer: no announcement to the parkee, music at once
        # bob calls the space: ParkedCall(default,701) bridges him with alice
        pickup = bob.call(pbx.port, "701", user="bob", password="bob-pass")
        assert pickup.status == 200
        assert wait_for(lambda: pbx.parked() == [], 5), pbx.parked()
        retriever = pbx.channel(lambda c: c["exten"] == "701" and c["bridge_id"])
        assert retriever["application"] == "ParkedCall" and retriever["channel"].startswith("PJSIP/bob-")
        time.sleep(0.3)
        t1 = time.monotonic()
        send_b = threading.Thread(target=pickup.send_tone, args=(700, 1.5))
        send_b.start()
        invite.send_tone(1000, 1.5)
        send_b.join()
        time.sleep(0.3)
        at_b, at_a = bob.received(since=t1 + 0.2), alice.received(since=t1 + 0.2)
        assert len(at_b.audio) >= 50 and len(at_a.audio) >= 50, (len(at_b.audio), len(at_a.audio))
        assert abs(dominant_frequency(at_b.pcm) - 1000) < 15
        assert abs(dominant_frequency(at_a.pcm) - 700) < 15
        pickup.bye()
        assert invite.wait_bye(5), "the parkee is hung up when the pickup ends"


def test_timeout_comes_back_to_the_parker(pbx, bob):
    with Phone(user="alice") as alice:
        invite, incoming = _alice_calls_bob(pbx, alice, bob)
        result = incoming.refer(f"sip:750@127.0.0.1:{pbx.port}")  # lot short: parkext_exclusive, 3 s
        assert result.response.status == 202
        assert wait_for(lambda: any("200" in f for f in result.sipfrags), 5), result.sipfrags
        incoming.bye()
        p = pbx.wait_parked(lambda p: p["parkee_channel"].startswith("PJSIP/alice-"))
        assert (p["parking_lot"], p["parking_space"], p["parker_dial_string"]) == ("short", "751", "PJSIP/bob")
        assert p["parking_timeout"] <= 3
        # the time limit passes: park-dial,PJSIP_bob,1 = Dial(PJSIP/bob,8) rings bob's phone
        back = bob.answer_incoming(timeout=10)
        assert back is not None, "the parker's phone rings"
        assert pbx.parked() == []
        ch = pbx.channel(lambda c: c["unique_id"] == p["parkee_unique_id"] and c["context"] == "park-dial")
        assert (ch["exten"], ch["application"], ch["application_data"]) == ("PJSIP_bob", "Dial", "PJSIP/bob,8")
        v = ch["variables"]
        assert (v["PARKINGSLOT"], v["PARKING_SPACE"], v["PARKEDLOT"]) == ("751", "751", "short")
        assert (v["PARKER"], v["PARKER_FLAT"]) == ("PJSIP/bob", "PJSIP_bob")
        time.sleep(0.3)
        t1 = time.monotonic()
        invite.send_tone(1000, 1.0)
        time.sleep(0.3)
        got = bob.received(since=t1 + 0.2)
        assert len(got.audio) >= 30 and abs(dominant_frequency(got.pcm) - 1000) < 15
        back.bye()
        assert invite.wait_bye(5)


def test_timeout_goes_to_the_comebackcontext(pbx):
    with Phone(user="alice") as alice:
        call = alice.call(pbx.port, "7001", user="alice", password="alice-pass")  # Park(tocontext,s): 2 s
        assert call.status == 200
        p = pbx.wait_parked(lambda p: p["parkee_channel"].startswith("PJSIP/alice-"))
        assert (p["parking_lot"], p["parking_space"], p["parker_dial_string"]) == ("tocontext", "761", "PJSIP/alice")
        ch = pbx.channel(lambda c: c["unique_id"] == p["parkee_unique_id"] and c["context"] == "parked-timeout")
        assert (ch["exten"], ch["application"]) == ("PJSIP_alice", "Wait")
        v = ch["variables"]
        assert (v["PARKINGSLOT"], v["PARKEDLOT"], v["PARKER"], v["PARKER_FLAT"]) == (
            "761",
            "tocontext",
            "PJSIP/alice",
            "PJSIP_alice",
        )
        assert pbx.parked() == []
        call.bye()


def test_parkedcall_with_nothing_parked_says_invalidpark_and_hangs_up(pbx, bob):
    call = bob.call(pbx.port, "715", user="bob", password="bob-pass")
    assert call.status == 200
    t0 = time.monotonic()
    assert call.wait_bye(10), "ParkedCall returns -1"
    assert len(bob.received(since=t0 - 0.5).audio) >= 20, "pbx-invalidpark is played"
