"""Sans-I/O SIP transactions (RFC 3261 §17), driven by a fake driver with a fake clock."""

from __future__ import annotations

import pytest

from switchboard.sip.message import Message, parse
from switchboard.sip.transaction import (
    T1,
    T2,
    T4,
    CancelTimer,
    ClientTransaction,
    CompletedTable,
    Deliver,
    Send,
    ServerTransaction,
    StartTimer,
    Terminated,
    TransactionError,
    TransactionTable,
    build_ack,
    client_key,
    new_branch,
    server_key,
)

BRANCH = "z9hG4bK776asdhds"


def options(branch: str = BRANCH, sent_by: str = "pc33.atlanta.com", cseq: str = "63104 OPTIONS") -> Message:
    return parse(
        f"{cseq.split()[1]} sip:carol@chicago.com SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {sent_by};branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        "To: <sip:carol@chicago.com>\r\n"
        "From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"
        "Call-ID: a84b4c76e66710\r\n"
        f"CSeq: {cseq}\r\n"
        "Content-Length: 0\r\n\r\n".encode()
    )


def invite(branch: str = BRANCH, sent_by: str = "pc33.atlanta.com") -> Message:
    # two Vias and a route set: the ACK must keep only the top Via and copy the Routes
    return parse(
        b"INVITE sip:bob@biloxi.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP " + sent_by.encode() + b";branch=" + branch.encode() + b"\r\n"
        b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKlower;received=192.0.2.1\r\n"
        b"Route: <sip:p1.example.com;lr>\r\n"
        b"Route: <sip:p2.example.com;lr>\r\n"
        b"Max-Forwards: 69\r\n"
        b"To: Bob <sip:bob@biloxi.com>\r\n"
        b"From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"
        b"Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n"
        b"CSeq: 314159 INVITE\r\n"
        b"Contact: <sip:alice@pc33.atlanta.com>\r\n"
        b"Content-Type: application/sdp\r\n"
        b"Content-Length: 4\r\n\r\nv=0\n"
    )


def response(
    req: Message, status: int, reason: str, to_tag: str | None = "a6c85cf", method: str | None = None
) -> Message:
    """A response as the network would hand it to us: literal SIP text echoing the request's headers."""
    number, cseq_method = req.cseq
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {v}" for v in req.get_all("Via")]
    to = req.get("To") or ""
    lines.append(f"To: {to};tag={to_tag}" if to_tag else f"To: {to}")
    lines += [f"From: {req.get('From')}", f"Call-ID: {req.get('Call-ID')}"]
    lines += [f"CSeq: {number} {method or cseq_method}", "Content-Length: 0"]
    return parse(("\r\n".join(lines) + "\r\n\r\n").encode())


def ack_for(inv: Message, to_tag: str = "a6c85cf", branch: str | None = None) -> Message:
    via = inv.get("Via") or ""
    if branch is not None:
        via = via.split(";branch=")[0] + f";branch={branch}"
    return parse(
        f"ACK {inv.uri} SIP/2.0\r\n"
        f"Via: {via}\r\n"
        "Max-Forwards: 70\r\n"
        f"To: {inv.get('To')};tag={to_tag}\r\n"
        f"From: {inv.get('From')}\r\n"
        f"Call-ID: {inv.get('Call-ID')}\r\n"
        f"CSeq: {inv.cseq[0]} ACK\r\n"
        "Content-Length: 0\r\n\r\n".encode()
    )


def cancel_for(inv: Message) -> Message:
    return parse(
        f"CANCEL {inv.uri} SIP/2.0\r\n"
        f"Via: {inv.get('Via')}\r\n"
        "Max-Forwards: 70\r\n"
        f"To: {inv.get('To')}\r\n"
        f"From: {inv.get('From')}\r\n"
        f"Call-ID: {inv.get('Call-ID')}\r\n"
        f"CSeq: {inv.cseq[0]} CANCEL\r\n"
        "Content-Length: 0\r\n\r\n".encode()
    )


