"""The sans-I/O endpoint's routing decisions, without sockets: bytes and a clock in, actions out."""

from __future__ import annotations

import pytest

from switchboard.sip.dialog import DialogTable, UasInvite
from switchboard.sip.endpoint import (
    Cancelled,
    ClearTimer,
    DeliverRequest,
    DeliverResponse,
    Endpoint,
    SetTimer,
    Source,
    TransactionEnded,
    Transmit,
)
from switchboard.sip.headers import with_received
from switchboard.sip.message import Message, header_lines, parse, response_to
from switchboard.sip.transaction import COMPLETED, CONFIRMED, ServerTransaction

UDP = Source("192.0.2.7", 5070, "UDP")
TCP = Source("192.0.2.7", 40000, "TCP", writer=object())


def request(
    method: str = "OPTIONS",
    branch: str = "z9hG4bKep1",
    cseq: int = 1,
    *,
    to_tag: str = "",
    via: str | None = None,
    call_id: str = "c1@ep.test",
) -> bytes:
    to = "<sip:ep.test>" + (f";tag={to_tag}" if to_tag else "")
    via = via or f"SIP/2.0/UDP 192.0.2.7:5070;branch={branch};rport"
    return (
        f"{method} sip:ep.test SIP/2.0\r\nVia: {via}\r\n"
        f"From: <sip:alice@ep.test>;tag=ft\r\nTo: {to}\r\nCall-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContact: <sip:alice@192.0.2.7:5070>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def kinds(actions) -> list[str]:
    return [type(a).__name__ for a in actions]


def sent(actions) -> list[Message]:
    return [parse(a.data) for a in actions if isinstance(a, Transmit)]


@pytest.fixture
def ep():
    return Endpoint(server="test")


def test_new_request_is_delivered_and_answered_on_the_fast_path(ep):
    [d] = ep.receive(request(), UDP, 10.0)
    assert isinstance(d, DeliverRequest) and d.tx is None and d.message.method == "OPTIONS"
    out = ep.respond(d, response_to(d.message, 200), 10.0)
    assert kinds(out) == ["Transmit"] and out[0].dest is UDP and sent(out)[0].status == 200
    assert len(ep.table) == 0 and len(ep.completed) == 1  # no transaction object: the completed entry


def test_retransmitted_request_gets_the_same_bytes_until_timer_j(ep):
    [d] = ep.receive(request(), UDP, 10.0)
    [first] = ep.respond(d, response_to(d.message, 200), 10.0)
    again = ep.receive(request(), UDP, 11.0)
    assert kinds(again) == ["Transmit"] and again[0].data == first.data and ep.stats["retransmissions"] == 1
    after_j = ep.receive(request(), UDP, 10.0 + ep.completed.lifetime + 0.01)
    assert kinds(after_j) == ["DeliverRequest"]  # timer J fired: a new transaction


def test_tcp_keeps_no_completed_state(ep):
    [d] = ep.receive(request(), TCP, 1.0)
    out = ep.respond(d, response_to(d.message, 200), 1.0)
    assert out[0].dest is TCP and len(ep.completed) == 0 and len(ep.table) == 0


def test_answer_later_waits_in_trying_and_absorbs_retransmissions(ep):
    [d] = ep.receive(request(), UDP, 1.0)
    ep.pending(d)
    assert isinstance(d.tx, ServerTransaction) and len(ep.table) == 1
    assert ep.receive(request(), UDP, 1.1) == []  # trying: nothing to resend
    out = ep.respond(d, response_to(d.message, 200), 1.2)
    assert kinds(out) == ["Transmit", "TransactionEnded"]  # completed over UDP: moved to the completed table
    assert len(ep.table) == 0 and len(ep.completed) == 1
    assert ep.receive(request(), UDP, 1.3)[0].data == out[0].data


def test_next_input_before_an_answer_makes_the_request_pending(ep):
    [d] = ep.receive(request(), UDP, 1.0)
    [d2] = ep.receive(request(branch="z9hG4bKep2"), UDP, 1.0)  # the TU did not answer d at once
    assert d.tx is not None and d2.tx is None
    assert ep.receive(request(), UDP, 1.1) == []


def test_provisional_then_final(ep):
    [d] = ep.receive(request(), UDP, 1.0)
    out = ep.respond(d, response_to(d.message, 100), 1.0)
    assert sent(out)[0].status == 100 and len(ep.table) == 1
    assert sent(ep.receive(request(), UDP, 1.1))[0].status == 100  # proceeding: resend the provisional


def test_cancel_matching_an_invite_gets_200_and_the_invite_487(ep):
    invite = ep.receive(request("INVITE"), UDP, 1.0)
    assert kinds(invite) == ["Transmit", "DeliverRequest"] and sent(invite)[0].status == 100
    out = ep.receive(request("CANCEL"), UDP, 1.1)
    statuses = [m.status for m in sent(out)]
    assert statuses == [200, 487]
    assert sent(out)[0].cseq[1] == "CANCEL" and sent(out)[1].cseq[1] == "INVITE"
    assert any(isinstance(a, Cancelled) for a in out)
    tx = invite[1].tx
    assert tx.state == COMPLETED
    assert ep.respond(invite[1], response_to(invite[1].message, 200), 1.2) == []  # too late: 487 went
    # the CANCEL's retransmission gets the same 200
    assert sent(ep.receive(request("CANCEL"), UDP, 1.3))[0].status == 200


def test_cancel_matching_nothing_gets_481(ep):
    out = ep.receive(request("CANCEL"), UDP, 1.0)
    assert [m.status for m in sent(out)] == [481]


def test_ack_for_a_non_2xx_is_absorbed_by_the_invite_transaction(ep):
    [_, d] = ep.receive(request("INVITE"), UDP, 1.0)
    out = ep.respond(d, response_to(d.message, 486), 1.0)
    assert kinds(out) == ["Transmit", "SetTimer", "SetTimer"]  # G and H
    ack = ep.receive(request("ACK"), UDP, 1.2)
    assert kinds(ack) == ["ClearTimer", "ClearTimer", "SetTimer"]  # G, H cancelled; I started
    assert d.tx.state == CONFIRMED and ep.stats["stray_acks"] == 0


def test_stray_ack_is_dropped_and_counted(ep):
    assert ep.receive(request("ACK", branch="z9hG4bKnew"), UDP, 1.0) == []
    assert ep.stats["stray_acks"] == 1


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (request().replace(b"CSeq: 1 OPTIONS", b"CSeq: x OPTIONS"), 400),
        (request().replace(b"OPTIONS sip:ep.test SIP/2.0", b"OPTIONS sip:ep.test SIP/7.0"), 505),
    ],
)
def test_malformed_requests_are_answered(ep, data, status):
    [out] = ep.receive(data, UDP, 1.0)
    assert out.data.startswith(f"SIP/2.0 {status} ".encode()) and ep.stats["bad_request"] == 1
    assert b"rport=5070;received=192.0.2.7" in out.data and out.dest is UDP


