"""Calls through a real `switchboard serve` (its media engine process included) with real peers on
loopback: our test Phone (plain-text SIP and RTP, sharing no code with the server), sipp as a
callee that echoes RTP and as a carrier on 127.0.0.2, and baresip phones. Audio is checked, not
only packets: a tone sent is measured at the right frequency where it arrives.

One server per backend (SQLite, PostgreSQL) for the module, with the pjsip.conf and
extensions.conf below loaded through jade; calls land in jade's live channels while they last and
in its CDRs afterwards."""

from __future__ import annotations

import subprocess
import threading
import time

import httpx
import pytest

from tests.call_peers import BaresipPhone, Phone, SippUasCall, dominant_frequency, make_tone_wav, rms
from tests.sip_peers import EXTENSIONS_PATH, Jade, cdrs, running_pbx, skip_without, wait_for

PJSIP = """
[alice]
type=endpoint
context=internal
auth=alice
aors=alice
callerid="Alice" <1001>
disallow=all
allow=ulaw,alaw

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
allow=ulaw,alaw

[bob]
type=auth
username=bob
password=bob-pass

[bob]
type=aor
max_contacts=2

[bare1]
type=endpoint
context=internal
auth=bare1
aors=bare1
allow=ulaw

[bare1]
type=auth
username=bare1
password=bare1-pass

[bare1]
type=aor
max_contacts=1

[bare2]
type=endpoint
context=internal
auth=bare2
aors=bare2
allow=ulaw

[bare2]
type=auth
username=bare2
password=bare2-pass

[bare2]
type=aor
max_contacts=1

[alaw]
type=endpoint
context=internal
aors=alaw
disallow=all
allow=alaw

[alaw]
type=aor
max_contacts=1

[echo]
type=endpoint
context=internal
aors=echo
allow=ulaw

[echo]
type=aor
contact=sip:echo@127.0.0.1:{echo_port}

[carrier]
type=endpoint
context=from-carrier
aors=carrier
allow=ulaw,alaw

[carrier]
type=aor
contact=sip:127.0.0.2:{carrier_port}

[carrier]
type=identify
endpoint=carrier
match=127.0.0.2
"""

EXTENSIONS = """
[general]
autofallthrough=yes

[internal]
exten => 100,1,Answer()
 same => n,Playback(hello-world)
 same => n,Hangup()
exten => 200,1,Dial(PJSIP/bob,20)
 same => n,Hangup()
exten => 210,1,Dial(PJSIP/bob,20,g)
 same => n,Playback(vm-goodbye)
 same => n,Hangup()
exten => 201,1,Dial(PJSIP/bare2,20)
 same => n,Hangup()
exten => 202,1,Dial(PJSIP/alaw,20)
 same => n,Hangup()
exten => 300,1,Dial(PJSIP/echo,10)
 same => n,Hangup()
exten => 400,1,Goto(ivr,s,1)
exten => 500,1,NoOp(a loop)
 same => n,Goto(500,1)
exten => 600,1,Answer()
 same => n,Echo()
exten => 610,1,Answer()
 same => n,Record(e2e-message.wav,0,2,q)
 same => n,Playback(e2e-message)
 same => n,Hangup()
exten => 700,1,Answer()
 same => n,MusicOnHold(default,2)
 same => n,Hangup()
exten => 800,1,Answer()
 same => n,Wait(30)
 same => n,Hangup()
exten => 2000,hint,PJSIP/bob
exten => 850,1,Answer()
 same => n,Set(BOB=${DEVICE_STATE(PJSIP/bob)})
 same => n,Set(HINT=${EXTENSION_STATE(2000)})
 same => n,Set(ALICE=${DEVICE_STATE(PJSIP/alice)})
 same => n,Wait(5)
 same => n,Hangup()
exten => 900,1,Dial(PJSIP/nobody-registered,5)
 same => n,Hangup(${IF($["${DIALSTATUS}" = "CHANUNAVAIL"]?21:16)})
exten => _9X.,1,Dial(PJSIP/${EXTEN:1}@carrier,10)
 same => n,Hangup()

[ivr]
exten => s,1,Answer()
 same => n,Set(TIMEOUT(digit)=2)
 same => n,Background(hello-world)
 same => n,WaitExten(5)
exten => 1,1,Playback(digits/1)
 same => n,Wait(3)
 same => n,Hangup()
exten => 2,1,Playback(digits/2)
 same => n,Wait(3)
 same => n,Hangup()
exten => i,1,Playback(vm-goodbye)
 same => n,Hangup()
exten => t,1,Hangup(19)

[from-carrier]
exten => _X.,1,Dial(PJSIP/bob,10)
 same => n,Hangup()
"""


