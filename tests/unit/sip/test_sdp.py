"""SDP (RFC 8866), offer/answer (RFC 3264), codecs from pjsip allow/disallow, DTMF in SIP INFO.

The bodies are written the way the named user agents send them (their usual layout, addresses
changed); the expectations come from the RFCs, not from the module."""

from __future__ import annotations

import random

import pytest

from switchboard.sip import sdp
from switchboard.sip.sdp import SdpError


def crlf(text: str) -> bytes:
    return text.strip("\n").replace("\n", "\r\n").encode() + b"\r\n"


# sipp's built-in uac scenario (its [media_ip] etc. filled in)
SIPP_UAC = crlf("""
v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
""")

# sipp's uac_pcap scenario: A-law and telephone-event with events 0-11 and 16
SIPP_UAC_PCAP = crlf("""
v=0
o=user1 53655765 2353687637 IN IP4 10.0.0.7
s=-
c=IN IP4 10.0.0.7
t=0 0
m=audio 6000 RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-11,16
""")

BARESIP = crlf("""
v=0
o=- 1434262542 1903432613 IN IP4 192.168.1.23
s=-
c=IN IP4 192.168.1.23
t=0 0
a=tool:baresip 3.10.1
m=audio 10318 RTP/AVP 96 9 0 8 101
b=AS:64
a=rtpmap:96 opus/48000/2
a=fmtp:96 stereo=1;sprop-stereo=1
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
a=label:1
a=rtcp-rsize
a=ssrc:2871409551 cname:sip:alice@example.org
a=ptime:20
""")

ASTERISK = crlf("""
v=0
o=- 1893527530 1893527530 IN IP4 10.0.0.5
s=Asterisk
c=IN IP4 10.0.0.5
t=0 0
m=audio 17852 RTP/AVP 8 0 101
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=maxptime:150
a=sendrecv
""")

# Linphone: telephone-event at three clock rates (the 8000 Hz one is PT 100), a video section
LINPHONE = crlf("""
v=0
o=alice 3059 2960 IN IP4 192.168.0.20
s=Talk
c=IN IP4 192.168.0.20
t=0 0
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
a=record:off
m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:97 SILK/16000
a=rtpmap:98 speex/16000
a=fmtp:98 vbr=on
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=yes
a=rtpmap:101 telephone-event/48000
a=rtpmap:99 telephone-event/16000
a=rtpmap:100 telephone-event/8000
a=rtcp:7079
a=rtcp-fb:* trr-int 1000
a=rtcp-fb:* ccm tmmbr
m=video 9078 RTP/AVP 96 97
a=rtpmap:96 VP8/90000
a=rtpmap:97 H264/90000
a=fmtp:97 profile-level-id=42801F
a=rtcp-fb:* trr-int 1000
a=rtcp-fb:96 nack pli
""")

# Polycom: direction at session level, G.722 first, static PTs with rtpmap
POLYCOM = crlf("""
v=0
o=- 1612345678 1612345678 IN IP4 192.168.1.50
s=Polycom IP Phone
c=IN IP4 192.168.1.50
t=0 0
a=sendrecv
m=audio 2222 RTP/AVP 9 102 0 8 18 127
a=rtpmap:9 G722/8000
a=rtpmap:102 G7221/16000
a=fmtp:102 bitrate=32000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=no
a=rtpmap:127 telephone-event/8000
""")

# Cisco IOS gateway: c= at media level only, G.729 first, comfort noise
CISCO = crlf("""
v=0
o=CiscoSystemsSIP-GW-UserAgent 4325 8453 IN IP4 10.1.1.1
s=SIP Call
t=0 0
m=audio 16444 RTP/AVP 18 0 8 101 19
c=IN IP4 10.1.1.1
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=no
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=rtpmap:19 CN/8000
a=ptime:20
""")

ALL = [SIPP_UAC, SIPP_UAC_PCAP, BARESIP, ASTERISK, LINPHONE, POLYCOM, CISCO]
G711 = ["PCMU", "PCMA"]