def test_too_large_is_513(ep):
    from switchboard.sip.message import ParseError

    out = ep.malformed(request(), TCP, ParseError("message too large", 513))
    assert sent(out)[0].status == 513


@pytest.mark.parametrize(
    "data",
    [
        b"garbage\r\n\r\n",
        request("ACK").replace(b"CSeq: 1 ACK", b"CSeq: x ACK"),
        b"SIP/2.0 200 OK\r\nVia: nonsense\r\n\r\n",
    ],
)
def test_unsalvageable_input_is_dropped(ep, data):
    assert ep.receive(data, UDP, 1.0) == [] and ep.stats["dropped"] == 1


def test_via_gets_received_and_rport(ep):
    via = "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKnat;rport"
    [d] = ep.receive(request(via=via), UDP, 1.0)
    assert d.message.get("Via") == "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKnat;rport=5070;received=192.0.2.7"
    [d] = ep.receive(request(via="SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKnat2"), UDP, 1.0)
    assert d.message.get("Via").endswith(";received=192.0.2.7") and "rport" not in d.message.get("Via")
    [d] = ep.receive(request(via="SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bKsame"), UDP, 1.0)
    assert "received" not in d.message.get("Via")  # sent-by is the source already


def test_timer_j_of_a_pending_transaction(ep):
    [d] = ep.receive(request(), TCP, 1.0)
    ep.pending(d)
    out = ep.respond(d, response_to(d.message, 200), 1.0)
    assert kinds(out) == ["Transmit", "SetTimer"] and out[1].name == "J" and out[1].delay == 0
    assert kinds(ep.timer(d.tx, "J", 1.0)) == ["TransactionEnded"] and len(ep.table) == 0
    assert ep.timer(d.tx, "J", 1.0) == []  # a late timer: nothing