class FakeDriver:
    """Executes actions the way the asyncio driver does, against a fake clock."""

    def __init__(self, tx: ClientTransaction | ServerTransaction, table: TransactionTable | None = None):
        self.tx, self.table = tx, table
        self.now = 0.0
        self.timers: dict[str, tuple[float, int]] = {}  # name -> (due, sequence)
        self.seq = 0
        self.sent: list[tuple[float, Message]] = []
        self.delivered: list[tuple[float, Message]] = []
        self.terminated: tuple[float, str] | None = None
        self.started: list[tuple[float, str, float]] = []

    def feed(self, actions: list) -> list:
        for action in actions:
            assert self.terminated is None, f"action {action} after Terminated"
            if isinstance(action, Send):
                action.message.to_bytes()  # serialisable
                self.sent.append((self.now, action.message))
            elif isinstance(action, StartTimer):
                assert action.delay >= 0
                self.seq += 1
                self.timers[action.name] = (self.now + action.delay, self.seq)
                self.started.append((self.now, action.name, action.delay))
            elif isinstance(action, CancelTimer):
                self.timers.pop(action.name, None)
            elif isinstance(action, Deliver):
                self.delivered.append((self.now, action.message))
            elif isinstance(action, Terminated):
                self.terminated = (self.now, action.reason)
                self.timers.clear()
                if self.table is not None:
                    self.table.remove(self.tx)
            else:  # pragma: no cover
                raise AssertionError(action)
        return actions

    def advance(self, until: float) -> None:
        """Fire due timers in time order (ties: the one started first) up to `until`."""
        while self.timers:
            name, (due, _) = min(self.timers.items(), key=lambda item: item[1])
            if due > until:
                break
            del self.timers[name]
            self.now = due
            self.feed(self.tx.on_timer(name))
        self.now = max(self.now, until)

    def run(self) -> None:
        self.advance(float("inf"))

    def sent_times(self, predicate=lambda m: True) -> list[float]:
        return [t for t, m in self.sent if predicate(m)]


def gaps(times: list[float]) -> list[float]:
    return [round(b - a, 6) for a, b in zip(times, times[1:], strict=False)]


# --- helpers -----------------------------------------------------------------------------------


def test_new_branch_has_magic_cookie_and_is_unique():
    branches = {new_branch() for _ in range(100)}
    assert len(branches) == 100
    assert all(b.startswith("z9hG4bK") and len(b) > 7 + 8 for b in branches)


def test_defaults():
    assert (T1, T2, T4) == (0.5, 4.0, 5.0)


def test_keys():
    inv = invite()
    assert client_key(inv) == (BRANCH, "INVITE")
    assert client_key(response(inv, 486, "Busy Here")) == (BRANCH, "INVITE")
    assert server_key(inv) == (BRANCH, "pc33.atlanta.com", "INVITE")
    assert server_key(ack_for(inv)) == server_key(inv)
    assert server_key(cancel_for(inv)) == (BRANCH, "pc33.atlanta.com", "CANCEL")
    # sent-by is compared case-insensitively and without whitespace
    assert server_key(invite(sent_by="PC33.Atlanta.COM")) == server_key(inv)


# --- non-INVITE client -------------------------------------------------------------------------


def test_non_invite_client_udp_retransmits_until_timer_f():
    tx = ClientTransaction(options(), reliable=False)
    assert tx.state == "trying" and tx.key == (BRANCH, "OPTIONS") and tx.branch == BRANCH
    d = FakeDriver(tx)
    d.feed(tx.start())
    assert d.sent == [(0.0, tx.request)]
    d.run()
    times = d.sent_times()
    assert gaps(times) == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    assert times[-1] == 31.5
    assert all(m is tx.request for _, m in d.sent)
    assert d.terminated == (32.0, "timeout")
    assert d.delivered == []
    assert tx.state == "terminated" and tx.termination_reason == "timeout"


def test_non_invite_client_udp_final_response_stops_retransmission_and_k_fires_after_t4():
    req = options()
    tx = ClientTransaction(req, reliable=False)
    d = FakeDriver(tx)
    d.feed(tx.start())
    d.advance(2.0)
    assert d.sent_times() == [0.0, 0.5, 1.5]
    ok = response(req, 200, "OK")
    actions = d.feed(tx.on_response(ok))
    assert CancelTimer("E") in actions and CancelTimer("F") in actions
    assert StartTimer("K", 5.0) in actions
    assert tx.state == "completed" and tx.last_response is ok
    assert [m for _, m in d.delivered] == [ok]
    # retransmissions of the final response are absorbed
    assert tx.on_response(response(req, 200, "OK")) == []
    d.advance(6.9)
    assert d.terminated is None and len(d.sent) == 3
    d.run()
    assert d.terminated == (7.0, "completed")
    assert len(d.sent) == 3 and len(d.delivered) == 1