class Pbx:
    def __init__(self, srv, jade: Jade, echo: SippUasCall, carrier: SippUasCall):
        self.srv, self.jade, self.echo, self.carrier = srv, jade, echo, carrier

    @property
    def port(self) -> int:
        return self.srv.sip_port

    def channels(self) -> list[dict]:
        return self.jade.get("/admin/core/channels")["list"]

    def cdrs(self, **params) -> list[dict]:
        return cdrs(self.jade, **params)

    def cdr_of(self, linkedid: str, timeout: float = 5.0) -> dict:
        found = wait_for(lambda: self.cdrs(linkedid=linkedid), timeout)
        assert found, f"no CDR for {linkedid}"
        return found[0]


@pytest.fixture(scope="module")
def pbx(backend, tmp_path_factory):
    skip_without("sipp")
    tmp = tmp_path_factory.mktemp(f"calls-{backend}")
    echo = SippUasCall(tmp / "echo").start()
    carrier = SippUasCall(tmp / "carrier", host="127.0.0.2").start()
    pjsip = PJSIP.format(echo_port=echo.port, carrier_port=carrier.port)
    try:
        with running_pbx(backend, tmp, pjsip, {EXTENSIONS_PATH: EXTENSIONS}, SWITCHBOARD_RTP_PORTS="21000-29999") as (
            srv,
            jade,
        ):
            yield Pbx(srv, jade, echo, carrier)
    finally:
        echo.stop()
        carrier.stop()


@pytest.fixture
def bob(pbx):
    with Phone(user="bob") as phone:
        resp = phone.register(pbx.port, "bob", "bob-pass")
        assert resp.status == 200, resp
        yield phone
        phone.register(pbx.port, "bob", "bob-pass", expires=0)


def linkedid_of(pbx: Pbx, predicate=lambda ch: True, timeout: float = 5.0) -> dict:
    chans = wait_for(lambda: [c for c in pbx.channels() if predicate(c)], timeout)
    assert chans, pbx.channels()
    return chans[0]


# ---- one party and the dialplan ----------------------------------------------------------------------
def test_a_prompt_is_played_then_the_call_is_hung_up_and_recorded(pbx):
    with Phone(user="alice") as a:
        call = a.call(pbx.port, "100", user="alice", password="alice-pass")
        assert call.status == 200
        assert call.wait_bye(10), "the dialplan's Hangup() sends BYE"
        rx = a.received()
        # hello-world lasts about 1.4 s (Debian's prompt) or 1 s (the built-in one): 20 ms packets
        assert len(rx.audio) >= 40, len(rx.audio)
        assert rms(rx.pcm) > 100, "the prompt is sound, not silence"
    cdr = wait_for(lambda: pbx.cdrs(src="1001"), 5)[0]
    assert cdr["dst"] == "100" and cdr["dcontext"] == "internal"
    assert cdr["disposition"] == "ANSWERED" and cdr["lastapp"] == "Hangup"
    assert cdr["clid"] == '"Alice" <1001>'
    assert cdr["channel"].startswith("PJSIP/alice-")
    assert cdr["duration"] >= cdr["billsec"] >= 1


def test_an_invite_without_credentials_never_reaches_the_dialplan(pbx):
    before = len(pbx.cdrs(page_size=1000))
    with Phone(user="alice") as a:
        call = a.call(pbx.port, "100")  # no credentials: the challenge stays unanswered
        assert call.status == 401
        call = a.call(pbx.port, "100", user="alice", password="wrong")
        assert call.status == 403
    with Phone(user="mallory") as m:  # a name that is no account: the same answers
        call = m.call(pbx.port, "100")
        assert call.status == 401
        call = m.call(pbx.port, "100", user="mallory", password="guess")
        assert call.status == 403
    assert pbx.channels() == []
    time.sleep(0.5)
    assert len(pbx.cdrs(page_size=1000)) == before