def test_completed_entries_expire(ep):
    [d] = ep.receive(request(), UDP, 1.0)
    ep.respond(d, response_to(d.message, 200), 1.0)
    assert ep.expire(1.0 + ep.completed.lifetime) == 1 and len(ep.completed) == 0


def test_responses_are_routed_to_client_transactions_and_strays_counted(ep):
    req = Message(
        method="OPTIONS",
        uri="sip:peer.test",
        headers=[
            ("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKcli;rport"),
            ("From", "<sip:me@x>;tag=1"),
            ("To", "<sip:peer.test>"),
            ("Call-ID", "cli@x"),
            ("CSeq", "1 OPTIONS"),
            ("Max-Forwards", "70"),
        ],
    )
    tx, out = ep.send_request(req, UDP, 1.0)
    assert kinds(out) == ["Transmit", "SetTimer", "SetTimer"]  # E, F
    resp = response_to(req, 200).to_bytes()
    got = ep.receive(resp, UDP, 1.1)
    assert [type(a) for a in got] == [ClearTimer, ClearTimer, DeliverResponse, SetTimer]  # E, F; K
    assert got[2].tx is tx and got[2].message.status == 200
    assert ep.receive(resp, UDP, 1.2) == []  # completed: absorbed
    assert kinds(ep.timer(tx, "K", 6.0)) == ["TransactionEnded"]
    assert ep.receive(resp, UDP, 6.1) == [] and ep.stats["stray_responses"] == 1


def test_client_timeout_and_abandon(ep):
    req = Message(
        method="OPTIONS",
        uri="sip:peer.test",
        headers=[
            ("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKcl2"),
            ("From", "<sip:me@x>;tag=1"),
            ("To", "<sip:peer.test>"),
            ("Call-ID", "cl2@x"),
            ("CSeq", "1 OPTIONS"),
            ("Max-Forwards", "70"),
        ],
    )
    tx, _ = ep.send_request(req, UDP, 1.0)
    assert kinds(ep.timer(tx, "E", 1.5)) == ["Transmit", "SetTimer"]
    ended = ep.timer(tx, "F", 33.0)
    assert isinstance(ended[-1], TransactionEnded) and ended[-1].reason == "timeout"
    assert ep.abandon(tx) == []
    tx2, _ = ep.send_request(
        Message(
            method="OPTIONS",
            uri="sip:p",
            headers=[("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKcl3"), *req.headers[1:]],
        ),
        UDP,
        1.0,
    )
    assert kinds(ep.abandon(tx2)) == ["TransactionEnded"] and len(ep.table) == 0


def test_transport_error_on_the_fast_path_forgets_the_completed_entry(ep):
    [d] = ep.receive(request(), UDP, 1.0)
    [t] = ep.respond(d, response_to(d.message, 200), 1.0)
    ep.transport_error(t.tx, 1.0)
    assert len(ep.completed) == 0


# --- with the dialog layer attached ------------------------------------------------------------------------


def test_in_dialog_request_matching_no_dialog_gets_481():
    ep = Endpoint(dialogs=DialogTable())
    out = ep.receive(request("BYE", to_tag="nope"), UDP, 1.0)
    assert [m.status for m in sent(out)] == [481]
    assert sent(ep.receive(request("BYE", to_tag="nope"), UDP, 1.1))[0].status == 481  # retransmission
    # without the dialog layer, the TU gets it (today's behaviour)
    assert kinds(Endpoint().receive(request("BYE", to_tag="nope"), UDP, 1.0)) == ["DeliverRequest"]


