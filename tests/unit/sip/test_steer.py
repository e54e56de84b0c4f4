"""sip/steer.py: which SIP worker process handles a datagram."""

from __future__ import annotations

import zlib

from switchboard.sip.steer import LOCAL, aor_owner, owner


def request(method: str, to: str = "To: <sip:alice@example.com>", extra: str = "") -> bytes:
    return (
        f"{method} sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx\r\n"
        f"From: <sip:alice@example.com>;tag=1\r\n{to}\r\nCall-ID: c\r\nCSeq: 1 {method}\r\n{extra}"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def test_register_goes_to_its_aors_owner_whatever_the_rest_says():
    for workers in (2, 3, 8):
        want = zlib.crc32(b"alice") % workers
        assert owner(request("REGISTER"), workers) == want == aor_owner("alice", workers)
        assert owner(request("REGISTER", "t: <sips:alice@example.com>;tag=9"), workers) == want  # compact, sips
        assert owner(request("REGISTER", "TO :sip:alice@example.com"), workers) == want
        auth = 'Authorization: Digest username="bob", uri="sip:bob@example.com"\r\n'
        assert owner(request("REGISTER", extra=auth), workers) == want  # other headers do not count
        cut = request("REGISTER").replace(b"\r\nContent-Length: 0\r\n\r\n", b"")
        assert owner(cut, workers) == want  # no empty line after the headers: all of it is searched
        body = "\r\n\r\nTo: <sip:mallory@example.com>"  # a To in the body does not count
        assert owner(request("REGISTER", "X-No-To: 1") + body.encode(), workers) == LOCAL
    names = [f"u{i}" for i in range(200)]
    assert {aor_owner(n, 4) for n in names} == {0, 1, 2, 3}  # spread over every worker


def test_everything_else_goes_to_the_main_process_or_stays():
    assert owner(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP x\r\n\r\n", 2) == 0  # responses: our requests
    assert owner(request("INVITE"), 2) == 0
    assert owner(request("BYE", "To: <sip:alice@example.com>;tag=2"), 2) == 0
    assert owner(request("OPTIONS"), 2) == LOCAL  # keep-alive / qualify of us: answered where it is
    assert owner(request("OPTIONS", "To: <sip:alice@example.com>;tag=2"), 2) == 0  # in a dialog
    assert owner(request("REGISTER", "X-No-To: 1"), 2) == LOCAL  # its 400 needs no state
    assert owner(b"garbage", 2) == LOCAL
    assert owner(request("REGISTER"), 1) == LOCAL  # one process: nothing to steer


def test_one_peers_datagrams_are_spread_over_every_process_of_the_port():
    """The kernel's hash would put one peer (one address and port) in one socket of the group;
    spread_randomly makes each datagram's socket random (real sockets on the loopback)."""
    import select
    import socket

    from switchboard.sip.engine import spread_randomly

    group = []
    for _ in range(3):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(("127.0.0.1", group[0].getsockname()[1] if group else 0))
        s.setblocking(False)
        group.append(s)
    assert spread_randomly(group[0], 3)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    counts = [0, 0, 0]
    try:
        for i in range(300):  # one at a time: no receive buffer overflows, whichever way they go
            peer.sendto(b"OPTIONS %d" % i, group[0].getsockname())
            ready, _, _ = select.select(group, [], [], 2)
            assert len(ready) == 1, f"datagram {i} lost or duplicated: {counts}"
            ready[0].recv(100)
            counts[group.index(ready[0])] += 1
    finally:
        for s in (*group, peer):
            s.close()
    assert min(counts) > 50, counts  # ~100 each; by the hash it would be 300, 0, 0