def test_malformed_sdp_is_400_and_no_common_codec_488(pbx):
    before = len(pbx.cdrs(page_size=1000))
    with Phone(user="alice") as a:
        bad = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nm=audio notaport RTP/AVP 0\r\n"
        call = a.call(pbx.port, "100", user="alice", password="alice-pass", sdp_override=bad)
        assert call.status == 400
        g729 = (
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=audio 40000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n"
        )
        call = a.call(pbx.port, "100", user="alice", password="alice-pass", sdp_override=g729)
        assert call.status == 488
    assert pbx.channels() == []
    time.sleep(0.5)
    assert len(pbx.cdrs(page_size=1000)) == before


def test_100rel_required_gets_no_unreliable_provisional_and_unknown_extensions_420(pbx):
    with Phone(user="alice") as a:
        call = a.call(pbx.port, "100", user="alice", password="alice-pass", headers=[("Require", "100rel")])
        assert call.status == 200
        assert [r.status for r in call.responses if 100 < r.status < 200] == []  # no 180/183 without PRACK
        call.bye()
        call = a.call(pbx.port, "100", user="alice", password="alice-pass", headers=[("Require", "foo")])
        assert call.status == 420 and "foo" in str(call.responses[-1])


def test_session_timers_are_negotiated_and_too_short_an_interval_is_422(pbx):
    with Phone(user="alice") as a:
        call = a.call(
            pbx.port,
            "800",
            user="alice",
            password="alice-pass",
            headers=[("Session-Expires", "30"), ("Supported", "timer")],
        )
        assert call.status == 422 and "Min-SE: 90" in str(call.responses[-1])
        call = a.call(
            pbx.port,
            "800",
            user="alice",
            password="alice-pass",
            headers=[("Session-Expires", "120"), ("Supported", "timer")],
        )
        assert call.status == 200
        ok = str(call.responses[-1])
        assert "Session-Expires: 120;refresher=uac" in ok and "Require: timer" in ok
        assert call.reinvite("sendrecv").status == 200  # the refresh
        call.bye()


def test_a_dialplan_loop_is_cut_off(pbx):
    with Phone(user="alice") as a:
        call = a.call(pbx.port, "500", user="alice", password="alice-pass", timeout=15)
        assert call.status >= 400  # hung up before any answer
    assert "loop" in pbx.srv.log().lower()


def test_hints_and_device_states_reach_the_dialplan(pbx, bob):
    with Phone(user="alice") as a:
        call = a.call(pbx.port, "850", user="alice", password="alice-pass")
        assert call.status == 200
        ch = linkedid_of(pbx, lambda c: "ALICE" in c["variables"], timeout=5)  # the last Set
        assert ch["variables"]["BOB"] == "NOT_INUSE" and ch["variables"]["HINT"] == "NOT_INUSE"
        assert ch["variables"]["ALICE"] == "INUSE"  # her own call
        call.bye()


def test_dial_to_nothing_registered_is_chanunavail(pbx):
    with Phone(user="alice") as a:
        call = a.call(pbx.port, "900", user="alice", password="alice-pass")
        assert call.status == 603  # Hangup(21): call rejected, chosen by ${DIALSTATUS}


def test_echo_sends_back_what_the_caller_says_until_hash(pbx):
    with Phone(user="alice") as a:
        call = a.call(pbx.port, "600", user="alice", password="alice-pass")
        assert call.status == 200
        time.sleep(0.2)
        t0 = time.monotonic()
        call.send_tone(1000, 1.0)
        time.sleep(0.3)
        back = a.received(since=t0)
        assert len(back.audio) >= 40 and abs(dominant_frequency(back.pcm) - 1000) < 15
        a.send_dtmf("#")
        assert call.wait_bye(5), "# ends Echo(); autofallthrough hangs up"


def test_music_on_hold_app_plays_music(pbx):
    with Phone(user="alice") as a:
        call = a.call(pbx.port, "700", user="alice", password="alice-pass")
        assert call.status == 200
        assert call.wait_bye(6)
        music = a.received()
        assert len(music.audio) >= 80 and rms(music.pcm) > 100, len(music.audio)


def test_record_then_playback_of_the_recording(pbx):
    with Phone(user="alice") as a:
        call = a.call(pbx.port, "610", user="alice", password="alice-pass")
        assert call.status == 200
        time.sleep(0.2)
        call.send_tone(800, 2.2)  # Record(...,0,2,q): two seconds, then Playback of what it recorded
        t0 = time.monotonic()
        assert call.wait_bye(8)
        played = a.received(since=t0)
        assert len(played.audio) >= 60, len(played.audio)
        assert abs(dominant_frequency(played.pcm) - 800) < 15
    assert (pbx.srv.data_dir / "sounds" / "e2e-message.wav").stat().st_size > 16000


