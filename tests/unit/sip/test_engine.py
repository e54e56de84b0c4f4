"""The asyncio engine over real UDP on loopback: non-INVITE server transactions (RFC 3261 §17.2.2,
figure 8) as the engine keeps them — a request the application answers at once goes straight to
the completed state (`SipEngine.completed`), one it answers later (`Deferred`) waits in trying —
and what a retransmitted request gets in each case."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

import pytest

from switchboard.sip.engine import Deferred, SipEngine, options_headers, options_ok
from switchboard.sip.message import Message, parse, response_to


def options(branch: str = "z9hG4bKengine1", cseq: int = 1) -> bytes:
    return (
        "OPTIONS sip:engine.test SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5999;branch={branch};rport\r\n"
        "From: <sip:tester@engine.test>;tag=abc\r\nTo: <sip:engine.test>\r\n"
        f"Call-ID: {branch}@engine.test\r\nCSeq: {cseq} OPTIONS\r\nMax-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


class Peer:
    """A UDP socket talking to the engine."""

    def __init__(self, port: int):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = port

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, ("127.0.0.1", self.port))

    async def recv(self, timeout: float = 2.0) -> bytes | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return self.sock.recv(65535)
            except BlockingIOError:
                await asyncio.sleep(0.005)
        return None

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
async def setup():
    calls: list[Message] = []
    answers: dict[str, object] = {}

    def handler(req: Message, source):
        calls.append(req)
        answer = answers.get(req.method or "")
        return answer(req) if callable(answer) else answer

    async with started(SipEngine("127.0.0.1", 0, handler=handler)) as (eng, peer):
        yield eng, peer, calls, answers


@contextlib.asynccontextmanager
async def started(eng: SipEngine):
    """The engine listening, and a peer talking to it."""
    await eng.start()
    peer = Peer(eng.port)
    try:
        yield eng, peer
    finally:
        peer.close()
        await eng.stop()


async def test_a_request_answered_at_once_is_completed_and_retransmissions_get_the_same_bytes(setup):
    eng, peer, calls, answers = setup
    answers["OPTIONS"] = options_ok
    peer.send(options())
    first = await peer.recv()
    assert parse(first).status == 200
    assert len(eng.table) == 0 and len(eng.completed) == 1  # no transaction object: the completed state
    peer.send(options())  # a retransmission
    assert await peer.recv() == first
    assert len(calls) == 1 and eng.stats["retransmissions"] == 1
    peer.send(options(branch="z9hG4bKengine2"))  # a new transaction
    assert parse(await peer.recv()).status == 200 and len(calls) == 2


async def test_timer_j_ends_the_completed_state(setup, monkeypatch):
    eng, peer, calls, answers = setup
    answers["OPTIONS"] = options_ok
    now = [1000.0]
    eng.clock = lambda: now[0]
    peer.send(options())
    first = await peer.recv()
    now[0] += eng.completed.lifetime - 0.001  # just before timer J (64*T1)
    peer.send(options())
    assert await peer.recv() == first and len(calls) == 1
    now[0] += 0.002  # timer J fired: the same request is a new transaction
    peer.send(options())
    again = await peer.recv()
    assert again is not None and len(calls) == 2
    eng.completed.expire(now[0] + eng.completed.lifetime)
    assert len(eng.completed) == 0


async def test_a_request_answered_later_waits_in_trying_and_absorbs_retransmissions(setup):
    eng, peer, calls, answers = setup
    pending = Deferred()
    answers["OPTIONS"] = pending
    peer.send(options())
    await asyncio.sleep(0.05)
    assert len(eng.table) == 1 and len(calls) == 1
    peer.send(options())  # trying: nothing sent yet, absorbed
    assert await peer.recv(timeout=0.2) is None
    pending.resolve(options_ok(calls[0]))
    first = await peer.recv()
    assert parse(first).status == 200
    assert len(eng.table) == 0 and len(eng.completed) == 1
    peer.send(options())
    assert await peer.recv() == first and len(calls) == 1


async def test_a_provisional_answer_keeps_the_transaction(setup):
    eng, peer, calls, answers = setup
    answers["OPTIONS"] = lambda req: response_to(req, 100)
    peer.send(options())
    assert parse(await peer.recv()).status == 100
    assert len(eng.table) == 1
    peer.send(options())  # proceeding: the 100 again
    assert parse(await peer.recv()).status == 100 and len(calls) == 1


async def test_failures_are_answered_500(setup):
    eng, peer, calls, answers = setup
    failing = Deferred()
    answers["OPTIONS"] = failing
    peer.send(options())
    await asyncio.sleep(0.05)
    failing.fail(RuntimeError("database down"))
    assert parse(await peer.recv()).status == 500

    def broken(req):
        raise ValueError("bug")

    answers["OPTIONS"] = broken
    peer.send(options(branch="z9hG4bKengine3"))
    assert parse(await peer.recv()).status == 500


def test_deferred_calls_back_once_whenever_it_is_settled():
    got = []
    early = Deferred()
    early.resolve(None)
    early.then(lambda resp, exc: got.append(("early", resp, exc)))
    late = Deferred()
    late.then(lambda resp, exc: got.append(("late", resp, exc)))
    assert not late.done
    err = RuntimeError("x")
    late.fail(err)
    late.resolve(None)  # settled already: ignored
    assert got == [("early", None, None), ("late", None, err)] and late.done


def invite_bytes(method: str = "INVITE", branch: str = "z9hG4bKinv") -> bytes:
    return (
        f"{method} sip:bob@engine.test SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5999;branch={branch};rport\r\n"
        "From: <sip:alice@engine.test>;tag=abc\r\nTo: <sip:bob@engine.test>\r\n"
        f"Call-ID: inv@engine.test\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\n"
        "Contact: <sip:alice@127.0.0.1:5999>\r\nContent-Length: 0\r\n\r\n"
    ).encode()


async def test_invite_gets_100_then_the_handlers_answer_and_the_ack_is_absorbed(setup):
    eng, peer, calls, answers = setup
    answers["INVITE"] = lambda req: response_to(req, 501)
    peer.send(invite_bytes())
    assert parse(await peer.recv()).status == 100
    final = parse(await peer.recv())
    assert final.status == 501 and len(eng.table) == 1  # completed: timer G retransmits until the ACK
    ack = invite_bytes("ACK").replace(b"To: <sip:bob@engine.test>", f"To: {final.get('To')}".encode())
    peer.send(ack)
    await asyncio.sleep(0.05)
    assert eng.table and next(iter(eng.table)).state == "confirmed" and len(calls) == 1


async def test_cancel_of_a_pending_invite_is_200_and_the_invite_487(setup):
    eng, peer, calls, answers = setup
    pending = Deferred()
    answers["INVITE"] = pending
    peer.send(invite_bytes())
    assert parse(await peer.recv()).status == 100
    peer.send(invite_bytes("CANCEL"))
    got = sorted([parse(await peer.recv()), parse(await peer.recv())], key=lambda m: m.status)
    assert [(m.status, m.cseq[1]) for m in got] == [(200, "CANCEL"), (487, "INVITE")]
    pending.resolve(response_to(calls[0], 200))  # too late: nothing more is sent
    assert await peer.recv(timeout=0.2) is None
    peer.send(invite_bytes("CANCEL", branch="z9hG4bKother"))
    assert parse(await peer.recv()).status == 481


class OptionsApp:
    """A handler that answers every OPTIONS outside a dialog with 200 and these headers (as SipApp does):
    the engine then answers those itself, statelessly (RFC 3261 §8.2.7)."""

    options_headers = options_headers("OPTIONS, REGISTER")

    def __init__(self):
        self.calls: list[Message] = []

    def __call__(self, req: Message, source):
        self.calls.append(req)
        return response_to(req, 200, headers=self.options_headers)


@pytest.fixture
async def stateless():
    app, loaded = OptionsApp(), [True]
    eng = SipEngine("127.0.0.1", 0, handler=app, dialogs=True, available=lambda: loaded[0])
    async with started(eng) as (eng, peer):
        yield eng, peer, app, loaded


async def test_an_options_outside_a_dialog_is_answered_statelessly(stateless):
    eng, peer, app, _ = stateless
    peer.send(options())
    first = await peer.recv()
    resp = parse(first)
    assert resp.status == 200 and resp.get("Allow") == "OPTIONS, REGISTER" and ";tag=" in resp.get("To")
    assert f"rport={peer.sock.getsockname()[1]}" in resp.get("Via")
    # no handler call, no transaction, no completed state: a retransmission is answered again, alike
    assert app.calls == [] and len(eng.table) == 0 and len(eng.completed) == 0
    peer.send(options())
    assert await peer.recv() == first
    assert eng.stats["stateless"] == 2 and eng.stats["received"] == 2 and eng.stats["sent"] == 2


async def test_what_the_stateless_answer_does_not_take_goes_the_usual_way(stateless):
    eng, peer, app, loaded = stateless
    # in a dialog (a To tag): the dialog layer's answer, 481 for a dialog it does not know
    peer.send(options().replace(b"To: <sip:engine.test>", b"To: <sip:engine.test>;tag=nodialog"))
    assert parse(await peer.recv()).status == 481
    # malformed: 400, as for any request
    peer.send(options().replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 REGISTER"))
    assert (await peer.recv()).startswith(b"SIP/2.0 400 ")
    # the SIP stack unloaded: 503, as for any request
    loaded[0] = False
    peer.send(options(branch="z9hG4bKunloaded"))
    assert parse(await peer.recv()).status == 503
    assert eng.stats["stateless"] == 0 and app.calls == []
    # a handler without options_headers (the tests above) gets every OPTIONS itself
    assert SipEngine("127.0.0.1", 0, handler=lambda req, source: None).stateless_options is None


def register_bytes(branch: str = "z9hG4bKreg1", authorization: str | None = None) -> bytes:
    auth = f"Authorization: {authorization}\r\n" if authorization else ""
    return (
        "REGISTER sip:engine.test SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5999;branch={branch};rport\r\n"
        "From: <sip:alice@engine.test>;tag=r1\r\nTo: <sip:alice@engine.test>\r\n"
        f"Call-ID: reg@engine.test\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@127.0.0.1:5999>\r\n{auth}"
        "Content-Length: 0\r\n\r\n"
    ).encode()


class ChallengingApp(OptionsApp):
    """A handler with a `stateless_challenge` (as SipApp has, the registrar's): a 401 for a REGISTER
    without credentials, None (decline) for one whose From says so; what it declines reaches __call__."""

    def __init__(self):
        super().__init__()
        self.challenged: list[tuple[Message, str]] = []

    def stateless_challenge(self, req: Message, source, to_tag: str):
        if "decline" in req.get("Contact"):
            return None
        if "broken" in req.get("Contact"):
            raise RuntimeError("a bug in the challenge")
        self.challenged.append((req, to_tag))
        return response_to(req, 401, headers=[("WWW-Authenticate", 'Digest realm="t", nonce="n"')], to_tag=to_tag)


@pytest.fixture
async def challenging():
    app, loaded = ChallengingApp(), [True]
    eng = SipEngine("127.0.0.1", 0, handler=app, available=lambda: loaded[0])
    async with started(eng) as (eng, peer):
        yield eng, peer, app, loaded


async def test_a_register_without_credentials_is_challenged_statelessly(challenging):
    """RFC 3261 §8.2.7: the handler's challenge goes out with no handler call, no transaction and nothing
    kept for timer J; a retransmission is challenged again with the same To tag (a hash of the request)."""
    eng, peer, app, _ = challenging
    peer.send(register_bytes())
    first = parse(await peer.recv())
    assert first.status == 401 and first.get("WWW-Authenticate") == 'Digest realm="t", nonce="n"'
    assert f"rport={peer.sock.getsockname()[1]};received=127.0.0.1" in first.get("Via")  # as receive rewrites it
    req, tag = app.challenged[0]
    assert first.get("To") == f"<sip:alice@engine.test>;tag={tag}" and req.method == "REGISTER"
    assert app.calls == [] and len(eng.table) == 0 and len(eng.completed) == 0
    peer.send(register_bytes())
    again = parse(await peer.recv())
    assert again.get("To") == first.get("To") and eng.stats["stateless"] == 2 and len(eng.completed) == 0
    peer.send(register_bytes(branch="z9hG4bKreg2"))  # another request: another tag
    assert parse(await peer.recv()).get("To") != first.get("To")


class HeadersApp(ChallengingApp):
    """ChallengingApp with the challenge's headers alone too (as SipApp has, the registrar's
    `challenge_headers`): a plain request's 401 is written from them, without a Message."""

    def __init__(self):
        super().__init__()
        self.heads: list[str] = []

    def challenge_headers(self, to: str, source):
        if "decline" in to:
            return None
        if "broken" in to:
            raise RuntimeError("a bug in the challenge")
        self.heads.append(to)
        return [("WWW-Authenticate", 'Digest realm="t", nonce="n"')]


