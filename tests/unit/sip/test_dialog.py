"""sip/dialog.py without sockets: dialog creation and ids, route sets, CSeq rules, target refresh,
ACK for 2xx, CANCEL, 2xx retransmission (RFC 6026), and a state machine driving a UAC and a UAS
against each other over a lossy network."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from switchboard.sip.dialog import (
    CONFIRMED,
    EARLY,
    TERMINATED,
    Dialog,
    DialogError,
    DialogTable,
    Retransmit2xx,
    UacInvite,
    UasInvite,
    build_cancel,
)
from switchboard.sip.headers import tag
from switchboard.sip.message import Message, parse, response_to
from switchboard.sip.transaction import T1, T2, CancelTimer, Send, StartTimer, Terminated, new_branch

UAS_CONTACT = "<sip:bob@192.0.2.20:5060>"


def invite(cseq: int = 1, record_route: tuple[str, ...] = ()) -> Message:
    headers = [
        ("Via", "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKinv1"),
        ("Max-Forwards", "70"),
        ("From", '"Alice" <sip:alice@a.test>;tag=alicetag'),
        ("To", "<sip:bob@b.test>"),
        ("Call-ID", "call-1@a.test"),
        ("CSeq", f"{cseq} INVITE"),
        ("Contact", "<sip:alice@192.0.2.10:5060>"),
    ]
    headers += [("Record-Route", r) for r in record_route]
    return Message(method="INVITE", uri="sip:bob@b.test", headers=headers)


def wire(msg: Message) -> Message:
    """What the peer sees: serialised and parsed again (a request the dialog layer built gets the Via the
    transport would give it, with a new branch)."""
    if msg.is_request and msg.get("Via") is None:
        msg.headers.insert(0, ("Via", f"SIP/2.0/UDP 192.0.2.99;branch={new_branch()}"))
    return parse(msg.to_bytes())


def answer(
    req: Message,
    status: int,
    to_tag: str = "bobtag",
    contact: str | None = UAS_CONTACT,
    record_route: tuple[str, ...] = (),
) -> Message:
    headers = [("Contact", contact)] if contact else []
    headers += [("Record-Route", r) for r in record_route]
    return response_to(req, status, headers=headers, to_tag=to_tag)


RR = ("<sip:p2.test;lr>", "<sip:p1.test;lr>")  # as the UAS sees them: p2 nearest to it


def test_uac_dialog_from_1xx_is_early_and_from_2xx_confirmed():
    inv = invite()
    d = Dialog.uac(inv, answer(inv, 180, record_route=RR))
    assert d.state == EARLY and d.id == ("call-1@a.test", "alicetag", "bobtag")
    assert d.route_set == ["<sip:p1.test;lr>", "<sip:p2.test;lr>"]  # reversed for the UAC
    assert d.remote_target == "sip:bob@192.0.2.20:5060" and d.local_cseq == 1 and d.remote_cseq is None
    assert Dialog.uac(inv, answer(inv, 200)).state == CONFIRMED
    with pytest.raises(DialogError):
        Dialog.uac(inv, response_to(inv, 180, to_tag=None).__class__(status=180, headers=[("To", "<sip:b@b>")]))
    with pytest.raises(DialogError):
        Dialog.uac(inv, answer(inv, 486))


def test_uas_dialog_and_in_dialog_requests_with_loose_routing():
    inv = invite(record_route=RR)
    uas = UasInvite(inv, contact=UAS_CONTACT, to_tag="bobtag")
    ringing = uas.provisional(180)
    assert uas.dialog.state == EARLY and tag(ringing.get("To")) == "bobtag"
    assert ringing.get_all("Record-Route") == list(RR)  # copied into 1xx/2xx
    ok, actions = uas.answer(200)
    assert uas.dialog.state == CONFIRMED and uas.dialog.route_set == list(RR)  # not reversed for the UAS
    assert uas.dialog.id == ("call-1@a.test", "bobtag", "alicetag") and uas.dialog.remote_cseq == 1
    assert [type(a) for a in actions] == [Send, StartTimer, StartTimer]
    bye = uas.dialog.request("BYE")
    assert bye.uri == "sip:alice@192.0.2.10:5060" and bye.get_all("Route") == list(RR)
    assert bye.cseq == (1, "BYE") and uas.dialog.request("INFO").cseq == (2, "INFO")
    assert tag(bye.get("From")) == "bobtag" and tag(bye.get("To")) == "alicetag"


def test_strict_route_puts_the_remote_target_last():
    inv = invite()
    d = Dialog.uac(inv, answer(inv, 200, record_route=("<sip:strict.test>",)))
    req = d.request("INFO")
    assert req.uri == "sip:strict.test" and req.get_all("Route") == ["<sip:bob@192.0.2.20:5060>"]


def test_remote_cseq_rule_target_refresh_and_bye():
    inv = invite(cseq=10)
    d = Dialog.uas(inv, answer(inv, 200))
    lower = Message(method="INFO", uri="sip:x", headers=[("CSeq", "9 INFO")])
    assert d.check_request(lower) == 500
    assert d.check_request(Message(method="INFO", uri="sip:x", headers=[("CSeq", "10 INFO")])) == 500
    reinvite = Message(method="INVITE", uri="sip:x", headers=[("CSeq", "11 INVITE"), ("Contact", "<sip:alice@moved>")])
    assert d.check_request(reinvite) == 0 and d.remote_target == "sip:alice@moved" and d.remote_cseq == 11
    assert d.check_request(Message(method="BYE", uri="sip:x", headers=[("CSeq", "12 BYE")])) == 0
    assert d.state == TERMINATED
    assert d.check_request(Message(method="INFO", uri="sip:x", headers=[("CSeq", "13 INFO")])) == 481
    with pytest.raises(DialogError):
        d.request("INFO")


def test_uac_target_refresh_from_2xx_and_481_terminates():
    inv = invite()
    d = Dialog.uac(inv, answer(inv, 200))
    re = d.request("INVITE")
    assert re.cseq == (2, "INVITE") and re.get("Contact") == "<sip:alice@192.0.2.10:5060>"
    d.on_response(re, answer(re, 200, contact="<sip:bob@new>"))
    assert d.remote_target == "sip:bob@new"
    info = d.request("INFO")
    d.on_response(info, answer(info, 481))
    assert d.state == TERMINATED


def test_uac_invite_acks_every_2xx_with_the_route_set_and_invite_cseq():
    inv = invite(cseq=7)
    uac = UacInvite(inv)
    assert uac.on_response(wire(answer(inv, 180, record_route=RR))) == []
    assert uac.dialog.state == EARLY
    [ack] = uac.on_response(wire(answer(inv, 200, record_route=RR)))
    assert isinstance(ack, Send) and ack.message.method == "ACK" and ack.message.cseq == (7, "ACK")
    assert ack.message.uri == "sip:bob@192.0.2.20:5060" and ack.message.get_all("Route") == list(reversed(RR))
    assert ack.message.get("Via") is None  # the transport adds a Via with a new branch
    assert uac.dialog.state == CONFIRMED
    [again] = uac.on_response(wire(answer(inv, 200, record_route=RR)))  # a retransmission: ACK again
    assert again.message.cseq == (7, "ACK")


def test_forked_early_dialogs_end_with_a_non_2xx():
    inv = invite()
    uac = UacInvite(inv)
    uac.on_response(wire(answer(inv, 180, to_tag="b1")))
    uac.on_response(wire(answer(inv, 183, to_tag="b2")))
    assert set(uac.early) == {"b1", "b2"}
    uac.on_response(wire(answer(inv, 486, to_tag="b3")))
    assert all(d.state == TERMINATED for d in uac.early.values()) and uac.final == 486


def test_cancel_only_after_a_provisional():
    inv = invite()
    uac = UacInvite(inv)
    assert uac.cancel() == []  # nothing heard yet: CANCEL waits
    [cancel] = uac.on_response(wire(response_to(inv, 100)))
    c = cancel.message
    assert c.method == "CANCEL" and c.cseq == (1, "CANCEL") and c.uri == inv.uri
    assert c.get("Via") == inv.get("Via") and c.get("To") == inv.get("To") and c.get("From") == inv.get("From")
    assert uac.cancel() == []  # once
    done = UacInvite(inv)
    done.on_response(wire(answer(inv, 200)))
    assert done.cancel() == []  # after a final response: moot
    assert build_cancel(inv).cseq == (1, "CANCEL")


def test_uas_cancel_gives_487_and_ends_the_early_dialog():
    inv = invite()
    uas = UasInvite(inv, contact=UAS_CONTACT)
    uas.provisional(180)
    resp = uas.cancelled()
    assert resp.status == 487 and uas.dialog.state == TERMINATED and uas.cancelled() is None


def test_2xx_retransmission_doubles_to_t2_and_gives_up_at_64_t1():
    inv = invite()
    r = Retransmit2xx(answer(inv, 200))
    assert r.start() == [Send(r.response), StartTimer("2xx", T1), StartTimer("2xx-timeout", 64 * T1)]
    delays = []
    for _ in range(6):
        send, timer = r.on_timer("2xx")
        delays.append(timer.delay)
    assert delays == [2 * T1, 4 * T1, T2, T2, T2, T2]
    assert r.on_timer("2xx-timeout") == [CancelTimer("2xx"), Terminated("timeout")]
    assert r.on_timer("2xx") == [] and not r.acked
    r2 = Retransmit2xx(answer(inv, 200))
    assert r2.on_ack(Message(method="ACK", uri="x", headers=[("CSeq", "2 ACK")])) == []  # another INVITE's
    assert Terminated("completed") in r2.on_ack(Message(method="ACK", uri="x", headers=[("CSeq", "1 ACK")]))
    assert r2.start(reliable=True) == [Send(r2.response), StartTimer("2xx-timeout", 64 * T1)]


def test_dialog_table():
    table = DialogTable()
    inv = invite()
    uas = UasInvite(inv, contact=UAS_CONTACT, to_tag="bobtag")
    uas.answer(200)
    table.add(uas.dialog)
    table.expect_ack(uas)
    d = uas.dialog
    info = Message(
        method="INFO",
        uri="sip:x",
        headers=[
            ("From", "<sip:alice@a.test>;tag=alicetag"),
            ("To", "<sip:bob@b.test>;tag=bobtag"),
            ("Call-ID", "call-1@a.test"),
            ("CSeq", "2 INFO"),
        ],
    )
    assert table.match_request(info) == (d, 0)
    info.set("To", "<sip:bob@b.test>;tag=other")
    assert table.match_request(info) == (None, 481)
    ack = Message(
        method="ACK",
        uri="sip:x",
        headers=[
            ("From", "<sip:alice@a.test>;tag=alicetag"),
            ("To", "<sip:bob@b.test>;tag=bobtag"),
            ("Call-ID", "call-1@a.test"),
            ("CSeq", "1 ACK"),
        ],
    )
    owner, actions = table.on_ack(ack)
    assert owner is uas and uas.retransmit.acked and Terminated("completed") in actions
    assert table.on_ack(ack) == (None, []) and table.stats["stray_acks"] == 1
    assert len(table) == 1
    table.remove(d)
    assert table.get(d.id) is None


# --- the state machine ------------------------------------------------------------------------------------


def _gone(d: Dialog | None) -> str:
    return "gone" if d is None or d.state == TERMINATED else d.state


class UacUasPair(RuleBasedStateMachine):
    """A UAC and a UAS TU over a network that loses, duplicates and reorders what the TUs send end to end
    (1xx, 2xx, ACK). Non-2xx finals, CANCEL, BYE and re-INVITE requests travel in transactions, which
    retransmit until they get through, so they are delivered (the transaction layer has its own tests)."""

    def __init__(self):
        super().__init__()
        self.now = 0.0
        inv = invite(record_route=RR)
        self.uac_inv = UacInvite(invite())
        self.uac_invites = {1: self.uac_inv}  # CSeq -> UacInvite (2xx retransmissions find theirs)
        self.uas_inv = UasInvite(wire(inv), contact=UAS_CONTACT, to_tag="bobtag")
        self.uas_table = DialogTable()
        self.to_uac: list[Message] = []
        self.to_uas: list[Message] = []
        self.timers: dict[str, float] = {}  # the UAS TU's 2xx timers: name -> due
        self.retransmit_started: float | None = None
        self.uac_cseqs: list[int] = [1]
        self.probe_cseq = 1000

    # -- helpers
    @property
    def uac_dialog(self) -> Dialog | None:
        return self.uac_inv.dialog if self.uac_inv.dialog is not None else None

    def _uas_run(self, actions) -> None:
        for a in actions:
            if isinstance(a, Send):
                self.to_uac.append(wire(a.message))
            elif isinstance(a, StartTimer):
                self.timers[a.name] = self.now + a.delay
            elif isinstance(a, CancelTimer):
                self.timers.pop(a.name, None)
            elif isinstance(a, Terminated):
                self.timers.clear()
                if a.reason == "timeout":  # RFC 3261 §13.3.1.4: no ACK: the UAS TU ends the dialog with BYE
                    # the network forgets what it still held of this answer: a datagram does not live the
                    # 64*T1 (32 s) this took. (One that did would give the UAC a dialog the UAS no longer
                    # has, which SIP itself cannot prevent: its first in-dialog request then gets 481.)
                    self.to_uac = [m for m in self.to_uac if not (m.status and 200 <= m.status < 300)]
                    self._uas_bye()

    def _uac_run(self, actions) -> None:
        for a in actions:
            m = a.message
            if m.method == "ACK":
                self.to_uas.append(wire(m))
            elif m.method == "CANCEL":
                self._cancel_at_uas()

    def _cancel_at_uas(self) -> None:
        if self.uas_inv.dialog is None or self.uas_inv.dialog.state != CONFIRMED:
            resp = self.uas_inv.cancelled()  # 200 to the CANCEL, 487 to the INVITE (reliable)
            if resp is not None:
                self._uac_run(self._uac_for(resp).on_response(wire(resp)))

    def _uac_for(self, resp: Message) -> UacInvite:
        return self.uac_invites[resp.cseq[0]]

    def _uac_dialog_for(self, from_tag: str) -> Dialog | None:
        d = self.uac_invites[1].early.get(from_tag)
        return d

    def _uas_bye(self) -> None:
        d = self.uas_inv.dialog
        if d is None or d.state == TERMINATED:
            return
        bye = wire(d.request("BYE"))
        uac_d = self._uac_dialog_for(tag(bye.get("From")))
        status = 481 if uac_d is None else (uac_d.check_request(bye) or 200)
        d.on_response(bye, response_to(bye, status))
        assert d.state == TERMINATED

    def _uas_quiet(self) -> bool:
        return not self.timers

    # -- the UAS answers
    @precondition(lambda self: self.uas_inv.final is None)
    @rule(status=st.sampled_from([180, 183]))
    def provisional(self, status):
        self.to_uac.append(wire(self.uas_inv.provisional(status)))

    @precondition(lambda self: self.uas_inv.final is None)
    @rule()
    def answer_ok(self):
        _, actions = self.uas_inv.answer(200)
        self.uas_table.add(self.uas_inv.dialog)
        self.uas_table.expect_ack(self.uas_inv)
        self.retransmit_started = self.now
        self._uas_run(actions)

    @precondition(lambda self: self.uas_inv.final is None)
    @rule(status=st.sampled_from([486, 603, 480]))
    def answer_error(self, status):
        resp, _ = self.uas_inv.answer(status)
        self._uac_run(self._uac_for(resp).on_response(wire(resp)))  # a non-2xx final is the transaction's

    # -- the UAC
    @precondition(lambda self: self.uac_invites[1].final is None)
    @rule()
    def cancel(self):
        self._uac_run(self.uac_invites[1].cancel())

    @precondition(
        lambda self: (
            self.uac_dialog is not None
            and self.uac_dialog.state == CONFIRMED
            and self.uac_inv.final is not None
            and self._uas_quiet()
            and self.uas_inv.dialog is not None
            and self.uas_inv.dialog.state == CONFIRMED
        )
    )
    @rule()
    def reinvite(self):
        d = self.uac_dialog
        req = d.request("INVITE")
        self.uac_cseqs.append(req.cseq[0])
        req.headers.insert(0, ("Via", f"SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKre{req.cseq[0]}"))
        status = self.uas_inv.dialog.check_request(wire(req))
        assert status == 0
        self.uac_inv = self.uac_invites[req.cseq[0]] = UacInvite(req, d)
        self.uas_inv = UasInvite(wire(req), contact=UAS_CONTACT, dialog=self.uas_inv.dialog)

    @precondition(
        lambda self: (
            self.uac_dialog is not None and self.uac_dialog.state == CONFIRMED and self.uac_inv.final is not None
        )
    )
    @rule()
    def uac_bye(self):
        d = self.uac_dialog
        bye = d.request("BYE")
        self.uac_cseqs.append(bye.cseq[0])
        _, status = self.uas_table.match_request(
            wire(bye.__class__(method=bye.method, uri=bye.uri, headers=list(bye.headers)))
        )
        d.on_response(bye, response_to(bye, status or 200))
        assert d.state == TERMINATED

    # -- the network
    @precondition(lambda self: self.to_uac)
    @rule(i=st.integers(0, 50), dup=st.booleans())
    def deliver_to_uac(self, i, dup):
        msg = self.to_uac[i % len(self.to_uac)]
        if not dup:
            self.to_uac.remove(msg)
        self._uac_run(self._uac_for(msg).on_response(msg))

    @precondition(lambda self: self.to_uas)
    @rule(i=st.integers(0, 50), dup=st.booleans())
    def deliver_to_uas(self, i, dup):
        ack = self.to_uas[i % len(self.to_uas)]
        if not dup:
            self.to_uas.remove(ack)
        owner, actions = self.uas_table.on_ack(ack)
        if owner is self.uas_inv:
            self._uas_run(actions)

    @precondition(lambda self: self.to_uac or self.to_uas)
    @rule(i=st.integers(0, 50), to_uac=st.booleans())
    def lose(self, i, to_uac):
        queue = self.to_uac if (to_uac and self.to_uac) or not self.to_uas else self.to_uas
        queue.pop(i % len(queue))

    @precondition(lambda self: self.timers)
    @rule()
    def tick(self):
        name, due = min(self.timers.items(), key=lambda kv: kv[1])
        self.now = max(self.now, due)
        del self.timers[name]
        self._uas_run(self.uas_inv.on_timer(name))

    @rule()
    def request_outside_any_dialog(self):
        """An in-dialog request (To tag) for a dialog the UAS does not have: 481, whatever the state."""
        self.probe_cseq += 1
        stray = Message(
            method="INFO",
            uri="sip:x",
            headers=[
                ("From", "<sip:alice@a.test>;tag=alicetag"),
                ("To", "<sip:bob@b.test>;tag=not-ours"),
                ("Call-ID", "call-1@a.test"),
                ("CSeq", f"{self.probe_cseq} INFO"),
            ],
        )
        assert self.uas_table.match_request(stray) == (None, 481)

    # -- invariants
    @invariant()
    def cseq_monotonic(self):
        assert self.uac_cseqs == sorted(set(self.uac_cseqs))
        d = self.uas_inv.dialog
        if d is not None and d.remote_cseq is not None:
            assert d.remote_cseq <= self.uac_cseqs[-1]

    @invariant()
    def no_2xx_left_unacked(self):
        r = self.uas_inv.retransmit
        if r is not None and not r.done:
            assert "2xx-timeout" in self.timers  # it still ends, by ACK or by the budget
            assert self.now - self.retransmit_started <= 64 * T1
        if r is not None and r.done and not r.acked:
            assert self.uas_inv.dialog.state == TERMINATED  # given up: BYE went

    @invariant()
    def sides_agree_when_quiet(self):
        if self.to_uac or self.to_uas or self.timers or self.uac_invites[1].final is None:
            return
        if self.uac_inv.final is None:
            return
        assert _gone(self.uac_dialog) == _gone(self.uas_inv.dialog), (self.uac_dialog, self.uas_inv.dialog)

    @invariant()
    def terminated_dialog_answers_481(self):
        d = self.uas_inv.dialog
        if d is None or d.state != TERMINATED:
            return
        self.probe_cseq += 1
        probe = Message(
            method="INFO",
            uri="sip:x",
            headers=[
                ("From", f"<sip:alice@a.test>;tag={d.remote_tag}"),
                ("To", f"<sip:bob@b.test>;tag={d.local_tag}"),
                ("Call-ID", d.call_id),
                ("CSeq", f"{self.probe_cseq} INFO"),
            ],
        )
        table = DialogTable()
        table.add(d)
        assert table.match_request(probe)[1] == 481
        assert self.uas_table.match_request(probe)[1] == 481


UacUasPair.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
TestUacUasPair = UacUasPair.TestCase
