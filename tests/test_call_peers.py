"""The call peers of tests/call_peers.py tested against each other and against sipp and baresip,
without Switchboard: when a call e2e test fails, the tool must not be the suspect."""

from __future__ import annotations

import threading
import time

import pytest

from tests.call_peers import (
    BaresipPhone,
    Phone,
    SippUasCall,
    digest_authorization,
    digest_check,
    dominant_frequency,
    make_tone_wav,
    read_wav_pcm,
    rms,
    run_sipp_call,
    tone_pcm,
    udp_ports,
)
from tests.sip_peers import Kamailio, skip_without, wait_for


@pytest.fixture
def phone():
    with Phone() as p:
        yield p


def test_dominant_frequency_and_wav(tmp_path):
    """The FFT measure is within a few Hz, on PCM and on a WAV written by make_tone_wav."""
    assert abs(dominant_frequency(tone_pcm(1000, 0.5)) - 1000) < 3
    assert abs(dominant_frequency(tone_pcm(440, 0.3)) - 440) < 3
    assert dominant_frequency(b"\0" * 3200) == 0.0
    pcm = read_wav_pcm(make_tone_wav(tmp_path / "t.wav", 697, 0.5))
    assert len(pcm) == 8000 and abs(dominant_frequency(pcm) - 697) < 3


def test_digest_round_trip():
    """The phone's own MD5 digest (qop=auth) verifies its own answers and refuses a wrong password."""
    challenge = 'Digest realm="r", nonce="n1", qop="auth,auth-int", algorithm=MD5, opaque="o"'
    auth = digest_authorization([challenge], "INVITE", "sip:100@h", "alice", "pw")
    assert "qop=auth" in auth and 'opaque="o"' in auth
    assert digest_check(auth, "INVITE", "alice", "pw", "r")
    assert not digest_check(auth, "INVITE", "alice", "other", "r")
    # RFC 2617 test vector shape without qop (RFC 2069 compatibility)
    plain = digest_authorization(['Digest realm="r", nonce="n"'], "REGISTER", "sip:h", "bob", "pw")
    assert "qop" not in plain and digest_check(plain, "REGISTER", "bob", "pw", "r")


def test_phone_to_sipp_uas_echo(phone, tmp_path):
    """Phone -> sipp call_uas.xml with -rtp_echo: answered with an SDP (PCMU), a 1 kHz tone sent comes
    back measured at 1 kHz, RFC 4733 digits come back and are detected, BYE completes."""
    skip_without("sipp")
    with SippUasCall(tmp_path, calls=1) as uas:
        assert uas.port and uas.media_port and uas.port != uas.media_port
        call = phone.call(uas.port, "100")
        assert call.status == 200, [str(r) for r in call.responses]
        assert [r.status for r in call.responses] == [100, 180, 200]
        assert call.codec == "PCMU" and call.remote_rtp == ("127.0.0.1", uas.media_port)
        assert call.dtmf_pt == 101
        start = time.monotonic()
        call.send_tone(1000, 1.0)
        wait_for(lambda: len(phone.received(start).audio) >= 45, 3, what="echoed audio")
        got = phone.received(start)
        assert abs(dominant_frequency(got.pcm) - 1000) < 5
        assert rms(got.pcm) > 1000
        for digit in "19#":
            phone.send_dtmf(digit)
        assert wait_for(lambda: phone.rfc4733_digits(since=start) == "19#", 3, what="echoed digits")
        bye = call.bye()
        assert bye is not None and bye.status == 200
        assert uas.wait(5) == 0, uas.log()[-2000:]
    assert uas.counts() == (1, 0), uas.log()[-2000:]


def test_sipp_uas_busy_and_other_loopback_address(phone, tmp_path):
    """call_uas_busy.xml on 127.0.0.2 answers 486; the phone ACKs it (sipp would count a failed call
    and retransmit its 486 otherwise); and the port is read back from /proc."""
    skip_without("sipp")
    with SippUasCall(tmp_path, "call_uas_busy.xml", host="127.0.0.2", calls=1) as uas:
        assert udp_ports(uas.proc.pid, "127.0.0.2")[0] == uas.port
        call = phone.call(uas.port, "200", server_host="127.0.0.2")
        assert call.status == 486
        assert uas.wait(5) == 0, uas.log()[-2000:]
    assert uas.counts() == (1, 0)