async def test_a_plain_register_is_challenged_from_the_headers_alone():
    """The 401 of a plain REGISTER is written from `challenge_headers` (what `stateless_challenge` would
    send, tag included: tests/unit/sip/test_endpoint.py); one the plain path does not take (two Vias) goes
    through `stateless_challenge`; one the handler declines, or whose challenge fails (logged), is the
    handler's, statefully."""
    app = HeadersApp()
    async with started(SipEngine("127.0.0.1", 0, handler=app)) as (eng, peer):
        peer.send(register_bytes())
        first = parse(await peer.recv())
        assert first.status == 401 and first.get("WWW-Authenticate") == 'Digest realm="t", nonce="n"'
        assert f"rport={peer.sock.getsockname()[1]};received=127.0.0.1" in first.get("Via")
        assert app.heads == ["<sip:alice@engine.test>"] and app.challenged == [] and app.calls == []
        peer.send(register_bytes())  # a retransmission: the same tag
        assert parse(await peer.recv()).get("To") == first.get("To") and len(eng.completed) == 0
        two_vias = register_bytes("z9hG4bKtwo").replace(b"Via:", b"Via: SIP/2.0/UDP proxy.test;branch=z9hG4bKp\r\nVia:")
        peer.send(two_vias)
        other = parse(await peer.recv())
        assert other.status == 401 and len(other.get_all("Via")) == 2 and len(app.challenged) == 1
        assert other.get("To") == f"<sip:alice@engine.test>;tag={app.challenged[0][1]}"
        for word in ("decline", "broken"):
            peer.send(register_bytes(f"z9hG4bK{word}").replace(b"To: <sip:alice", f"To: <sip:{word}".encode()))
            assert parse(await peer.recv()).status == 200
        assert len(app.calls) == 2 and eng.stats["stateless"] == 3 and len(app.heads) == 2