def test_non_invite_client_provisional_moves_to_proceeding_and_retransmits_every_t2():
    req = options()
    tx = ClientTransaction(req, reliable=False)
    d = FakeDriver(tx)
    d.feed(tx.start())
    d.advance(0.7)  # one retransmission at 0.5; E is now due at 1.5
    d.feed(tx.on_response(response(req, 100, "Trying", to_tag=None)))
    assert tx.state == "proceeding" and len(d.delivered) == 1
    d.advance(20.0)
    assert d.sent_times() == [0.0, 0.5, 1.5, 5.5, 9.5, 13.5, 17.5]
    d.feed(tx.on_response(response(req, 404, "Not Found")))
    assert tx.state == "completed" and len(d.delivered) == 2
    d.run()
    assert d.terminated == (25.0, "completed") and len(d.sent) == 7


def test_non_invite_client_tcp_no_retransmissions_and_k_is_zero():
    req = options()
    tx = ClientTransaction(req, reliable=True)
    d = FakeDriver(tx)
    actions = d.feed(tx.start())
    assert actions == [Send(req), StartTimer("F", 32.0)]
    d.advance(10.0)
    assert d.sent_times() == [0.0]
    actions = d.feed(tx.on_response(response(req, 200, "OK")))
    assert StartTimer("K", 0.0) in actions
    d.run()
    assert d.terminated == (10.0, "completed")
    assert len(d.sent) == 1


def test_non_invite_client_tcp_timeout():
    tx = ClientTransaction(options(), reliable=True)
    d = FakeDriver(tx)
    d.feed(tx.start())
    d.run()
    assert d.sent_times() == [0.0] and d.terminated == (32.0, "timeout")


def test_client_timers_are_overridable():
    tx = ClientTransaction(options(), reliable=False, t1=0.1, t2=0.3)
    d = FakeDriver(tx)
    d.feed(tx.start())
    d.run()
    assert gaps(d.sent_times())[:4] == [0.1, 0.2, 0.3, 0.3]
    assert d.terminated == (pytest.approx(6.4), "timeout")


def test_client_transport_error_and_stale_timers():
    tx = ClientTransaction(options(), reliable=False)
    d = FakeDriver(tx)
    d.feed(tx.start())
    assert tx.on_timer("K") == []  # not running: ignored
    actions = d.feed(tx.on_transport_error())
    assert actions[-1] == Terminated("transport error")
    assert {a.name for a in actions[:-1]} == {"E", "F"}
    assert tx.on_timer("E") == [] and tx.on_transport_error() == []
    assert tx.on_response(response(tx.request, 200, "OK")) == []


def test_client_ignores_response_for_another_transaction():
    req = options()
    tx = ClientTransaction(req, reliable=False)
    tx.start()
    assert tx.on_response(response(options(branch="z9hG4bKother"), 200, "OK")) == []
    assert tx.on_response(response(req, 200, "OK", method="CANCEL")) == []
    assert tx.state == "trying"


def test_client_rejects_bad_input():
    no_branch = options(branch="")
    no_branch.set("Via", "SIP/2.0/UDP pc33.atlanta.com")
    with pytest.raises(ValueError):
        ClientTransaction(no_branch, reliable=False)
    with pytest.raises(ValueError):
        ClientTransaction(ack_for(invite()), reliable=False)
    with pytest.raises(ValueError):
        ClientTransaction(options(), reliable=False, t1=0)
    tx = ClientTransaction(options(), reliable=False)
    tx.start()
    with pytest.raises(TransactionError):
        tx.start()
    with pytest.raises(ValueError):
        tx.on_response(options())


# --- INVITE client -----------------------------------------------------------------------------


def test_invite_client_udp_timer_a_doubles_until_timer_b():
    tx = ClientTransaction(invite(), reliable=False)
    assert tx.state == "calling"
    d = FakeDriver(tx)
    d.feed(tx.start())
    d.run()
    assert d.sent_times() == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # A: 0.5, 1, 2, 4, 8, 16 (no T2 cap)
    assert d.terminated == (32.0, "timeout") and d.delivered == []