def test_uas_2xx_is_retransmitted_until_the_ack_and_cseq_rule():
    ep = Endpoint(dialogs=DialogTable())
    [_, d] = ep.receive(request("INVITE", cseq=5), UDP, 1.0)
    uas = UasInvite(d.message, contact="<sip:sb@192.0.2.1>")
    out = ep.answer_invite(d, uas, 200, 1.0)
    assert kinds(out) == ["Transmit", "TransactionEnded", "SetTimer", "SetTimer"] and sent(out)[0].status == 200
    assert len(ep.table) == 0  # RFC 6026: the 2xx ends the INVITE server transaction; the TU retransmits
    to_tag = uas.dialog.local_tag
    retransmitted_invite = ep.receive(request("INVITE", cseq=5), UDP, 1.2)
    assert [m.status for m in sent(retransmitted_invite)] == [200]  # not a new INVITE: the 2xx again
    again = ep.timer(uas, "2xx", 1.5)
    assert sent(again)[0].status == 200 and again[1].delay == 1.0  # T1 doubling
    ack = ep.receive(request("ACK", branch="z9hG4bKack", cseq=5, to_tag=to_tag), UDP, 1.6)
    assert kinds(ack) == ["ClearTimer", "ClearTimer", "TransactionEnded"] and uas.retransmit.acked
    # in-dialog: a lower CSeq -> 500, a higher one goes to the TU with its dialog
    low = ep.receive(request("INFO", branch="z9hG4bKi1", cseq=4, to_tag=to_tag), UDP, 2.0)
    assert sent(low)[0].status == 500
    [ok] = ep.receive(request("INFO", branch="z9hG4bKi2", cseq=6, to_tag=to_tag), UDP, 2.0)
    assert isinstance(ok, DeliverRequest) and ok.dialog is uas.dialog
    ep.respond(ok, response_to(ok.message, 200), 2.0)
    [bye] = ep.receive(request("BYE", branch="z9hG4bKb", cseq=7, to_tag=to_tag), UDP, 3.0)
    assert bye.dialog.state == "terminated"
    ep.respond(bye, response_to(bye.message, 200), 3.0)
    assert sent(ep.receive(request("INFO", branch="z9hG4bKi3", cseq=8, to_tag=to_tag), UDP, 4.0))[0].status == 481


def test_uas_non_2xx_answer_stays_in_the_invite_transaction():
    ep = Endpoint(dialogs=DialogTable())
    [_, d] = ep.receive(request("INVITE"), UDP, 1.0)
    uas = UasInvite(d.message, contact="<sip:sb@192.0.2.1>")
    out = ep.answer_invite(d, uas, 486, 1.0)
    assert kinds(out) == ["Transmit", "SetTimer", "SetTimer"] and sent(out)[0].status == 486  # G, H
    assert kinds(ep.receive(request("ACK"), UDP, 1.1)) == ["ClearTimer", "ClearTimer", "SetTimer"]