def test_phone_to_phone_answer_info_hold_bye(tmp_path):
    """Point to point: A calls B at its URI; B rings then answers; media flows both ways; INFO DTMF,
    a re-INVITE to hold (sendonly -> answered recvonly) and back; B hangs up, A sees the BYE."""
    with Phone(user="a") as a, Phone(user="b") as b:
        call = a.invite(b.port, b.uri())
        incoming = b.answer_incoming(timeout=3)
        assert incoming is not None and incoming.acked.is_set()
        assert call.wait_final(3) == 200
        assert [r.status for r in call.responses] == [100, 180, 200]
        assert call.remote_rtp == ("127.0.0.1", b.rtp_port) and incoming.remote_rtp == ("127.0.0.1", a.rtp_port)
        assert incoming.remote_uri == "sip:a@127.0.0.1"

        start = time.monotonic()
        call.send_tone(440, 0.4)
        incoming.send_tone(1500, 0.4, codec="PCMU")
        wait_for(lambda: len(b.received(start).audio) >= 18 and len(a.received(start).audio) >= 18, 2)
        assert abs(dominant_frequency(b.received(start).pcm) - 440) < 5
        assert abs(dominant_frequency(a.received(start).pcm) - 1500) < 5

        info = call.info_dtmf("5")
        assert info is not None and info.status == 200
        got = [r for r in incoming.requests if r.method == "INFO"]
        assert got and "Signal=5" in got[0].body and got[0].get("Content-Type") == "application/dtmf-relay"

        hold = call.reinvite("sendonly")
        assert hold is not None and hold.status == 200 and call.remote_sdp.direction == "recvonly"
        assert incoming.remote_sdp.direction == "sendonly"
        resume = call.reinvite("sendrecv")
        assert resume is not None and resume.status == 200 and call.remote_sdp.direction == "sendrecv"

        bye = incoming.bye()
        assert bye is not None and bye.status == 200
        assert call.wait_bye(2) is not None and not call.established


def test_phone_to_phone_pcma(tmp_path):
    """The A-law path: A offers PCMA and PCMU, B takes only PCMA; a 2 kHz tone survives the trip."""
    with Phone(user="a") as a, Phone(user="b") as b:
        call = a.invite(b.port, b.uri(), codecs=("PCMA", "PCMU"))
        incoming = b.answer_incoming(timeout=3, codecs=("PCMA",))
        assert call.wait_final(3) == 200 and call.codec == "PCMA" and incoming.codecs == ("PCMA",)
        start = time.monotonic()
        a.send_tone(2000, 0.4, "PCMA")
        wait_for(lambda: len(b.received(start).audio) >= 18, 2, what="A-law audio")
        assert {p.payload_type for p in b.received(start).audio} == {8}
        assert abs(dominant_frequency(b.received(start).pcm) - 2000) < 5
        assert call.bye().status == 200 and incoming.wait_bye(1) is not None


def test_phone_busy_cancel_and_refer(tmp_path):
    """B answers busy (486, ACKed in its transaction); a ringing call is CANCELled (200, then 487);
    a REFER gets 202 and the NOTIFYs the referee sends are answered and returned."""
    with Phone(user="a") as a, Phone(user="b") as b:
        call = a.invite(b.port, b.uri())
        b.answer_incoming(timeout=3, status=486)
        assert call.wait_final(3) == 486

        call = a.invite(b.port, b.uri())
        ringing = b.answer_incoming(timeout=3, answer=False)
        wait_for(lambda: any(r.status == 180 for r in call.responses), 2, what="180")
        cancel = call.cancel()
        assert cancel is not None and cancel.status == 200
        assert call.wait_final(3) == 487 and ringing.ended.is_set()

        call = a.invite(b.port, b.uri())
        incoming = b.answer_incoming(timeout=3)
        assert call.wait_final(3) == 200

        def referee():  # B plays the transferee: NOTIFYs with sipfrags once the REFER is in
            wait_for(lambda: any(r.method == "REFER" for r in incoming.requests), 3)
            for frag in ("SIP/2.0 100 Trying", "SIP/2.0 200 OK"):
                state = "active;expires=60" if "100" in frag else "terminated;reason=noresource"
                incoming.request(
                    "NOTIFY",
                    [("Event", "refer"), ("Subscription-State", state)],
                    body=frag + "\r\n",
                    content_type="message/sipfrag;version=2.0",
                )

        t = threading.Thread(target=referee)
        t.start()
        result = call.refer("sip:300@127.0.0.1")
        t.join()
        # the phone answers REFER 200 (not 202) as it is no transferee; a server answers 202
        assert result.response is not None and result.response.status in (200, 202)
        assert result.sipfrags == ["SIP/2.0 100 Trying", "SIP/2.0 200 OK"]
        assert call.bye().status == 200


