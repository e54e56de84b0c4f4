"""Sans-I/O SIP message core: parsing, serialising, framing, responses; fuzzed with hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard.sip.engine import default_respond as respond
from switchboard.sip.message import REASONS, Message, ParseError, canonical, frame, parse, response_to, salvage

OPTIONS = (
    b"OPTIONS sip:carol@chicago.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKhjhs8ass877\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: <sip:carol@chicago.com>\r\n"
    b"From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710\r\n"
    b"CSeq: 63104 OPTIONS\r\n"
    b"Contact: <sip:alice@pc33.atlanta.com>\r\n"
    b"Accept: application/sdp\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def test_parse_rfc3261_options_example():
    m = parse(OPTIONS)
    assert m.method == "OPTIONS" and m.uri == "sip:carol@chicago.com"
    assert m.cseq == (63104, "OPTIONS")
    assert m.get("call-id") == "a84b4c76e66710"
    assert m.body == b""


def test_compact_forms_multi_via_folding_and_body():
    raw = (
        b"MESSAGE sip:bob@b.example SIP/2.0\r\n"
        b"v: SIP/2.0/UDP a.example;branch=z9hG4bK1, SIP/2.0/UDP c.example;branch=z9hG4bK2\r\n"
        b"f: <sip:a@a.example>;tag=1\r\nt: <sip:bob@b.example>\r\ni: x@y\r\n"
        b"Subject: a long\r\n  folded subject\r\n"
        b"CSeq: 2 MESSAGE\r\nc: text/plain\r\nl: 5\r\n\r\nhelloEXTRA"
    )
    m = parse(raw)
    assert m.get_all("Via") == ["SIP/2.0/UDP a.example;branch=z9hG4bK1", "SIP/2.0/UDP c.example;branch=z9hG4bK2"]
    assert m.get("Subject") == "a long folded subject"
    assert m.body == b"hello"  # Content-Length wins over trailing bytes
    again = parse(m.to_bytes())
    assert again.headers == m.headers and again.body == b"hello"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\r\n\r\n",
        b"GARBAGE\r\n\r\n",
        b"OPTIONS sip:x SIP/3.0\r\n\r\n",
        OPTIONS.replace(b"CSeq: 63104 OPTIONS", b"CSeq: x OPTIONS"),
        OPTIONS.replace(b"Call-ID: a84b4c76e66710\r\n", b""),
        OPTIONS.replace(b"Content-Length: 0", b"Content-Length: 99"),
        OPTIONS.replace(b"Content-Length: 0", "Content-Length: \u0663".encode()),
        b"SIP/2.0 2000 OK\r\n\r\n",
    ],
)
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
@given(
    st.lists(
        st.sampled_from([b"\r\n", b"Content-Length: ", b"l: 7", b"abc", b"\r\n\r\n", b"9", b"OPTIONS "]), max_size=40
    )
)
def test_fuzz_frame(parts):
    data = b"".join(parts)
    try:
        out = frame(data)
    except ParseError:
        return
    if out is not None:
        msg, rest = out
        assert len(msg) + len(rest) <= len(data)


# --- validation details ------------------------------------------------------------------------


def _edit(old: bytes, new: bytes) -> bytes:
    assert old in OPTIONS
    return OPTIONS.replace(old, new, 1)


CALL_ID, TO, START = (
    b"Call-ID: a84b4c76e66710\r\n",
    b"To: <sip:carol@chicago.com>\r\n",
    b"sip:carol@chicago.com SIP/2.0",
)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (_edit(CALL_ID, CALL_ID + b"Call-ID: other\r\n"), "more than one"),
        (_edit(TO, TO + b"t: <sip:x@y>\r\n"), "more than one"),
        (_edit(b"Max-Forwards: 70", b"Max-Forwards: 256"), "Max-Forwards"),
        (_edit(b"Max-Forwards: 70", b"Max-Forwards: seventy"), "Max-Forwards"),
        (_edit(b"63104 OPTIONS", b"4294967296 OPTIONS"), "CSeq"),
        (_edit(b"63104 OPTIONS", b"63104 INVITE"), "CSeq method"),
        (_edit(b"Content-Length: 0", b"Content-Length: five"), "Content-Length"),
        (_edit(TO, b"To: <sip:carol@chicago.com>, <sip:dave@chicago.com>\r\n"), "To"),
        (_edit(b"Via: SIP/2.0/UDP", b"Via: SIP/2.0/UDP,"), "Via"),
        (_edit(b"Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKhjhs8ass877\r\n", b""), "missing Via"),
        (_edit(CALL_ID, b"Call-ID: a84b4c76 e66710\r\n"), "Call-ID"),
        (_edit(b"Accept: application/sdp", b"Acc ept: application/sdp"), "header line"),
        (_edit(b"Accept: application/sdp", b"Accept application/sdp"), "header line"),
        (_edit(START + b"\r\n", START + b"\r\n x\r\n"), "continuation"),
        (_edit(START, b"sip:carol@chicago.com?Subject=x SIP/2.0"), "Request-URI"),
    ],
)
def test_what_makes_a_message_malformed(raw, why):
    with pytest.raises(ParseError, match=why) as err:
        parse(raw)
    assert err.value.status == 400


def test_parse_error_status_says_how_to_answer():
    with pytest.raises(ParseError) as err:
        parse(OPTIONS.replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1))
    assert err.value.status == 505
    with pytest.raises(ParseError) as err:
        parse(OPTIONS + b"x" * 70_000)
    assert err.value.status == 513
    assert ParseError("plain").status == 400 and isinstance(ParseError("x"), ValueError)


def test_liberal_where_harmless():
    lf_only = parse(OPTIONS.replace(b"\r\n", b"\n"))  # bare LF line ends
    assert lf_only.get("Call-ID") == "a84b4c76e66710" and lf_only.cseq == (63104, "OPTIONS")
    assert parse(b"\r\n\r\n" + OPTIONS).method == "OPTIONS"  # CRLFs before the start line (§7.5)
    assert parse(OPTIONS[:-2]).get("Accept") == "application/sdp"  # no empty line at the end
    spaced = parse(OPTIONS.replace(b"CSeq: 63104 OPTIONS", b"CSeq :\t63104 \t OPTIONS  "))
    assert spaced.cseq == (63104, "OPTIONS") and spaced.get("CSeq") == "63104 \t OPTIONS"
    zeros = parse(OPTIONS.replace(b"Content-Length: 0", b"Content-Length: " + b"0" * 5000))
    assert zeros.body == b""  # 1*DIGIT: leading zeros are fine, and no ValueError from int()
    utf8 = parse(OPTIONS.replace(b"Alice <", "Zoë Ångström <".encode()))  # unquoted UTF-8 display name
    assert utf8.get("From").startswith("Zoë Ångström <")
    v6 = OPTIONS.replace(b"pc33.atlanta.com;", b"[2001:db8::1]:5060;received=2001:db8::9;rport=5060;")
    assert (
        parse(v6).get("Via")
        == "SIP/2.0/UDP [2001:db8::1]:5060;received=2001:db8::9;rport=5060;branch=z9hG4bKhjhs8ass877"
    )


def test_method_names_are_case_sensitive():
    m = parse(OPTIONS.replace(b"OPTIONS", b"options"))
    assert m.method == "options" and m.cseq == (63104, "options")  # an unknown method, not OPTIONS


def test_headers_of_a_response():
    resp = parse(
        b"SIP/2.0 180 Ringing\r\n"
        b"Via: SIP/2.0/UDP a.example;branch=z9hG4bK1;received=192.0.2.1, SIP/2.0/UDP b.example;branch=z9hG4bK2\r\n"
        b"Record-Route: <sip:p1.example;lr>, <sip:p2.example;lr>\r\n"
        b"From: Alice <sip:alice@a.example>;tag=1\r\nTo: Bob <sip:bob@b.example>;tag=2\r\n"
        b"Call-ID: c@a.example\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    assert resp.status == 180 and resp.reason == "Ringing" and resp.cseq == (1, "INVITE")
    assert resp.get("Via") == "SIP/2.0/UDP a.example;branch=z9hG4bK1;received=192.0.2.1"
    assert resp.get_all("Record-Route") == ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]


def test_lazy_lists_materialise_transparently():
    raw = (
        b"OPTIONS sip:bob@b.example SIP/2.0\r\n"
        b'Via: SIP/2.0/UDP a.example;branch=z9hG4bK1, SIP/2.0/UDP c.example;branch=z9hG4bK2;x="q,r"\r\n'
        b'Route: <sip:p1.example;lr>,<sip:p2.example;lr;a=",">\r\n'
        b"From: <sip:a@a.example>;tag=1\r\nTo: <sip:bob@b.example>\r\n"
        b"Call-ID: x@y\r\nCSeq: 1 OPTIONS\r\n\r\n"
    )
    vias = ["SIP/2.0/UDP a.example;branch=z9hG4bK1", 'SIP/2.0/UDP c.example;branch=z9hG4bK2;x="q,r"']
    routes = ["<sip:p1.example;lr>", '<sip:p2.example;lr;a=",">']
    m = parse(raw)
    assert m.get("Via") == vias[0] and m.get_all("v") == vias and m.get_all("Route") == routes  # before
    assert m.headers[:2] == [("Via", vias[0]), ("Via", vias[1])]  # one entry per value, as always
    assert m.get_all("Via") == vias and m.get("Route") == routes[0]  # after
    m.headers.append(("X-Extra", "1"))  # a real list: append, reassign
    assert m.get("X-Extra") == "1" and b"X-Extra: 1\r\n" in m.to_bytes()
    m.headers = [h for h in m.headers if h[0] != "Route"]
    assert m.get_all("Route") == [] and parse(m.to_bytes()).get_all("Via") == vias
    m.set("Via", "SIP/2.0/TCP z.example;branch=z9hG4bK3")
    assert m.get_all("Via") == ["SIP/2.0/TCP z.example;branch=z9hG4bK3"]
    fresh = parse(raw)
    fresh.headers = [("Via", "SIP/2.0/UDP q;branch=z9hG4bK9")]  # reassigned before ever read
    assert fresh.get_all("Via") == ["SIP/2.0/UDP q;branch=z9hG4bK9"] and fresh.get("Route") is None


def test_message_is_built_like_before():
    m = Message(method="ACK", uri="sip:b@b", headers=[("Via", "SIP/2.0/UDP h;branch=z9hG4bKx")])
    assert m.is_request and m.status is None and m.body == b"" and m.get("via") == "SIP/2.0/UDP h;branch=z9hG4bKx"
    assert Message("OPTIONS", "sip:x") == Message(method="OPTIONS", uri="sip:x")
    assert Message().headers == [] and Message().headers is not Message().headers
    assert "OPTIONS" in repr(Message("OPTIONS", "sip:x"))
    assert parse(OPTIONS) == parse(OPTIONS) and parse(OPTIONS) != parse(OPTIONS.replace(b"63104", b"63105"))


def test_canonical_names():
    assert canonical("call-id") == canonical("i") == canonical(" CALL-ID ") == "Call-ID"
    assert canonical("cseq") == "CSeq" and canonical("www-authenticate") == "WWW-Authenticate"
    assert canonical("x-my-header") == "X-My-Header"
    m = parse(OPTIONS.replace(b"Accept:", b"ACCEPT  :"))
    assert m.get("accept") == "application/sdp" and ("Accept", "application/sdp") in m.headers


def test_salvage_only_when_an_answer_is_possible():
    broken = OPTIONS.replace(b"CSeq: 63104 OPTIONS", b"CSeq: 63104 OPTIONS\r\nCSeq: 1 OPTIONS")
    with pytest.raises(ParseError):
        parse(broken)
    req = salvage(broken)
    assert req.method == "OPTIONS" and req.uri == "sip:carol@chicago.com"
    assert [n for n, _ in req.headers] == ["Via", "To", "From", "Call-ID", "CSeq"]  # the first CSeq only
    assert req.get("CSeq") == "63104 OPTIONS"
    assert parse(response_to(req, 400).to_bytes()).status == 400
    assert salvage(OPTIONS.replace(b"OPTIONS sip", b"ACK sip")) is None  # never answered
    assert salvage(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\nCSeq: 1 INVITE\r\n\r\n") is None  # a response
    assert salvage(OPTIONS.replace(b"Via: ", b"Vio: ")) is None  # nowhere to send it
    assert salvage(OPTIONS.replace(b"CSeq: ", b"CSeg: ")) is None  # nothing to match it with
    assert salvage(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") is None and salvage(b"") is None
    folded = salvage(b"BYE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n ;branch=z9hG4bK1\r\nCSeq: 2 BYE\r\n\r\n")
    assert folded.get("Via") == "SIP/2.0/UDP h ;branch=z9hG4bK1"


def test_frame_content_length_forms():
    folded = OPTIONS.replace(b"Content-Length: 0", b"l:\r\n 3") + b"abc"
    assert frame(folded + b"rest") == (folded, b"rest")
    with pytest.raises(ParseError, match="conflicting"):
        frame(OPTIONS.replace(b"Content-Length: 0", b"Content-Length: 0\r\nl: 4") + b"abcd")
    with pytest.raises(ParseError, match="too large"):
        frame(OPTIONS.replace(b"Content-Length: 0", b"Content-Length: 99999"))


# --- fuzzing: salvage and frame never raise, and what they return is usable ---------------------------

_PIECES = [OPTIONS, OPTIONS.replace(b"OPTIONS", b"INVITE"), b"\r\n", b" ", b"\t", b",", b";", b":", b'"', b"<", b">",
           b"\\", b"\x00", b"\xff", "é".encode(), b"SIP/2.0", b"Via: ", b"CSeq: 1 ", b"l: 5", b"Content-Length: 9",
           b"\r\n\r\n", b"\n"]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=2000))
def test_fuzz_salvage_never_crashes(data):
    req = salvage(data)
    if req is not None:
        assert req.is_request and req.method != "ACK" and req.get("Via") is not None
        response_to(req, 400).to_bytes()


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=2000))
def test_fuzz_frame_arbitrary_bytes(data):
    try:
        out = frame(data)
    except ParseError:
        return
    if out is not None:
        msg, rest = out
        assert data.endswith(msg + rest) and len(msg) + len(rest) <= len(data)


@settings(max_examples=500, deadline=None)
@given(st.integers(0, len(OPTIONS)), st.integers(0, 40), st.lists(st.sampled_from(_PIECES), max_size=6))
def test_fuzz_mutated_messages(at, cut, pieces):
    """Near-valid messages (a valid one with a slice replaced) reach far deeper than random bytes."""
    data = OPTIONS[:at] + b"".join(pieces) + OPTIONS[at + cut :]
    try:
        m = parse(data)
    except ParseError:
        req = salvage(data)
        if req is not None:
            response_to(req, 400).to_bytes()
        return
    again = parse(m.to_bytes())  # what we parse, we can write back and read again, the same
    assert (again.method, again.uri, again.status, again.body) == (m.method, m.uri, m.status, m.body)
    assert again.reason == m.reason or (m.reason == "" and again.reason == REASONS.get(m.status))  # "" -> default
    assert [h for h in again.headers if h[0] != "Content-Length"] == [h for h in m.headers if h[0] != "Content-Length"]