# ---- the IVR -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("press", "branch"), [("2", "2"), ("7", "i")])
def test_the_ivr_takes_the_branch_of_rfc4733_digits(pbx, press, branch):
    with Phone(user="alice") as a:
        call = a.call(pbx.port, "400", user="alice", password="alice-pass")
        assert call.status == 200
        time.sleep(0.5)  # Background is playing
        a.send_dtmf(press)
        ch = linkedid_of(pbx, lambda c: c["context"] == "ivr" and c["exten"] == branch, timeout=8)
        assert ch["channel"].startswith("PJSIP/alice-")
        assert call.wait_bye(10)


def test_the_ivr_takes_sip_info_digits_too(pbx):
    with Phone(user="alice") as a:
        call = a.call(pbx.port, "400", user="alice", password="alice-pass")
        assert call.status == 200
        time.sleep(0.3)
        assert call.info_dtmf("1").status == 200
        linkedid_of(pbx, lambda c: c["context"] == "ivr" and c["exten"] == "1", timeout=8)
        assert call.wait_bye(10)


def test_no_digit_is_the_t_extension(pbx):
    with Phone(user="alice") as a:
        call = a.call(pbx.port, "400", user="alice", password="alice-pass")
        assert call.status == 200
        bye = call.wait_bye(15)  # prompt (~1.4 s), then WaitExten(5): t hangs up with cause 19
        assert bye is not None and "cause=19" in str(bye)


# ---- two parties ---------------------------------------------------------------------------------------
def test_a_calls_b_tones_cross_the_bridge_and_the_channels_show_it(pbx, bob):
    with Phone(user="alice") as a:
        invite = a.invite(pbx.port, "200", user="alice", password="alice-pass")
        incoming = bob.answer_incoming(timeout=10)
        assert incoming is not None
        assert invite.wait_final(10) == 200
        chans = wait_for(lambda: len(pbx.channels()) == 2 and pbx.channels(), 5)
        assert chans, pbx.channels()
        names = sorted(c["channel"].split("-")[0] for c in chans)
        assert names == ["PJSIP/alice", "PJSIP/bob"]
        assert {c["channel_state_desc"] for c in chans} == {"Up"}
        assert len({c["linked_id"] for c in chans}) == 1
        caller = next(c for c in chans if c["channel"].startswith("PJSIP/alice"))
        assert caller["connected_line_num"] == "bob" and caller["caller_id_num"] == "1001"
        assert pbx.jade.get("/device_states/PJSIP/bob")["state"] == "INUSE"
        # a tone each way, at the same time; each is measured where it arrives
        t0 = time.monotonic()
        send_b = threading.Thread(target=incoming.send_tone, args=(700, 1.5))
        send_b.start()
        invite.send_tone(1000, 1.5)
        send_b.join()
        time.sleep(0.3)
        at_b = bob.received(since=t0)
        at_a = a.received(since=t0)
        assert len(at_b.audio) >= 60 and len(at_a.audio) >= 60, (len(at_b.audio), len(at_a.audio))
        assert abs(dominant_frequency(at_b.pcm) - 1000) < 15
        assert abs(dominant_frequency(at_a.pcm) - 700) < 15
        # jade's DELETE hangs the call up for real: both phones get a BYE
        r = pbx.jade.call("DELETE", f"/admin/core/channels/{caller['unique_id']}")
        assert r.status_code == 200, r.text
        assert invite.wait_bye(5) and incoming.wait_bye(5)
        assert wait_for(lambda: pbx.channels() == [], 5)
    cdr = pbx.cdr_of(caller["linked_id"])
    assert cdr["dstchannel"].startswith("PJSIP/bob-") and cdr["disposition"] == "ANSWERED", (cdr, caller, chans)
    assert cdr["lastapp"] == "Dial" and cdr["lastdata"] == "PJSIP/bob,20"


def test_dial_g_goes_on_in_the_dialplan_when_the_callee_hangs_up(pbx, bob):
    with Phone(user="alice") as a:
        invite = a.invite(pbx.port, "210", user="alice", password="alice-pass")
        incoming = bob.answer_incoming(timeout=10)
        assert incoming is not None and invite.wait_final(10) == 200
        t0 = time.monotonic()
        assert incoming.bye().status == 200
        assert invite.wait_bye(8), "vm-goodbye, then Hangup()"
        assert len(a.received(since=t0).audio) >= 20  # the prompt after the callee left