def ans(offer: bytes | sdp.Sdp, allowed=G711, **kw):
    parsed = sdp.parse(offer) if isinstance(offer, bytes) else offer
    kw = {"address": "203.0.113.10", "port": 40000, "session_id": 77, "version": 1, **kw}
    return sdp.answer(parsed, allowed, **kw)


# --- parse / render ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ALL)
def test_real_bodies_render_back_byte_for_byte(body):
    assert sdp.parse(body).to_bytes() == body


@pytest.mark.parametrize("body", ALL)
def test_lf_only_and_str_bodies_parse_the_same(body):
    parsed = sdp.parse(body)
    assert sdp.parse(body.replace(b"\r\n", b"\n")) == parsed
    assert sdp.parse(body.decode()) == parsed


def test_fields_of_a_parsed_body():
    s = sdp.parse(LINPHONE)
    assert s.origin == sdp.Origin("alice", 3059, 2960, "IN", "IP4", "192.168.0.20")
    assert s.name == "Talk" and s.connection == sdp.Connection("IN", "IP4", "192.168.0.20")
    assert ("record", "off") in s.attributes  # unknown attributes kept
    audio, video = s.media
    assert (audio.media, audio.port, audio.proto) == ("audio", 7078, "RTP/AVP")
    assert audio.formats == ["96", "97", "98", "0", "8", "18", "101", "99", "100"]
    assert audio.rtpmap()[100] == ("telephone-event", 8000, None)
    assert audio.rtpmap()[96] == ("opus", 48000, 2)
    assert audio.fmtp("18") == "annexb=yes" and audio.attribute("rtcp") == "7079"
    assert video.media == "video" and s.connection_for(video) == s.connection
    assert s.direction(audio) == "sendrecv"  # no attribute anywhere: the default


def test_session_direction_is_inherited_and_media_direction_wins():
    s = sdp.parse(POLYCOM.replace(b"a=sendrecv", b"a=sendonly"))
    assert s.direction(s.media[0]) == "sendonly"
    s = sdp.parse(POLYCOM.replace(b"a=sendrecv", b"a=sendonly") + b"a=inactive\r\n")
    assert s.direction(s.media[0]) == "inactive"


def test_port_count_ipv6_and_unknown_lines_round_trip():
    body = crlf("""
v=0
o=bob 1 2 IN IP6 2001:db8::1
s=
i=a session
u=https://example.com/s
e=bob@example.com
c=IN IP6 2001:db8::1
b=CT:128
t=3034423619 3042462419
r=7d 1h 0 25h
z=2882844526 -1h
a=recvonly
m=audio 49170/2 RTP/AVP 0
i=voice
b=AS:64
a=rtpmap:0 PCMU/8000
a=x-custom
m=application 0 TCP/MSRP *
""")
    s = sdp.parse(body)
    assert s.media[0].port_count == 2 and s.name == ""
    assert s.media[1].formats == ["*"]
    assert s.to_bytes() == body
    assert s.direction(s.media[0]) == "recvonly"


def test_tolerated_sloppiness_is_normalised():
    # trailing blanks on the lines split into fields, blank lines, i=/p= after t= (RFC order is i u e p c b t)
    sloppy = (
        SIPP_UAC.replace(b"RTP/AVP 0", b"RTP/AVP 0 ").replace(b"t=0 0", b"t=0 0\t\r\np=+1 555 0100\r\n\r\ni=x")
        + b"\r\n"
    )
    s = sdp.parse(sloppy)
    assert s.media[0].formats == ["0"] and s.lines == [("p", "+1 555 0100"), ("i", "x"), ("t", "0 0")]
    assert sdp.parse(s.to_bytes()) == s