def test_invite_client_180_stops_a_then_486_is_acked_and_d_fires():
    inv = invite()
    tx = ClientTransaction(inv, reliable=False)
    d = FakeDriver(tx)
    d.feed(tx.start())
    d.advance(1.0)
    ringing = response(inv, 180, "Ringing")
    actions = d.feed(tx.on_response(ringing))
    assert tx.state == "proceeding"
    assert CancelTimer("A") in actions and CancelTimer("B") in actions
    assert d.timers == {}
    d.advance(60.0)  # proceeding waits for the final response without retransmitting
    assert d.sent_times() == [0.0, 0.5] and d.terminated is None

    busy = response(inv, 486, "Busy Here")
    d.feed(tx.on_response(busy))
    assert tx.state == "completed"
    assert [m for _, m in d.delivered] == [ringing, busy]
    ack = d.sent[-1][1]
    assert ack is tx.ack and d.sent[-1][0] == 60.0
    # §17.1.1.3: re-parse the bytes on the wire and check every header
    wire = parse(ack.to_bytes())
    assert wire.method == "ACK" and wire.uri == "sip:bob@biloxi.com"
    assert wire.get_all("Via") == ["SIP/2.0/UDP pc33.atlanta.com;branch=" + BRANCH]
    assert wire.get_all("Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert wire.get("From") == "Alice <sip:alice@atlanta.com>;tag=1928301774"
    assert wire.get("To") == "Bob <sip:bob@biloxi.com>;tag=a6c85cf"
    assert wire.get("Call-ID") == "a84b4c76e66710@pc33.atlanta.com"
    assert wire.cseq == (314159, "ACK")
    assert wire.get("Max-Forwards") == "69"
    assert wire.body == b"" and wire.get("Content-Type") is None and wire.get("Contact") is None
    assert d.started[-1] == (60.0, "D", 32.0)

    # the ACK got lost: the 486 is retransmitted -> ACK resent, nothing new for the TU
    actions = d.feed(tx.on_response(response(inv, 486, "Busy Here")))
    assert actions == [Send(ack)]
    assert len(d.delivered) == 2
    assert tx.on_response(response(inv, 180, "Ringing")) == []
    d.run()
    assert d.terminated == (92.0, "completed")


def test_invite_client_2xx_is_delivered_and_terminates():
    inv = invite()
    tx = ClientTransaction(inv, reliable=False)
    d = FakeDriver(tx)
    d.feed(tx.start())
    d.advance(0.6)
    ok = response(inv, 200, "OK")
    actions = d.feed(tx.on_response(ok))
    assert actions[0] == Deliver(ok) and actions[-1] == Terminated("completed")
    assert {a.name for a in actions if isinstance(a, CancelTimer)} == {"A", "B"}
    assert tx.ack is None and len(d.sent) == 2  # the TU core ACKs a 2xx, not the transaction


def test_invite_client_tcp_no_timer_a_and_d_is_zero():
    inv = invite()
    tx = ClientTransaction(inv, reliable=True)
    d = FakeDriver(tx)
    assert d.feed(tx.start()) == [Send(inv), StartTimer("B", 32.0)]
    d.advance(3.0)
    d.feed(tx.on_response(response(inv, 603, "Decline")))
    assert d.started[-1] == (3.0, "D", 0.0)
    d.run()
    assert d.terminated == (3.0, "completed")
    assert [m.method for _, m in d.sent] == ["INVITE", "ACK"]


def test_build_ack_standalone():
    inv = invite()
    ack = build_ack(inv, response(inv, 404, "Not Found", to_tag="xyz"))
    assert ack.get("To").endswith(";tag=xyz") and ack.cseq == (314159, "ACK")


# --- INVITE server -----------------------------------------------------------------------------


def test_invite_server_udp_trying_then_486_retransmitted_by_g_until_ack_then_i():
    inv = invite()
    tx = ServerTransaction(inv, reliable=False)
    assert tx.state == "proceeding"
    d = FakeDriver(tx)
    d.feed(tx.start())
    ((_, trying),) = d.sent
    assert trying.status == 100 and ";tag=" not in trying.get("To")
    assert trying.get_all("Via") == inv.get_all("Via") and trying.cseq == (314159, "INVITE")
    assert [m for _, m in d.delivered] == [inv]

    d.advance(0.3)
    d.feed(tx.on_request(invite()))  # retransmitted INVITE -> resend the 100
    assert d.sent[-1] == (0.3, trying)
    assert len(d.delivered) == 1

    busy = response(inv, 486, "Busy Here")
    d.advance(1.0)
    actions = d.feed(tx.respond(busy))
    assert actions == [Send(busy), StartTimer("G", 0.5), StartTimer("H", 32.0)]
    assert tx.state == "completed"
    d.advance(11.0)
    busy_times = d.sent_times(lambda m: m is busy)
    assert gaps(busy_times) == [0.5, 1.0, 2.0, 4.0]  # 1.0, 1.5, 2.5, 4.5, 8.5
    d.feed(tx.on_request(invite()))  # a retransmitted INVITE now gets the 486
    assert d.sent[-1] == (11.0, busy)

    actions = d.feed(tx.on_request(ack_for(inv)))
    assert tx.state == "confirmed"
    assert set(actions) == {CancelTimer("G"), CancelTimer("H"), StartTimer("I", 5.0)}
    assert tx.on_request(ack_for(inv)) == [] and tx.on_request(invite()) == []
    d.advance(15.9)
    assert d.terminated is None
    d.run()
    assert d.terminated == (16.0, "completed")
    assert d.sent_times(lambda m: m is busy) == [1.0, 1.5, 2.5, 4.5, 8.5, 11.0]


def test_invite_server_h_fires_without_ack():
    inv = invite()
    tx = ServerTransaction(inv, reliable=False)
    d = FakeDriver(tx)
    d.feed(tx.start())
    busy = response(inv, 486, "Busy Here")
    d.feed(tx.respond(busy))
    d.run()
    times = d.sent_times(lambda m: m is busy)
    assert gaps(times) == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    assert d.terminated == (32.0, "timeout")
    assert tx.on_request(ack_for(inv)) == []  # too late


def test_invite_server_tcp_no_g_and_i_is_zero():
    inv = invite()
    tx = ServerTransaction(inv, reliable=True)
    d = FakeDriver(tx)
    d.feed(tx.start())
    busy = response(inv, 480, "Temporarily Unavailable")
    assert d.feed(tx.respond(busy)) == [Send(busy), StartTimer("H", 32.0)]
    d.advance(2.0)
    d.feed(tx.on_request(ack_for(inv)))
    d.run()
    assert d.terminated == (2.0, "completed")
    assert d.sent_times(lambda m: m is busy) == [0.0]


def test_invite_server_provisional_and_2xx():
    inv = invite()
    tx = ServerTransaction(inv, reliable=False)
    d = FakeDriver(tx)
    d.feed(tx.start())
    ringing = response(inv, 180, "Ringing")
    assert d.feed(tx.respond(ringing)) == [Send(ringing)]
    d.feed(tx.on_request(invite()))
    assert d.sent[-1][1] is ringing  # the most recent provisional is resent
    ok = response(inv, 200, "OK")
    assert d.feed(tx.respond(ok)) == [Send(ok), Terminated("completed")]
    with pytest.raises(TransactionError):
        tx.respond(response(inv, 200, "OK"))


def test_invite_server_without_auto_trying_absorbs_retransmissions():
    inv = invite()
    tx = ServerTransaction(inv, reliable=False, auto_trying=False)
    assert tx.start() == [Deliver(inv)]
    assert tx.on_request(invite()) == []
    assert tx.on_request(ack_for(inv)) == []  # no final response yet


def test_invite_server_trying_copies_timestamp():
    inv = invite()
    inv.headers.append(("Timestamp", "54"))
    (send, _deliver) = ServerTransaction(inv, reliable=False).start()
    assert send.message.get("Timestamp") == "54"


# --- non-INVITE server -------------------------------------------------------------------------


def test_non_invite_server_resends_final_response_and_j():
    req = options()
    tx = ServerTransaction(req, reliable=False)
    assert tx.state == "trying"
    d = FakeDriver(tx)
    assert d.feed(tx.start()) == [Deliver(req)]  # no 100 for non-INVITE
    assert tx.on_request(options()) == []  # trying: absorb
    d.advance(0.2)
    ok = response(req, 200, "OK")
    assert d.feed(tx.respond(ok)) == [Send(ok), StartTimer("J", 32.0)]
    assert tx.state == "completed"
    d.advance(3.0)
    d.feed(tx.on_request(options()))
    d.advance(20.0)
    d.feed(tx.on_request(options()))
    assert d.sent == [(0.2, ok), (3.0, ok), (20.0, ok)]
    with pytest.raises(TransactionError):
        tx.respond(response(req, 500, "Server Internal Error"))
    d.run()
    assert d.terminated == (pytest.approx(32.2), "completed")
    assert len(d.delivered) == 1


def test_non_invite_server_provisional_then_final_over_tcp():
    req = options()
    tx = ServerTransaction(req, reliable=True)
    d = FakeDriver(tx)
    d.feed(tx.start())
    trying = response(req, 100, "Trying", to_tag=None)
    d.feed(tx.respond(trying))
    assert tx.state == "proceeding"
    d.feed(tx.on_request(options()))
    assert [m for _, m in d.sent] == [trying, trying]
    d.feed(tx.respond(response(req, 200, "OK")))
    assert d.started[-1] == (0.0, "J", 0.0)
    d.run()
    assert d.terminated == (0.0, "completed")


def test_server_transport_error():
    tx = ServerTransaction(invite(), reliable=False)
    tx.start()
    tx.respond(response(tx.request, 500, "Server Internal Error"))
    actions = tx.on_transport_error()
    assert actions[-1] == Terminated("transport error") and tx.state == "terminated"
    assert {a.name for a in actions[:-1]} == {"G", "H"}


def test_server_rejects_ack_and_non_responses():
    with pytest.raises(ValueError):
        ServerTransaction(ack_for(invite()), reliable=False)
    tx = ServerTransaction(options(), reliable=False)
    with pytest.raises(ValueError):
        tx.respond(options())


# --- the table ---------------------------------------------------------------------------------


def test_table_matches_responses_by_branch_and_method():
    table = TransactionTable()
    inv = invite()
    inv_tx = ClientTransaction(inv, reliable=False)
    cancel_tx = ClientTransaction(cancel_for(inv), reliable=False)  # same branch, other method
    opt_tx = ClientTransaction(options(branch="z9hG4bKopt"), reliable=False)
    for tx in (inv_tx, cancel_tx, opt_tx):
        assert table.add(tx) == []
    assert len(table) == 3 and inv_tx in table
    assert table.match_response(response(inv, 180, "Ringing")) is inv_tx
    assert table.match_response(response(inv, 200, "OK", method="CANCEL")) is cancel_tx
    assert table.match_response(response(options(branch="z9hG4bKopt"), 200, "OK")) is opt_tx
    assert table.match_response(response(options(branch="z9hG4bKnope"), 200, "OK")) is None
    assert table.match_response(inv) is None  # a request is not a response
    # a server transaction with the same branch lives in the other half of the table
    assert table.match_request(inv) is None


def test_table_server_matching_ack_cancel_and_new_branch():
    table = TransactionTable()
    inv = invite()
    inv_tx = ServerTransaction(inv, reliable=False)
    table.add(inv_tx)
    assert table.match_request(invite()) is inv_tx  # retransmission
    assert table.match_request(ack_for(inv)) is inv_tx  # ACK for a non-2xx -> the INVITE transaction
    assert table.match_request(ack_for(inv, branch="z9hG4bK2xxack")) is None  # ACK for a 2xx: TU core
    assert table.match_request(invite(branch="z9hG4bKnew")) is None  # different branch: new transaction
    assert table.match_request(invite(sent_by="evil.example.com")) is None  # same branch, other sent-by

    cancel = cancel_for(inv)
    assert table.match_request(cancel) is None  # CANCEL is a transaction of its own
    assert table.cancel_target(cancel) is inv_tx
    cancel_tx = ServerTransaction(cancel, reliable=False)
    table.add(cancel_tx)
    assert table.match_request(cancel_for(inv)) is cancel_tx
    assert table.cancel_target(inv) is None
    assert table.match_request(response(inv, 200, "OK")) is None

    # the driver removes transactions on Terminated
    d = FakeDriver(inv_tx, table)
    d.feed(inv_tx.start())
    d.feed(inv_tx.respond(response(inv, 200, "OK")))
    assert inv_tx not in table and table.match_request(invite()) is None
    assert table.remove(inv_tx) is False
    assert list(table) == [cancel_tx]


def test_table_rfc2543_fallback_key():
    old = parse(
        b"INVITE sip:bob@biloxi.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP old.example.com:5060\r\n"
        b"To: <sip:bob@biloxi.com>\r\n"
        b"From: <sip:alice@old.example.com>;tag=88\r\n"
        b"Call-ID: 2543@old.example.com\r\n"
        b"CSeq: 7 INVITE\r\n\r\n"
    )
    key = server_key(old)
    assert key[0] == "rfc2543" and key[-1] == "INVITE"
    table = TransactionTable()
    tx = ServerTransaction(old, reliable=False)
    table.add(tx)
    assert table.match_request(parse(old.to_bytes())) is tx
    assert table.match_request(ack_for(old, to_tag="ourtag")) is tx
    other = parse(old.to_bytes().replace(b"CSeq: 7 INVITE", b"CSeq: 8 INVITE"))
    assert table.match_request(other) is None
    assert table.cancel_target(cancel_for(old)) is tx


def test_table_is_bounded_and_drops_oldest():
    table = TransactionTable(max_size=3)
    txs = [ServerTransaction(options(branch=f"z9hG4bKflood{i}"), reliable=False) for i in range(5)]
    dropped = []
    for tx in txs:
        dropped += table.add(tx)
    assert len(table) == 3
    assert dropped == txs[:2]
    assert list(table) == txs[2:]
    assert table.match_request(options(branch="z9hG4bKflood0")) is None
    assert table.match_request(options(branch="z9hG4bKflood4")) is txs[4]
    # re-adding under the same key replaces (and reports) the previous transaction
    again = ServerTransaction(options(branch="z9hG4bKflood4"), reliable=False)
    assert table.add(again) == [txs[4]]
    assert table.remove(txs[4]) is False and table.remove(again) is True
    with pytest.raises(ValueError):
        TransactionTable(max_size=0)


# --- completed non-INVITE server transactions, compact --------------------------------------------


def test_completed_table_answers_until_timer_j_then_forgets():
    table = CompletedTable(lifetime=32.0)
    key = server_key(options())
    table.add(key, (b"SIP/2.0 200 OK", "192.0.2.1", 5060), now=100.0)
    assert key in table and len(table) == 1
    assert table.get(key, now=131.9) == (b"SIP/2.0 200 OK", "192.0.2.1", 5060)
    assert table.get(key, now=132.0) is None  # timer J fired: no longer answered from here
    table.add(server_key(options(branch="z9hG4bKother")), "later", now=140.0)  # adding expires the old
    assert key not in table and len(table) == 1
    assert table.expire(now=172.0) == 1 and len(table) == 0


def test_completed_table_replaced_key_and_discard():
    table = CompletedTable(lifetime=10.0)
    key = server_key(options())
    table.add(key, "first", now=0.0)
    table.add(key, "second", now=5.0)  # the same key again (a client reusing a branch)
    assert table.expire(now=12.0) == 0  # the first entry's expiry does not remove the second
    assert table.get(key, now=12.0) == "second"
    table.discard(key)  # e.g. the transport failed resending
    assert table.get(key, now=12.0) is None and len(table) == 0
    assert table.expire(now=100.0) == 0


def test_completed_table_is_bounded():
    table = CompletedTable(lifetime=32.0, max_size=3)
    keys = [server_key(options(branch=f"z9hG4bKc{i}")) for i in range(5)]
    for i, key in enumerate(keys):
        table.add(key, i, now=float(i))
    assert len(table) == 3
    assert [table.get(k, now=5.0) for k in keys] == [None, None, 2, 3, 4]
    with pytest.raises(ValueError):
        CompletedTable(max_size=0)
    with pytest.raises(ValueError):
        CompletedTable(lifetime=0)


def test_server_key_given_by_the_caller_is_used():
    req = options()
    tx = ServerTransaction(req, reliable=False, key=server_key(req))
    assert tx.key == server_key(req) == (BRANCH, "pc33.atlanta.com", "OPTIONS")


def test_via_branch_parsing_edge_cases():
    from switchboard.sip.transaction import _parse_via

    assert _parse_via("SIP/2.0/UDP h:5060;rport;branch=z9hG4bKa ").branch == "z9hG4bKa"
    assert _parse_via("SIP/2.0/udp H : 5060 ;BRANCH=z9hG4bKb;branch=x") == ("UDP", "h:5060", "z9hG4bKb")
    assert _parse_via("SIP/2.0/UDP h;branch = z9hG4bKc;xbranch=1").branch == "z9hG4bKc"
    assert _parse_via("SIP/2.0/UDP h;received=192.0.2.1").branch == ""