def test_sipp_uac_auth_against_challenging_phone(tmp_path):
    """call_uac_auth.xml: INVITE -> 401 -> ACK -> INVITE with digest -> 200 -> ACK, RTP from
    call_tone.wav (u-law, 1 kHz) -> BYE; the phone checks the credentials and measures the tone."""
    skip_without("sipp")
    with Phone(user="100", challenge=("carol", "s3cret")) as p:
        answered: list = []
        t = threading.Thread(target=lambda: answered.append(p.answer_incoming(timeout=8)))
        t.start()
        result = run_sipp_call(p.port, tmp_path, "100", "carol", "s3cret", seconds=1.5, freq=1000)
        t.join()
        assert result.successful == 1, result.text
        call = answered[0]
        assert call is not None and call.invite.get("Authorization")
        assert call.wait_bye(1) is not None
        pcm = p.received().pcm
        assert len(pcm) > 8000, len(pcm)
        assert abs(dominant_frequency(pcm) - 1000) < 5
        assert [m.first_line.split()[1] for d, m in p.log if d == ">" and m.status][:1] == ["401"]


def test_baresip_dials_phone_and_records(tmp_path):
    """baresip (aufile source: an 800 Hz WAV) dials the phone directly; the phone answers, measures
    800 Hz, sends 1200 Hz back which baresip records (sndfile); baresip hangs up with a BYE."""
    skip_without("baresip")
    wav = make_tone_wav(tmp_path / "tone.wav", 800, 5)
    with Phone(user="callee") as p, BaresipPhone(tmp_path / "bs", wav) as bs:
        assert bs.port
        start = time.monotonic()
        bs.dial(p.uri())
        call = p.answer_incoming(timeout=5)
        assert call is not None and call.acked.is_set(), bs.log()[-2000:]
        assert call.codec in ("PCMU", "PCMA")
        call.send_tone(1200, 1.0)
        wait_for(lambda: len(p.received(start).audio) >= 40, 3, what="baresip's audio")
        got = p.received(start)
        assert abs(dominant_frequency(got.pcm[-8000:]) - 800) < 5
        bs.hangup()
        assert call.wait_bye(3) is not None, bs.log()[-2000:]
        rec = wait_for(bs.recorded_pcm, 3, what="baresip recording")
        assert abs(dominant_frequency(rec) - 1200) < 10, bs.log()[-2000:]


def test_phone_registers_with_digest(phone, tmp_path):
    """REGISTER -> 401 (Kamailio: MD5, qop=auth) -> REGISTER with the phone's own digest -> 200, the
    Contact pointing at the phone's SIP port; a wrong password gets 401 again."""
    skip_without("kamailio")
    kam = Kamailio(tmp_path, password="regpass").start()
    try:
        resp = phone.register(kam.port, "alice", "regpass")
        assert resp is not None and resp.status == 200, resp
        assert f"127.0.0.1:{phone.port}" in (resp.get("Contact") or "")
        sent = [m for d, m in phone.log if d == ">" and m.method == "REGISTER"]
        assert "qop=auth" in (sent[-1].get("Authorization") or "")
        bad = phone.register(kam.port, "alice", "wrong")
        assert bad is not None and bad.status == 401
        assert [r.authorized for r in kam.registers()] == [False, True, False, True]
    finally:
        kam.stop()