def test_built_description_renders_and_parses_back():
    o = sdp.offer(["PCMA", "PCMU"], address="198.51.100.2", port=30000, session_id=5, version=9)
    body = o.to_bytes()
    assert body == crlf("""
v=0
o=- 5 9 IN IP4 198.51.100.2
s=-
c=IN IP4 198.51.100.2
t=0 0
m=audio 30000 RTP/AVP 8 0 101
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv
""")
    assert sdp.parse(body) == o


# --- malformed -------------------------------------------------------------------------------------------


def _replace(body: bytes, old: bytes, new: bytes) -> bytes:
    assert old in body
    return body.replace(old, new)


MALFORMED = {
    "empty": b"",
    "missing v=": _replace(SIPP_UAC, b"v=0\r\n", b""),
    "v=1": _replace(SIPP_UAC, b"v=0", b"v=1"),
    "v= not first": _replace(SIPP_UAC, b"v=0\r\no=", b"o=").replace(b"s=-", b"s=-\r\nv=0"),
    "missing o=": _replace(SIPP_UAC, b"o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n", b""),
    "o= short": _replace(SIPP_UAC, b"2353687637 IN", b"IN"),
    "o= version not a number": _replace(SIPP_UAC, b"2353687637", b"v1"),
    "missing s=": _replace(SIPP_UAC, b"s=-\r\n", b""),
    "missing t=": _replace(SIPP_UAC, b"t=0 0\r\n", b""),
    "bad t=": _replace(SIPP_UAC, b"t=0 0", b"t=now"),
    "missing c=": _replace(SIPP_UAC, b"c=IN IP4 127.0.0.1\r\n", b""),
    "missing c= in one active section": _replace(CISCO, b"c=IN IP4 10.1.1.1\r\n", b""),
    "bad c=": _replace(SIPP_UAC, b"c=IN IP4 127.0.0.1", b"c=IN IP4"),
    "bad IPv4": _replace(SIPP_UAC, b"c=IN IP4 127.0.0.1", b"c=IN IP4 127.0.0.300"),
    "two session c=": _replace(SIPP_UAC, b"t=0 0", b"c=IN IP4 10.0.0.1\r\nt=0 0"),
    "bad m= port": _replace(SIPP_UAC, b"m=audio 6000", b"m=audio 6x00"),
    "m= port too large": _replace(SIPP_UAC, b"m=audio 6000", b"m=audio 70000"),
    "bad port count": _replace(SIPP_UAC, b"m=audio 6000", b"m=audio 6000/0"),
    "m= without formats": _replace(SIPP_UAC, b"RTP/AVP 0", b"RTP/AVP"),
    "non-numeric PT": _replace(SIPP_UAC, b"RTP/AVP 0", b"RTP/AVP PCMU"),
    "PT above 127": _replace(SIPP_UAC, b"RTP/AVP 0", b"RTP/AVP 128"),
    "double space in m=": _replace(SIPP_UAC, b"RTP/AVP 0", b"RTP/AVP  0"),
    "bad rtpmap": _replace(SIPP_UAC, b"PCMU/8000", b"PCMU"),
    "rtpmap rate not a number": _replace(SIPP_UAC, b"PCMU/8000", b"PCMU/8k"),
    "bad fmtp": _replace(SIPP_UAC_PCAP, b"fmtp:101", b"fmtp:x"),
    "bad ptime": SIPP_UAC + b"a=ptime:twenty\r\n",
    "zero ptime": SIPP_UAC + b"a=ptime:0\r\n",
    "bad maxptime": SIPP_UAC + b"a=maxptime:-1\r\n",
    "bad rtcp": SIPP_UAC + b"a=rtcp:port\r\n",
    "two directions": SIPP_UAC + b"a=sendonly\r\na=recvonly\r\n",
    "unknown type letter": SIPP_UAC + b"y=0123456789\r\n",
    "session-only line in media": SIPP_UAC + b"t=0 0\r\n",
    "line without =": SIPP_UAC + b"a\r\n",
    "space before =": _replace(SIPP_UAC, b"s=-", b"s =-"),
    "empty attribute name": SIPP_UAC + b"a=:x\r\n",
    "NUL": SIPP_UAC + b"a=tool:x\x00y\r\n",
    "CR inside a line": SIPP_UAC + b"a=tool:x\ry\r\n",
    "garbage": bytes(range(256)),
    "non-UTF-8": _replace(SIPP_UAC, b"s=-", b"s=Caf\xe9"),
    "HTTP": b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "too large": SIPP_UAC + b"a=x:" + b"y" * 70_000 + b"\r\n",
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_is_400(name):
    with pytest.raises(SdpError) as e:
        sdp.parse(MALFORMED[name])
    assert e.value.status == 400


def test_rejected_section_needs_no_c_and_no_format():
    s = sdp.parse(SIPP_UAC.replace(b"c=IN IP4 127.0.0.1\r\n", b"").replace(b"6000 RTP/AVP 0", b"0 RTP/AVP"))
    assert s.media[0].port == 0 and s.media[0].formats == []


def _mutations(body: bytes, rng: random.Random):
    lines = body.split(b"\r\n")
    choice = rng.randrange(6)
    if choice == 0:  # flip a byte
        i = rng.randrange(len(body))
        return body[:i] + bytes([rng.randrange(256)]) + body[i + 1 :]
    if choice == 1:  # delete a span
        i = rng.randrange(len(body))
        return body[:i] + body[i + rng.randrange(1, 12) :]
    if choice == 2:  # insert a meaningful-looking piece
        piece = rng.choice([b" ", b"=", b":", b"/", b"\r\n", b"\n", b"0", b"99999", b"a=", b"m=", b"c=", b"\xff"])
        i = rng.randrange(len(body))
        return body[:i] + piece + body[i:]
    if choice == 3:  # swap two lines
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif choice == 4:  # drop a line
        del lines[rng.randrange(len(lines))]
    else:  # duplicate a line
        i = rng.randrange(len(lines))
        lines.insert(rng.randrange(len(lines)), lines[i])
    return b"\r\n".join(lines)


def test_fuzz_only_sdp_error_comes_out():
    rng = random.Random(8866)
    outcomes = {"ok": 0, "error": 0}
    for n in range(4000):
        body = rng.choice(ALL)
        for _ in range(rng.randrange(1, 4)):
            body = _mutations(body, rng)
        try:
            s = sdp.parse(body)
        except SdpError as e:
            assert e.status == 400, (n, body)
            outcomes["error"] += 1
            continue
        outcomes["ok"] += 1
        assert sdp.parse(s.to_bytes()) == s, body  # what parses renders to something that parses the same
        try:
            answer, media = ans(s)
        except SdpError as e:
            assert e.status == 488
        else:
            assert sdp.parse(answer.to_bytes()) == answer
            assert len(answer.media) == len(s.media)
            try:
                sdp.accept_answer(answer, s)  # not an answer to that offer, but it must fail cleanly
            except SdpError as e:
                assert e.status in (400, 488)
    assert outcomes["ok"] > 500 and outcomes["error"] > 500  # both sides were exercised


def test_fuzz_accept_answer_only_sdp_error():
    rng = random.Random(3264)
    ours = sdp.offer(G711, address="192.0.2.1", port=4000, session_id=1, version=1)
    good = ans(SIPP_UAC_PCAP)[0].to_bytes()
    for _ in range(2000):
        body = _mutations(good, rng)
        try:
            sdp.accept_answer(ours, sdp.parse(body))
        except SdpError as e:
            assert e.status in (400, 488)


# --- answering offers ------------------------------------------------------------------------------------


def test_answer_to_sipp():
    answer, media = ans(SIPP_UAC)
    assert media == sdp.Media("127.0.0.1", 6000, "PCMU", 0, None, 20, "sendrecv", False)
    assert answer.to_bytes() == crlf("""
v=0
o=- 77 1 IN IP4 203.0.113.10
s=-
c=IN IP4 203.0.113.10
t=0 0
m=audio 40000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
a=ptime:20
a=sendrecv
""")


def test_answer_keeps_the_offerers_telephone_event_pt_and_fmtp():
    answer, media = ans(SIPP_UAC_PCAP)
    assert (media.codec, media.payload_type, media.telephone_event) == ("PCMA", 8, 101)
    m = answer.media[0]
    assert m.formats == ["8", "101"]
    assert m.rtpmap() == {8: ("PCMA", 8000, None), 101: ("telephone-event", 8000, None)}
    assert m.fmtp("101") == "0-11,16"


@pytest.mark.parametrize(
    ("body", "allowed", "codec", "pt", "event"),
    [
        (BARESIP, G711, "PCMU", 0, 101),  # opus and G.722 skipped; the offer lists 0 before 8
        (BARESIP, ["PCMA", "PCMU"], "PCMU", 0, 101),  # the offerer's order, not ours
        (BARESIP, ["PCMA"], "PCMA", 8, 101),
        (ASTERISK, G711, "PCMA", 8, 101),
        (LINPHONE, G711, "PCMU", 0, 100),  # telephone-event/8000 is 100, not 101 (48000 Hz)
        (POLYCOM, G711, "PCMU", 0, 127),
        (CISCO, ["pcma", "pcmu"], "PCMU", 0, 101),  # names compare case-insensitively
        (CISCO, ["PCMA"], "PCMA", 8, 101),
    ],
)
def test_answer_picks_the_offerers_preferred_allowed_codec(body, allowed, codec, pt, event):
    answer, media = ans(body, allowed)
    assert (media.codec, media.payload_type, media.telephone_event) == (codec, pt, event)
    assert answer.media[0].formats == [str(pt), str(event)]


def test_static_pt_without_rtpmap_and_dynamic_pt_with_rtpmap():
    body = crlf("""
v=0
o=- 1 1 IN IP4 192.0.2.9
s=-
c=IN IP4 192.0.2.9
t=0 0
m=audio 5004 RTP/AVP 3 8 0
""")
    assert ans(body)[1].codec == "PCMA"
    dynamic = body.replace(b"RTP/AVP 3 8 0", b"RTP/AVP 96 97") + b"a=rtpmap:96 pcmu/8000\r\na=rtpmap:97 PCMA/16000\r\n"
    answer, media = ans(dynamic)
    assert (media.codec, media.payload_type) == ("PCMU", 96)
    assert answer.media[0].attribute("rtpmap") == "96 PCMU/8000"
    # an rtpmap overrides the static meaning of a number; a clock rate other than 8000 is not G.711
    other = body.replace(b"RTP/AVP 3 8 0", b"RTP/AVP 0 8") + b"a=rtpmap:0 G729/8000\r\na=rtpmap:8 PCMA/16000\r\n"
    with pytest.raises(SdpError) as e:
        ans(other)
    assert e.value.status == 488


def test_dtmf_off_or_not_offered():
    answer, media = ans(ASTERISK, dtmf=False)
    assert media.telephone_event is None and answer.media[0].formats == ["8"]
    assert ans(SIPP_UAC)[1].telephone_event is None


def test_extra_sections_are_rejected_with_port_0_in_order():
    answer, media = ans(LINPHONE)
    assert [(m.media, m.port) for m in answer.media] == [("audio", 40000), ("video", 0)]
    assert answer.media[1].formats == ["96", "97"] and media.index == 0
    assert media.rtcp_port == 7079
    # a video section first, then two audio sections: only the first usable audio is answered
    body = LINPHONE.split(b"m=video")[0]
    audio = b"m=audio" + body.split(b"m=audio")[1]
    video = b"m=video" + LINPHONE.split(b"m=video")[1]
    three = body.split(b"m=audio")[0] + video + audio + audio.replace(b"7078", b"7080")
    answer, media = ans(three)
    assert [(m.media, m.port) for m in answer.media] == [("video", 0), ("audio", 40000), ("audio", 0)]
    assert media.index == 1 and media.port == 7078


def test_srtp_audio_is_refused():
    savp = BARESIP.replace(b"RTP/AVP", b"RTP/SAVP") + b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\n"
    with pytest.raises(SdpError) as e:
        ans(savp)
    assert e.value.status == 488
    both = savp + BARESIP.split(b"a=tool:baresip 3.10.1\r\n")[1]  # SAVP first, then the same over RTP/AVP
    answer, media = ans(both)
    assert [m.port for m in answer.media] == [0, 40000] and answer.media[0].proto == "RTP/SAVP"
    assert media.index == 1


@pytest.mark.parametrize("body", ALL)
@pytest.mark.parametrize("allowed", [[], ["G722"], ["telephone-event"]])
def test_no_common_codec_is_488(body, allowed):
    with pytest.raises(SdpError) as e:
        ans(body, allowed)
    assert e.value.status == 488


def test_no_common_codec_with_g729_only_and_no_audio():
    g729 = CISCO.replace(b"RTP/AVP 18 0 8 101 19", b"RTP/AVP 18 101")
    with pytest.raises(SdpError) as e:
        ans(g729)
    assert e.value.status == 488
    video_only = LINPHONE.split(b"m=audio")[0] + b"m=video" + LINPHONE.split(b"m=video")[1]
    with pytest.raises(SdpError) as e:
        ans(video_only)
    assert e.value.status == 488
    audio_off = SIPP_UAC.replace(b"6000", b"0")
    with pytest.raises(SdpError) as e:
        ans(audio_off)
    assert e.value.status == 488


def test_ptime_and_maxptime():
    assert ans(SIPP_UAC + b"a=ptime:30\r\n")[1].ptime == 30
    assert ans(SIPP_UAC + b"a=ptime:40\r\na=maxptime:30\r\n")[1].ptime == 30
    answer, media = ans(SIPP_UAC + b"a=ptime:20.0\r\n")
    assert media.ptime == 20 and answer.media[0].attribute("ptime") == "20"


# --- hold and unhold, both ways ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attribute", "ours", "on_hold"),
    [
        (b"a=sendrecv", "sendrecv", False),
        (b"a=sendonly", "recvonly", True),
        (b"a=inactive", "inactive", True),
        (b"a=recvonly", "sendonly", False),
    ],
)
def test_their_direction_is_complemented(attribute, ours, on_hold):
    answer, media = ans(ASTERISK.replace(b"a=sendrecv", attribute))
    assert answer.direction(answer.media[0]) == ours
    assert media.direction == attribute[2:].decode() and media.on_hold is on_hold


