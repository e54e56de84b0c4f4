"""Sans-I/O SIP message core: parsing, serialising, framing, responses; fuzzed with hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard.sip.engine import respond
from switchboard.sip.message import Message, ParseError, frame, parse, response_to

OPTIONS = (b"OPTIONS sip:carol@chicago.com SIP/2.0\r\n"
           b"Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKhjhs8ass877\r\n"
           b"Max-Forwards: 70\r\n"
           b"To: <sip:carol@chicago.com>\r\n"
           b"From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"
           b"Call-ID: a84b4c76e66710\r\n"
           b"CSeq: 63104 OPTIONS\r\n"
           b"Contact: <sip:alice@pc33.atlanta.com>\r\n"
           b"Accept: application/sdp\r\n"
           b"Content-Length: 0\r\n\r\n")


def test_parse_rfc3261_options_example():
    m = parse(OPTIONS)
    assert m.method == "OPTIONS" and m.uri == "sip:carol@chicago.com"
    assert m.cseq == (63104, "OPTIONS")
    assert m.get("call-id") == "a84b4c76e66710"
    assert m.body == b""


def test_compact_forms_multi_via_folding_and_body():
    raw = (b"MESSAGE sip:bob@b.example SIP/2.0\r\n"
           b"v: SIP/2.0/UDP a.example;branch=z9hG4bK1, SIP/2.0/UDP c.example;branch=z9hG4bK2\r\n"
           b"f: <sip:a@a.example>;tag=1\r\nt: <sip:bob@b.example>\r\ni: x@y\r\n"
           b"Subject: a long\r\n  folded subject\r\n"
           b"CSeq: 2 MESSAGE\r\nc: text/plain\r\nl: 5\r\n\r\nhelloEXTRA")
    m = parse(raw)
    assert m.get_all("Via") == ["SIP/2.0/UDP a.example;branch=z9hG4bK1", "SIP/2.0/UDP c.example;branch=z9hG4bK2"]
    assert m.get("Subject") == "a long folded subject"
    assert m.body == b"hello"  # Content-Length wins over trailing bytes
    again = parse(m.to_bytes())
    assert again.headers == m.headers and again.body == b"hello"


@pytest.mark.parametrize("raw", [
    b"", b"\r\n\r\n", b"GARBAGE\r\n\r\n", b"OPTIONS sip:x SIP/3.0\r\n\r\n",
    OPTIONS.replace(b"CSeq: 63104 OPTIONS", b"CSeq: x OPTIONS"),
    OPTIONS.replace(b"Call-ID: a84b4c76e66710\r\n", b""),
    OPTIONS.replace(b"Content-Length: 0", b"Content-Length: 99"),
    OPTIONS.replace(b"Content-Length: 0", "Content-Length: \u0663".encode()),
    b"SIP/2.0 2000 OK\r\n\r\n",
])
def test_malformed_is_rejected(raw):
    with pytest.raises(ParseError):
        parse(raw)


def test_response_echoes_and_tags():
    req = parse(OPTIONS)
    resp = response_to(req, 200)
    assert resp.status == 200 and resp.reason == "OK"
    assert resp.get("Via") == req.get("Via") and resp.get("CSeq") == "63104 OPTIONS"
    assert ";tag=" in resp.get("To")
    assert parse(resp.to_bytes()).status == 200


def test_core_answers_options_and_refuses_the_rest():
    assert respond(parse(OPTIONS)).status == 200
    invite = parse(OPTIONS.replace(b"OPTIONS", b"INVITE"))
    assert respond(invite).status == 501
    assert respond(parse(OPTIONS.replace(b"OPTIONS", b"ACK"))) is None


def test_frame_splits_a_stream():
    body_msg = OPTIONS.replace(b"Content-Length: 0", b"Content-Length: 3") + b"abc"
    stream = b"\r\n\r\n" + OPTIONS + body_msg
    first, rest = frame(stream)
    assert first == OPTIONS
    second, rest = frame(rest)
    assert second == body_msg and rest == b""
    assert frame(OPTIONS[:40]) is None
    assert frame(body_msg[:-1]) is None


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=2000))
def test_fuzz_parse_never_crashes(data):
    try:
        m = parse(data)
    except ParseError:
        return
    assert isinstance(m, Message)
    parse(m.to_bytes())  # what we parse, we can write back and read again


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"\r\n", b"Content-Length: ", b"l: 7", b"abc", b"\r\n\r\n", b"9", b"OPTIONS "]),
                max_size=40))
def test_fuzz_frame(parts):
    data = b"".join(parts)
    try:
        out = frame(data)
    except ParseError:
        return
    if out is not None:
        msg, rest = out
        assert len(msg) + len(rest) <= len(data)