async def test_a_register_the_challenge_does_not_take_goes_the_usual_way(challenging):
    eng, peer, app, loaded = challenging
    # with credentials (whatever the letter case of the name): the handler, statefully
    for name in ("Authorization", "authorization", "AUTHORIZATION :"):
        auth = register_bytes(branch=f"z9hG4bK{len(name)}{name[:2]}", authorization='Digest username="a"')
        peer.send(auth.replace(b"Authorization:", name.encode() + (b"" if name.endswith(":") else b":")))
        assert parse(await peer.recv()).status == 200
    # declined by the handler, or its challenge failed (logged): the handler, statefully (its answer is
    # kept for retransmissions)
    peer.send(register_bytes(branch="z9hG4bKdecline").replace(b"127.0.0.1:5999>", b"127.0.0.1:5999;decline>"))
    assert parse(await peer.recv()).status == 200 and len(eng.completed) == 4
    peer.send(register_bytes(branch="z9hG4bKbroken").replace(b"127.0.0.1:5999>", b"127.0.0.1:5999;broken>"))
    assert parse(await peer.recv()).status == 200 and len(eng.completed) == 5
    # malformed: 400, as for any request
    peer.send(register_bytes(branch="z9hG4bKbad").replace(b"CSeq: 1 REGISTER", b"CSeq: 1 OPTIONS"))
    assert (await peer.recv()).startswith(b"SIP/2.0 400 ")
    # the SIP stack unloaded: 503, as for any request
    loaded[0] = False
    peer.send(register_bytes(branch="z9hG4bKunloaded"))
    assert parse(await peer.recv()).status == 503
    assert app.challenged == [] and eng.stats["stateless"] == 0 and len(app.calls) == 5