def test_polycom_session_level_hold_and_rfc2543_hold():
    answer, media = ans(POLYCOM.replace(b"a=sendrecv", b"a=sendonly"))
    assert media.on_hold and media.direction == "sendonly"
    assert answer.media[0].attribute("recvonly") == ""
    answer, media = ans(CISCO.replace(b"c=IN IP4 10.1.1.1", b"c=IN IP4 0.0.0.0"))
    assert media.on_hold and media.address == "0.0.0.0" and media.direction == "sendrecv"


def test_our_direction_intersects_theirs():
    answer, _ = ans(ASTERISK, direction="sendonly")
    assert answer.direction(answer.media[0]) == "sendonly"
    answer, _ = ans(ASTERISK.replace(b"a=sendrecv", b"a=sendonly"), direction="sendonly")
    assert answer.direction(answer.media[0]) == "inactive"
    with pytest.raises(ValueError):
        ans(ASTERISK, direction="both")


def test_we_hold_and_unhold_with_version_bumps():
    first = sdp.offer(G711, address="192.0.2.1", port=4000, session_id=42, version=1)
    held = sdp.hold(first)
    assert held.origin.version == 2 and held.origin.session_id == 42
    assert held.direction(held.media[0]) == "sendonly"
    assert first.origin.version == 1 and first.direction(first.media[0]) == "sendrecv"  # a copy
    assert held.to_bytes().count(b"a=sendonly") == 1 and b"a=sendrecv" not in held.to_bytes()
    # the remote answers our hold with recvonly: it is not holding us
    their, _ = ans(held)
    assert their.direction(their.media[0]) == "recvonly"
    media = sdp.accept_answer(held, sdp.parse(their.to_bytes()))
    assert media.direction == "recvonly" and not media.on_hold
    back = sdp.unhold(held)
    assert back.origin.version == 3 and back.direction(back.media[0]) == "sendrecv"
    assert sdp.bump(back).origin.version == 4
    inactive = sdp.with_direction(sdp.parse(POLYCOM), "inactive")  # session-level a=sendrecv removed
    assert inactive.attributes == [] and inactive.direction(inactive.media[0]) == "inactive"