def test_mulaw_caller_to_alaw_callee_is_transcoded(pbx):
    with Phone(user="alaw") as callee, Phone(user="alice") as a:
        assert callee.register(pbx.port, "alaw").status == 200
        invite = a.invite(pbx.port, "202", user="alice", password="alice-pass", codecs=("PCMU",))
        incoming = callee.answer_incoming(timeout=10, codecs=("PCMA",))
        assert incoming is not None and invite.wait_final(10) == 200
        assert invite.codec == "PCMU" and incoming.codec == "PCMA"
        t0 = time.monotonic()
        invite.send_tone(1000, 1.0)
        time.sleep(0.3)
        got = callee.received(since=t0)
        assert len(got.audio) >= 40 and abs(dominant_frequency(got.pcm) - 1000) < 15
        invite.bye()
        assert incoming.wait_bye(5)


def test_busy_callee_gives_busy_to_the_caller(pbx, bob):
    with Phone(user="alice") as a:
        invite = a.invite(pbx.port, "200", user="alice", password="alice-pass")
        assert bob.answer_incoming(timeout=10, status=486) is not None
        assert invite.wait_final(10) == 486  # DIALSTATUS BUSY, then autofallthrough... Hangup(): 17 → 486


def test_caller_cancels_while_the_callee_rings(pbx, bob):
    with Phone(user="alice") as a:
        invite = a.invite(pbx.port, "200", user="alice", password="alice-pass")
        ringing = bob.answer_incoming(timeout=10, answer=False)
        assert ringing is not None
        time.sleep(0.3)
        invite.cancel()
        assert invite.wait_final(5) == 487
        assert wait_for(lambda: ringing.ended.is_set(), 5), "the callee's INVITE is CANCELled"
        assert wait_for(lambda: pbx.channels() == [], 5)


def test_hold_plays_music_to_the_other_party(pbx, bob):
    with Phone(user="alice") as a:
        invite = a.invite(pbx.port, "200", user="alice", password="alice-pass")
        incoming = bob.answer_incoming(timeout=10)
        assert incoming is not None and invite.wait_final(10) == 200
        resp = invite.reinvite("sendonly")
        assert resp.status == 200 and "recvonly" in resp.body
        t0 = time.monotonic()
        time.sleep(1.5)  # alice sends nothing: what bob hears is the hold music
        held = bob.received(since=t0)
        assert len(held.audio) >= 50, len(held.audio)
        assert rms(held.pcm) > 100
        ch = linkedid_of(pbx, lambda c: c["channel"].startswith("PJSIP/alice"))
        assert pbx.jade.get("/device_states/PJSIP/alice")["state"] == "ONHOLD", ch
        assert invite.reinvite("sendrecv").status == 200
        t1 = time.monotonic()
        invite.send_tone(1000, 1.0)
        time.sleep(0.3)
        back = bob.received(since=t1 + 0.2)
        assert abs(dominant_frequency(back.pcm) - 1000) < 15, "unhold resumes the bridge"
        invite.bye()
        assert incoming.wait_bye(5)


def test_blind_transfer_with_refer_sends_the_caller_to_the_new_extension(pbx, bob):
    with Phone(user="alice") as a:
        invite = a.invite(pbx.port, "200", user="alice", password="alice-pass")
        incoming = bob.answer_incoming(timeout=10)
        assert incoming is not None and invite.wait_final(10) == 200
        t0 = time.monotonic()
        result = incoming.refer(f"sip:100@127.0.0.1:{pbx.port}")
        assert result.response.status == 202
        assert wait_for(lambda: any("200" in f for f in result.sipfrags), 5), result.sipfrags
        incoming.bye()
        # alice is now in extension 100: the prompt, then the dialplan's BYE
        assert invite.wait_bye(10)
        heard = a.received(since=t0)
        assert len(heard.audio) >= 40 and rms(heard.pcm) > 100


def test_originate_calls_a_phone_and_runs_the_dialplan_on_answer(pbx, bob):
    r = pbx.jade.call(
        "POST",
        "/admin/core/channels",
        json={"endpoint": "PJSIP/bob", "context": "internal", "exten": "100", "caller_id": "Ops <999>"},
    )
    assert r.status_code == 200, r.text
    ch = r.json()["result"]
    assert ch["channel"].startswith("PJSIP/bob-") and ch["channel_state"] != 6  # not answered yet
    incoming = bob.answer_incoming(timeout=10)
    assert incoming is not None
    assert incoming.wait_bye(10), "extension 100 plays the prompt and hangs up"
    assert len(bob.received().audio) >= 40
    cdr = pbx.cdr_of(ch["linked_id"])
    assert cdr["dst"] == "100" and cdr["disposition"] == "ANSWERED"