def test_retransmitted_2xx_goes_to_the_tu_with_dialogs():
    ep = Endpoint(dialogs=DialogTable())
    resp = (
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKgone\r\nFrom: <sip:a@x>;tag=1\r\n"
        b"To: <sip:b@x>;tag=2\r\nCall-ID: g@x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    [d] = ep.receive(resp, UDP, 1.0)
    assert isinstance(d, DeliverResponse) and d.tx is None


def test_a_full_table_drops_the_oldest_and_says_so():
    ep = Endpoint(max_transactions=1)
    [d1] = ep.receive(request(branch="z9hG4bKf1"), UDP, 1.0)
    assert ep.pending(d1) == []
    [d2] = ep.receive(request(branch="z9hG4bKf2"), UDP, 1.0)
    [ended] = ep.pending(d2)
    assert isinstance(ended, TransactionEnded) and ended.tx is d1.tx and ended.reason == "dropped"
    assert ep.respond(d1, response_to(d1.message, 200), 1.1) == []  # its transaction is gone
    [d3] = ep.receive(request(branch="z9hG4bKf3"), UDP, 1.2)
    out = ep.receive(request(branch="z9hG4bKf4"), UDP, 1.2)  # d3 never answered nor pending: held, d2 dropped
    assert kinds(out) == ["TransactionEnded", "DeliverRequest"] and out[0].tx is d2.tx and d3.tx is not None


# ---- a stateless UAS's answer to an OPTIONS outside a dialog (RFC 3261 §8.2.7) ------------------------------
EXTRA = [("Server", "test"), ("Allow", "OPTIONS, REGISTER"), ("Accept", "application/sdp")]
TAIL = f"{header_lines(EXTRA)}Content-Length: 0\r\n\r\n".encode()


def stateful_answer(data: bytes, source: Source, to_tag: str) -> bytes:
    """What the TU's 200 through `receive` would be, with this To tag."""
    msg = parse(data)
    with_received(msg, source.ip, source.port)
    return response_to(msg, 200, headers=EXTRA, to_tag=to_tag).to_bytes()


def test_an_options_outside_a_dialog_is_answered_statelessly(ep):
    data = ep.answer_options(request(), UDP, TAIL)
    resp = parse(data)
    assert resp.status == 200 and resp.get("Call-ID") == "c1@ep.test" and resp.get("CSeq") == "1 OPTIONS"
    assert resp.get("From") == "<sip:alice@ep.test>;tag=ft"
    assert resp.get("Via") == "SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bKep1;rport=5070;received=192.0.2.7"
    assert [(n, resp.get(n)) for n, _ in EXTRA] == EXTRA
    to_tag = resp.get("To").split(";tag=")[1]
    assert len(to_tag) == 12 and int(to_tag, 16) >= 0
    assert data == stateful_answer(request(), UDP, to_tag)  # byte for byte, but for the tag's origin
    assert len(ep.table) == 0 and len(ep.completed) == 0 and ep.stats["stateless"] == 1  # nothing kept
    # a retransmission gets the same bytes, from this endpoint or another process's
    assert ep.answer_options(request(), UDP, TAIL) == data
    assert Endpoint(server="test").answer_options(request(), UDP, TAIL) == data
    # another transaction (branch), call or CSeq: another tag
    for other in (request(branch="z9hG4bKep2"), request(call_id="c2@ep.test"), request(cseq=2)):
        assert parse(ep.answer_options(other, UDP, TAIL)).get("To").split(";tag=")[1] != to_tag


@pytest.mark.parametrize(
    "data",
    [
        request(via="SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bKv1"),  # no rport, sent-by = source: no received
        request(via="SIP/2.0/UDP phone.example:5070;rport;branch=z9hG4bKv2"),  # rport not last
        request(via="SIP/2.0/TCP 10.0.0.1;branch=z9hG4bKv3"),  # received, no rport
        request().replace(b"To: <sip:ep.test>", b'to :  "Echo" <sip:echo@ep.test;user=phone> '),  # spacing, case
        request().replace(b"Call-ID:", b"i:").replace(b"From:", b"f:"),  # compact forms
        b"OPTIONS sip:ep.test SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bKlf\nFrom: <sip:a@ep.test>;tag=1"
        b"\nTo: <sip:ep.test>\nCall-ID: lf\nCSeq: 9 OPTIONS\n\n",  # bare LF line ends, no Content-Length
    ],
)
def test_the_stateless_answer_is_the_stateful_one_but_for_the_tag(ep, data):
    out = ep.answer_options(data, UDP, TAIL)
    assert out is not None
    assert out == stateful_answer(data, UDP, parse(out).get("To").split(";tag=")[1])


def test_answer_options_leaves_other_requests_to_receive(ep):
    no_call_id = request().replace(b"Call-ID: c1@ep.test\r\n", b"")
    two_vias = request().replace(b"Via:", b"Via: SIP/2.0/UDP proxy.example;branch=z9hG4bKp1\r\nVia:")
    with_body = request().replace(b"Content-Length: 0\r\n\r\n", b"Content-Length: 2\r\n\r\nhi")
    tag_like = request().replace(b"To: <sip:ep.test>", b"To: <sip:ep.test;tag=x>")
    for data in (
        request(to_tag="tt"),  # in a dialog
        request("REGISTER"),
        no_call_id,  # malformed
        b"OPTIONS nonsense\r\n\r\n",
        b"SIP/2.0 200 OK\r\n\r\n",
        two_vias,  # not the plain kind: the general path answers it
        with_body,
        tag_like,
    ):
        assert ep.answer_options(data, UDP, TAIL) is None, data
    assert ep.stats["stateless"] == 0 and len(ep.completed) == 0
    # receive still answers the malformed one (400) and delivers the in-dialog one
    [bad_request] = ep.receive(no_call_id, UDP, 1.0)
    assert bad_request.data.startswith(b"SIP/2.0 400 ")
    assert kinds(ep.receive(request(to_tag="tt"), UDP, 1.0)) == ["DeliverRequest"]


CHALLENGE = [("Server", "test"), ("WWW-Authenticate", 'Digest realm="ep.test", nonce="n1", algorithm=MD5, qop="auth"')]


@pytest.mark.parametrize(
    "data",
    [
        request("REGISTER"),
        request("REGISTER", via="SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bKv1"),  # no rport, no received
        request("REGISTER", via="SIP/2.0/UDP phone.example:5070;rport;branch=z9hG4bKv2"),  # rport not last
        request("REGISTER").replace(b"To: <sip:ep.test>", b'to :  "Echo" <sip:echo@ep.test;user=phone> '),
        request("REGISTER").replace(b"To: <sip:ep.test>", b"To: <sip:ep.test>;TAG=x"),  # not ";tag=": tagged
        request("REGISTER").replace(b"Call-ID:", b"i:").replace(b"From:", b"f:").replace(b"Via:", b"v:"),
        b"\r\n" + request("SUBSCRIBE"),  # CRLFs before the start line (RFC 3261 7.5)
    ],
)
def test_the_plain_stateless_head_is_what_response_to_makes(ep, data):
    """SipEngine.challenge writes a plain request's 401 from `stateless_head`: byte for byte the answer
    `stateless_request`, `response_to` and `to_bytes` make, tag included."""
    first, head = ep.stateless_head(data, UDP)
    req, to_tag = ep.stateless_request(data, UDP)
    assert first["To"] == req.get("To") and first["Call-ID"] == req.get("Call-ID")
    made = f"SIP/2.0 401 Unauthorized\r\n{head}{header_lines(CHALLENGE)}Content-Length: 0\r\n\r\n".encode()
    assert made == response_to(req, 401, headers=CHALLENGE, to_tag=to_tag).to_bytes()
    assert ep.stats["stateless"] == 0 and len(ep.table) == 0 and len(ep.completed) == 0  # nothing kept


def test_stateless_head_leaves_every_other_request_to_the_message_path(ep):
    register = request("REGISTER")
    answer = response_to(parse(register), 200).to_bytes()
    for data in (
        register.replace(b"Via:", b"Via: SIP/2.0/UDP proxy.example;branch=z9hG4bKp1\r\nVia:"),  # two Vias
        register.replace(b"Via: ", b"Via: SIP/2.0/UDP proxy.example;branch=z9hG4bKp1, "),  # two on one line
        register.replace(b"Content-Length: 0\r\n\r\n", b"Content-Length: 2\r\n\r\nhi"),  # a body
        register.replace(b"To: <sip:ep.test>", b"To: <sip:ep.test;tag=x>"),  # what response_to takes for a tag
        request("REGISTER", to_tag="tt"),
        register.replace(b"Call-ID: c1@ep.test\r\n", b"Call-ID: c1@ep.test\r\nSubject: a\r\nSubject: b\r\n"),
        register.replace(b"Call-ID: c1@ep.test\r\n", b""),  # malformed
        request("INVITE"),
        request("ACK"),
        request("CANCEL"),
        b"\r\n" + request("INVITE"),
        answer,
        answer.replace(b"SIP/2.0", b"sip/2.0", 1),
    ):
        assert ep.stateless_head(data, UDP) is None, data