def test_they_hold_us_in_a_reinvite():
    first = sdp.parse(ASTERISK)
    _, media = ans(first)
    assert not media.on_hold
    held = sdp.hold(first)
    assert held.origin.version == first.origin.version + 1
    answer, media = ans(held.to_bytes(), version=2)
    assert media.on_hold and answer.direction(answer.media[0]) == "recvonly"
    _, media = ans(sdp.unhold(held).to_bytes(), version=3)
    assert not media.on_hold


# --- our offers and their answers ----------------------------------------------------------------------


def test_accept_answer_from_each_kind_of_peer():
    ours = sdp.offer(G711, address="192.0.2.1", port=4000, session_id=1, version=1)
    for body in ALL:
        if body is LINPHONE:
            continue  # two sections: not an answer to our one
        answer_body, _ = ans(body)  # whatever they would answer, built by the same rules
        media = sdp.accept_answer(ours, answer_body)
        assert media.codec in G711 and media.port == 40000 and media.address == "203.0.113.10"


def test_accept_answer_reads_pt_codec_and_event():
    ours = sdp.offer(["PCMA", "PCMU"], address="192.0.2.1", port=4000, session_id=1, version=1)
    media = sdp.accept_answer(ours, sdp.parse(ASTERISK))  # Asterisk answering with 8 0 101
    assert media == sdp.Media("10.0.0.5", 17852, "PCMA", 8, 101, 20, "sendrecv", False)