# ---- through sipp: the echo callee and the carrier -----------------------------------------------------
def test_rtp_to_a_sipp_callee_with_rtp_echo_comes_back(pbx):
    with Phone(user="alice") as a:
        call = a.call(pbx.port, "300", user="alice", password="alice-pass")
        assert call.status == 200
        t0 = time.monotonic()
        sent = call.send_tone(1000, 1.5)
        time.sleep(0.4)
        back = a.received(since=t0)
        assert sent >= 70 and len(back.audio) >= sent - 3, (sent, len(back.audio))
        assert abs(dominant_frequency(back.pcm) - 1000) < 15
        a.send_dtmf("5")
        time.sleep(0.4)
        assert "5" in a.rfc4733_digits()
        assert call.bye().status == 200


def test_outbound_through_the_trunk_to_the_carrier(pbx):
    with Phone(user="alice") as a:
        call = a.call(pbx.port, "95551234", user="alice", password="alice-pass")
        assert call.status == 200
        t0 = time.monotonic()
        call.send_tone(1000, 1.0)
        time.sleep(0.3)
        back = a.received(since=t0)
        assert abs(dominant_frequency(back.pcm) - 1000) < 15
        assert call.bye().status == 200
    cdr = wait_for(lambda: pbx.cdrs(dst="95551234"), 5)[0]
    assert cdr["dstchannel"].startswith("PJSIP/carrier-")


def test_inbound_from_the_carrier_reaches_bob(pbx, bob, tmp_path):
    """sipp on 127.0.0.2 (the carrier's address: identify match) calls a DID; from-carrier dials bob."""
    result: dict = {}
    args = ["sipp", f"127.0.0.1:{pbx.port}", "-sn", "uac", "-i", "127.0.0.2", "-p", "0", "-s", "5550100"]
    args += ["-d", "1000", "-m", "1", "-timeout", "20s", "-timeout_error", "-nostdin", "-trace_err"]

    def carrier_calls() -> None:
        result["out"] = subprocess.run(args, capture_output=True, text=True, timeout=40, cwd=tmp_path)

    t = threading.Thread(target=carrier_calls)
    t.start()
    incoming = bob.answer_incoming(timeout=10)
    assert incoming is not None
    assert incoming.wait_bye(10)
    t.join(40)
    out = result["out"]
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    cdr = wait_for(lambda: pbx.cdrs(dst="5550100"), 5)[0]
    assert cdr["channel"].startswith("PJSIP/carrier-") and cdr["dcontext"] == "from-carrier"


# ---- baresip -------------------------------------------------------------------------------------------
def test_baresip_a_dials_baresip_b_and_b_hears_the_tone(pbx, tmp_path):
    skip_without("baresip")
    tone = make_tone_wav(tmp_path / "tone.wav", 800, 8)
    silence = make_tone_wav(tmp_path / "quiet.wav", 300, 8)
    b = BaresipPhone(tmp_path / "b", silence, user="bare2", password="bare2-pass", registrar_port=pbx.port).start()
    a = BaresipPhone(tmp_path / "a", tone, user="bare1", password="bare1-pass", registrar_port=pbx.port).start()
    try:
        assert wait_for(lambda: pbx.jade.contacts("bare2"), 10), "bare2 registered"
        a.dial(f"sip:201@127.0.0.1:{pbx.port}")
        assert wait_for(lambda: len(pbx.channels()) == 2, 10), pbx.channels()
        time.sleep(3)
        a.hangup()
        assert wait_for(lambda: pbx.channels() == [], 10)
        pcm = wait_for(lambda: b.recorded_pcm(), 10)
        assert pcm and abs(dominant_frequency(pcm) - 800) < 15
    finally:
        a.stop()
        b.stop()


def test_healthz_and_the_systems_view_count_calls(pbx):
    system = pbx.jade.get("/admin/core/systems/1")
    assert system["cdr_enabled"] == "Yes"
    assert system["processed_calls"] >= 1 and system["current_calls"] == len(pbx.channels())
    assert httpx.get(pbx.srv.url + "/healthz").status_code == 200
