"""The caches and shortcuts of the per-REGISTER path (issue 17): they give the same answers as the work
they save, and stay bounded."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard.sip import digest, message, rand
from switchboard.sip.digest import DigestClient, DigestServer, Verdict, ha1
from switchboard.sip.message import ParseError, parse
from tests.unit.sip.test_digest import _outcome, _reference_parse_params

SECRET = b"0123456789abcdef-shared-secret"
REALM = "pbx.example.com"
URI = "sip:pbx.example.com"

REGISTER = (
    b"REGISTER sip:pbx.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: <sip:alice@pbx.example.com>\r\n"
    b"From: <sip:alice@pbx.example.com>;tag=456248\r\n"
    b"Call-ID: 843817637684230@998sdasdh09\r\n"
    b"CSeq: 1826 REGISTER\r\n"
    b"Contact: <sip:alice@192.0.2.10:5060>;expires=3600\r\n"
    b'Authorization: Digest username="alice", realm="pbx.example.com", nonce="n", uri="sip:pbx.example.com", '
    b'response="6629fae49393a05397450978507c4ef1"\r\n'
    b"User-Agent: Example-Phone/1.2.3\r\n"
    b"Content-Length: 0\r\n\r\n"
)


# --- header lines parsed once -------------------------------------------------------------------------


def test_known_lines_give_the_same_message():
    message._LINES.clear()
    first = parse(REGISTER)
    assert message._LINES  # kept: Max-Forwards, To, From, ...
    again = parse(REGISTER)
    assert again == first and again.headers == first.headers
    assert again.get("To") == "<sip:alice@pbx.example.com>" and again.cseq == (1826, "REGISTER")


def test_lines_new_in_every_message_are_not_kept():
    message._LINES.clear()
    parse(REGISTER)
    kept = {name for name, _ in message._LINES.values()}
    # new in every message (From: its tag), or back only minutes later (Call-ID: a phone's next refresh)
    assert {"Via", "CSeq", "Authorization", "From", "Call-ID"}.isdisjoint(kept)
    assert {"Max-Forwards", "To", "Contact", "User-Agent", "Content-Length"} <= kept


def test_lines_that_never_repeat_do_not_push_out_the_ones_that_do():
    # sipp's REGISTERs (a new Call-ID and From tag per call, one To and Contact per user): the users' To
    # and Contact lines stay found however many calls go by
    message._LINES.clear()
    for i in range(3 * message._LINES_MAX):
        parse(REGISTER.replace(b"843817637684230@", f"{i}@".encode()).replace(b"tag=456248", f"tag={i}".encode()))
    to = next(line for line in REGISTER.decode().split("\r\n") if line.startswith("To:"))
    assert to in message._LINES
    assert len(message._LINES) < 16


def test_long_lines_are_not_kept_and_the_cache_is_bounded(monkeypatch):
    message._LINES.clear()
    long_ua = b"User-Agent: " + b"x" * 300 + b"\r\n"
    parse(REGISTER.replace(b"User-Agent: Example-Phone/1.2.3\r\n", long_ua))
    assert not any(len(line) > message._LINE_KEPT_MAX for line in message._LINES)
    monkeypatch.setattr(message, "_LINES_MAX", 3)
    for i in range(10):
        msg = parse(REGISTER.replace(b"Max-Forwards: 70", f"Max-Forwards: {i}".encode()))
        assert msg.get("Max-Forwards") == str(i)
        assert len(message._LINES) <= 3


def test_a_malformed_line_is_refused_every_time():
    message._LINES.clear()
    bad = REGISTER.replace(b"Max-Forwards: 70", b"Max Forwards: 70")
    for _ in range(2):
        with pytest.raises(ParseError):
            parse(bad)
    assert "Max Forwards: 70" not in message._LINES


# --- random slices --------------------------------------------------------------------------------------


def test_random_slices_are_never_handed_out_twice_across_threads():
    out: list[list[str]] = [[] for _ in range(4)]

    def draw(bucket: list[str]) -> None:
        bucket.extend(rand.token_hex(6) for _ in range(3000))  # several refills each

    threads = [threading.Thread(target=draw, args=(b,)) for b in out]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [x for b in out for x in b]
    assert len(set(everything)) == len(everything) == 12_000
    assert all(len(x) == 12 and int(x, 16) >= 0 for x in everything)


def test_random_sizes():
    assert rand.token_bytes(0) == b"" and rand.token_hex(0) == ""
    assert len(rand.token_bytes(1)) == 1 and len(rand.token_bytes(32)) == 32 and len(rand.token_bytes(33)) == 33
    assert len(rand.token_hex(16)) == 32 and len(rand.token_hex(100)) == 200


# --- digest shortcuts -----------------------------------------------------------------------------------


def _lookup(username: str, realm: str, algorithm: str) -> str | None:
    return ha1(algorithm, username, realm, "s3cret") if username == "alice" else None


def test_a_nonce_seen_before_is_still_checked_for_replay_and_age():
    clock = [1_700_000_000.0]
    server = DigestServer(SECRET, REALM, clock=lambda: clock[0], nonce_ttl=60)
    client = DigestClient("alice", "s3cret")
    challenge = server.challenge()
    first = client.authorize("REGISTER", URI, challenge)
    assert server.verify("REGISTER", first, _lookup).ok
    assert server.verify("REGISTER", first, _lookup).reason == "nc replay"
    assert server.verify("REGISTER", client.authorize("REGISTER", URI, challenge), _lookup).ok  # nc 2
    clock[0] += 61
    late = server.verify("REGISTER", client.authorize("REGISTER", URI, challenge), _lookup)
    assert (late.ok, late.stale, late.reason) == (False, True, "nonce expired")


def test_checked_ha1_values_are_remembered_but_a_bad_one_still_raises():
    server = DigestServer(SECRET, REALM, algorithms=("MD5",))
    good = ha1("MD5", "alice", REALM, "s3cret").upper()  # upper-case hex is valid
    for _ in range(3):
        header = DigestClient("alice", "s3cret").authorize("REGISTER", URI, server.challenge())
        assert server.verify("REGISTER", header, lambda u, r, a: good) == Verdict(True, False, "alice", "ok")
    header = DigestClient("alice", "s3cret").authorize("REGISTER", URI, server.challenge())
    with pytest.raises(ValueError):
        server.verify("REGISTER", header, lambda u, r, a: good[:-1] + "x")
    with pytest.raises(ValueError):
        server.verify("REGISTER", header, lambda u, r, a: good + "00")  # right for no algorithm here


def test_ha2_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(digest, "_HA2_MAX", 4)
    server = DigestServer(SECRET, REALM)
    for i in range(10):
        uri = f"sip:pbx{i}.example.com"
        header = DigestClient("alice", "s3cret").authorize("REGISTER", uri, server.challenge())
        assert server.verify("REGISTER", header, _lookup).ok
        assert len(digest._HA2) <= 4
    wrong = DigestClient("alice", "s3cret").authorize("REGISTER", URI, server.challenge())
    assert server.verify("INVITE", wrong, _lookup).reason == "wrong response"  # method is part of the key


def test_verdict_is_immutable():
    v = Verdict(True, False, "alice", "ok")
    with pytest.raises(AttributeError):
        v.ok = False  # type: ignore[misc]
    assert v == Verdict(True, False, "alice", "ok") and v.username == "alice"


# --- CSeq read once, nonces issued here ---------------------------------------------------------------


def test_cseq_of_a_parsed_message_follows_header_changes():
    msg = parse(REGISTER)
    assert msg.cseq == (1826, "REGISTER")
    msg.set("CSeq", "7 REGISTER")
    assert msg.cseq == (7, "REGISTER")
    msg.set("CSeq", "x REGISTER")
    with pytest.raises(ParseError):
        msg.cseq  # noqa: B018
    resp = parse(b"SIP/2.0 200 OK\r\n" + REGISTER.split(b"\r\n", 1)[1])
    assert resp.cseq == (1826, "REGISTER")


def test_nonces_issued_here_and_elsewhere_verify_alike(monkeypatch):
    node_a, node_b = DigestServer(SECRET, REALM), DigestServer(SECRET, REALM)
    monkeypatch.setattr(digest, "_ISSUED_MAX", 2)
    challenges = [node_a.challenge() for _ in range(3)]  # the first one's nonce is forgotten by node_a
    for challenge in challenges:
        header = DigestClient("alice", "s3cret").authorize("REGISTER", URI, challenge)
        assert node_a.verify("REGISTER", header, _lookup).ok
        assert node_b.verify("REGISTER", header, _lookup).ok  # checked by its MAC
    assert len(node_a._issued) <= 2
    forged = challenges[-1][0].replace('nonce="', 'nonce="A', 1)
    header = DigestClient("alice", "s3cret").authorize("REGISTER", URI, [forged])
    assert node_a.verify("REGISTER", header, _lookup).reason == "bad nonce"


# --- parse_params: one findall, no length counting ------------------------------------------------------

_FRAGMENTS = st.sampled_from(
    ["Digest", " ", ",", "=", '"', "\\", "a", "realm", "x=1", '"q"', "\t", "\r\n", "é", "\x7f", "\x01", "@", '=""']
)


@settings(max_examples=2000)
@given(
    st.one_of(
        st.text(alphabet='Digest usernamerealmnoncuriqopa=,"\\ \t\r\n01-/:@\x00\x01\x7fé', max_size=80),
        st.lists(_FRAGMENTS, max_size=15).map("".join),
    )
)
def test_parse_params_agrees_with_the_reference_on_controls_and_fragments(value):
    assert _outcome(digest.parse_params, value) == _outcome(_reference_parse_params, value)


# --- a phone's To and Contact read once ---------------------------------------------------------------


def test_contact_and_user_caches_give_fresh_answers(monkeypatch):
    from switchboard.sip import headers

    contact = '"A" <sip:alice@192.0.2.10:5060;transport=tcp>;expires=60;q=0.5'
    first = headers.contact_uri_and_params(contact)
    first[1]["expires"] = "tampered"  # the caller's dict is its own
    expected = ("sip:alice@192.0.2.10:5060;transport=tcp", {"expires": "60", "q": "0.5"})
    assert headers.contact_uri_and_params(contact) == expected
    assert headers.uri_user("<sip:alice@pbx.example.com>") == "alice" == headers.uri_user("<sip:alice@pbx.example.com>")
    assert headers.uri_user("<tel:+123>") is None and headers.uri_user(None) is None and headers.uri_user("") is None
    monkeypatch.setattr(headers, "_USERS_MAX", 2)
    monkeypatch.setattr(headers, "_CONTACTS_MAX", 2)
    for i in range(5):
        assert headers.uri_user(f"<sips:u{i}@h>") == f"u{i}"
        assert headers.contact_uri_and_params(f"<sip:u{i}@h>")[0] == f"sip:u{i}@h"
        assert len(headers._USERS) <= 2 and len(headers._CONTACTS) <= 2