def test_accept_answer_sees_the_answerer_holding():
    ours = sdp.offer(G711, address="192.0.2.1", port=4000, session_id=1, version=1)
    media = sdp.accept_answer(ours, sdp.parse(SIPP_UAC.replace(b"c=IN IP4 127.0.0.1", b"c=IN IP4 0.0.0.0")))
    assert media.on_hold and media.direction == "sendrecv"
    media = sdp.accept_answer(ours, sdp.parse(SIPP_UAC + b"a=inactive\r\n"))
    assert media.on_hold and media.direction == "inactive"


def test_accept_answer_rejections():
    ours = sdp.offer(["PCMA"], address="192.0.2.1", port=4000, session_id=1, version=1)
    for body, status in [
        (SIPP_UAC, 488),  # PCMU, which we did not offer
        (SIPP_UAC_PCAP.replace(b"m=audio 6000", b"m=audio 0"), 488),  # rejected
        (LINPHONE, 400),  # two m= sections for our one
        (SIPP_UAC_PCAP.replace(b"m=audio", b"m=video"), 400),
    ]:
        with pytest.raises(SdpError) as e:
            sdp.accept_answer(ours, sdp.parse(body))
        assert e.value.status == status
    no_dtmf = sdp.offer(["PCMA"], address="192.0.2.1", port=4000, session_id=1, version=1, dtmf=False)
    assert sdp.accept_answer(no_dtmf, sdp.parse(SIPP_UAC_PCAP)).telephone_event is None


def test_offer_arguments():
    o = sdp.offer(["pcmu"], address="2001:db8::5", port=4000, session_id=1, version=1, dtmf=False, ptime=30)
    assert o.connection == sdp.Connection("IN", "IP6", "2001:db8::5")
    assert o.media[0].formats == ["0"] and o.media[0].attribute("ptime") == "30"
    with pytest.raises(SdpError) as e:
        sdp.offer([], address="192.0.2.1", port=4000, session_id=1, version=1)
    assert e.value.status == 488
    with pytest.raises(ValueError):
        sdp.offer(["G729"], address="192.0.2.1", port=4000, session_id=1, version=1)
    assert sdp.hold(o).direction(sdp.hold(o).media[0]) == "sendonly"


# --- pjsip allow/disallow ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allow", "disallow", "expected"),
    [
        ("ulaw,alaw", "all", ["PCMU", "PCMA"]),
        ("alaw,ulaw", "all", ["PCMA", "PCMU"]),
        ("ulaw", "", ["PCMU"]),  # a set allow starts from nothing, as in Asterisk
        ("g729,alaw", "all", ["PCMA"]),  # g729: not ours, ignored
        ("g729", "all", []),
        ("all", "", ["PCMU", "PCMA"]),
        ("all,!ulaw", "", ["PCMA"]),
        ("!g729,alaw", "", ["PCMA"]),
        ("", "", ["PCMU", "PCMA"]),  # blank: our default (Asterisk would have none)
        ("", "alaw", ["PCMU"]),
        ("", "all", []),
        (" ULaw , ALAW ", " ALL ", ["PCMU", "PCMA"]),
        ("ulaw:20,alaw", "all", ["PCMU", "PCMA"]),
        ("ulaw,alaw,ulaw", "all", ["PCMU", "PCMA"]),
        ("alaw,nonsense,", "all", ["PCMA"]),
        ("pcmu", "all", []),  # not an Asterisk codec name
    ],
)
def test_codecs_from_pjsip(allow, disallow, expected):
    assert sdp.codecs_from_pjsip(allow, disallow) == expected


# --- DTMF in INFO ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"Signal=5\r\nDuration=160\r\n", ("5", 160)),
        (b"Signal=5\r\nDuration=160", ("5", 160)),
        (b"Signal= *\nDuration= 250\n", ("*", 250)),
        (b"signal=#\r\nduration=100\r\n", ("#", 100)),
        (b"Signal=10\r\nDuration=100\r\n", ("*", 100)),
        (b"Signal=11\r\nDuration=100\r\n", ("#", 100)),
        (b"Signal=12\r\nDuration=90\r\n", ("A", 90)),
        (b"Signal=d\r\nDuration=90\r\n", ("D", 90)),
        (b"Signal=1\r\n", ("1", sdp.DEFAULT_DTMF_MS)),
        (b"Duration=160\r\nSignal=9\r\n", ("9", 160)),
        (b"Signal=0\r\nDuration=160\r\nVolume=10\r\n", ("0", 160)),
        (b"5", ("5", sdp.DEFAULT_DTMF_MS)),
        (b"#\r\n", ("#", sdp.DEFAULT_DTMF_MS)),
        (b"11", ("#", sdp.DEFAULT_DTMF_MS)),
        (b"", None),
        (b"Signal=\r\nDuration=160", None),
        (b"Signal=E\r\nDuration=160", None),
        (b"Signal=16\r\nDuration=160", None),
        (b"Signal=55\r\n", None),
        (b"Signal=5\r\nDuration=abc", None),
        (b"Signal=5\r\nDuration=-1", None),
        (b"Signal=5\r\nDuration=99999999", None),
        (b"Signal=5\r\ngarbage", None),
        (b"Duration=160", None),
        (b"55", None),
        (b"\xff\xfe", None),
        (b"Signal=\xd9\xa5\r\n", None),  # an Arabic-Indic digit is not a DTMF digit
        (b"Signal=5\r\nDuration=\xd9\xa5", None),
    ],
)
def test_dtmf_relay(body, expected):
    assert sdp.dtmf_relay(body) == expected
