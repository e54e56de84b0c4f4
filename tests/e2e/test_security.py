"""Reliability and security suite (issue 11), against real `serve` processes with the default limits:

- a SIP username scan gets answers that do not tell the one real account from the others, also while
  the source is banned;
- 2,000 idle TCP connections from one source stay under the per-source cap (the server's open file
  count with them) while UDP, TCP from another address and HTTP keep answering; idle connections are
  closed, one a registration is bound to is kept; a message over 64 KiB gets 513 and the close;
- a login brute force with a new `X-Forwarded-For` per request is throttled (the header is not
  believed unless the peer is a listed proxy; where it is, the per-account limit still holds);
- a right password from the attacker's address still works for a user not under attack, in spear
  and kazoo, and for SIP; bans are listed and lifted by an admin through jade.

Bounded: each loop has a count and every socket a timeout."""

from __future__ import annotations

import os
import re
import resource
import socket
import time

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, make_server
from tests.sip_peers import Jade, SipMessage, SipUdpClient, pjsip_account, wait_for

# the defaults of config.py, restated: conftest's servers lift the HTTP limits for the other suites
DEFAULT_LIMITS = {
    "SWITCHBOARD_SIP_AUTH_FAILURES_PER_MINUTE": "30",
    "SWITCHBOARD_SIP_AUTH_SOURCE_FAILURES_PER_MINUTE": "100",
    "SWITCHBOARD_SIP_AUTH_ACCOUNT_FAILURES_PER_MINUTE": "100",
    "SWITCHBOARD_AUTH_FAILURES_PER_MINUTE": "20",
    "SWITCHBOARD_AUTH_SOURCE_FAILURES_PER_MINUTE": "100",
    "SWITCHBOARD_AUTH_ACCOUNT_FAILURES_PER_MINUTE": "100",
}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """A server with the default limits, but idle TCP connections closed after 2 s."""
    tmp = tmp_path_factory.mktemp("security")
    server, _ = make_server("sqlite", tmp, SWITCHBOARD_SIP_TCP_IDLE_SECONDS="2", **DEFAULT_LIMITS)
    server.start()
    jade = Jade(server.url, "admin", ADMIN_PASSWORD)
    jade.put_pjsip(
        pjsip_account("realone", "realone-pass", algorithms=None)
        + pjsip_account("victim", "victim-pass", algorithms=None)
        + pjsip_account("bystander", "bystander-pass", algorithms=None)
        + pjsip_account("tcpphone", None)
    )
    yield server
    jade.close()
    code = server.stop()
    log = server.log()
    assert code == 0, f"serve did not stop cleanly ({code})"
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def jade(srv):
    with Jade(srv.url, "admin", ADMIN_PASSWORD) as j:
        yield j


def lift_all(jade: Jade) -> None:
    r = jade.call("DELETE", "/admin/security/bans")
    assert r.status_code == 200, r.text


def shape(resp: SipMessage) -> tuple:
    """All a REGISTER's answer could tell a scanner: status, reason, header names and challenge
    parameters (nonce and opaque values aside, which are fresh for every answer)."""
    challenges = [re.sub(r'(nonce|opaque)="[^"]*"', r'\1=""', c) for c in resp.get_all("WWW-Authenticate")]
    return resp.status, resp.reason, tuple(sorted({n.lower() for n, _ in resp.headers} - {"date"})), tuple(challenges)


# ---- SIP: no account enumeration ----------------------------------------------------------------------
def test_a_username_scan_cannot_tell_the_real_account(srv, jade):
    names = [f"scan{i:03d}" for i in range(40)]
    names.insert(17, "realone")
    with SipUdpClient(srv.sip_port) as c:
        first = {n: shape(c.register(n, None)) for n in names}
        assert len(set(first.values())) == 1, first  # the same challenge for every name
        assert first["realone"][0] == 401
        lift_all(jade)
        guessed = {n: shape(c.register(n, "guess-1")) for n in names}
        assert len(set(guessed.values())) == 1, guessed  # the same refusal after the digest
        assert guessed["realone"][:2] == (403, "Forbidden")
    lift_all(jade)


def test_while_banned_known_and_unknown_names_are_answered_alike(srv, jade):
    with SipUdpClient(srv.sip_port) as c:
        for i in range(100):  # the per-source limit (100 failures a minute over any names)
            c.register(f"spray{i}", "guess")
        banned_known, banned_unknown = c.register("realone", None), c.register("nobody-at-all", None)
        assert banned_known.status == 403 and not banned_known.get_all("WWW-Authenticate"), str(banned_known)
        assert shape(banned_known) == shape(banned_unknown)
        listed = jade.get("/admin/security/bans?protocol=sip")["list"]
        assert any(b["kind"] == "source" and b["source"] == "127.0.0.1" for b in listed), listed
    lift_all(jade)
    with SipUdpClient(srv.sip_port) as c:
        assert c.register("realone", "realone-pass").status == 200


def test_sip_bans_hit_the_guessed_account_only_and_an_admin_lifts_them(srv, jade):
    with SipUdpClient(srv.sip_port) as c:
        c.register("bystander", "bystander-pass", expires=0)  # it has logged in from here before
        for _ in range(30):  # the per (source, account) limit
            assert c.register("victim", "wrong").status == 403
        assert c.register("victim", "victim-pass").status == 403  # banned here, even the right password
        assert c.register("bystander", "bystander-pass", expires=0).status == 200  # same address, not attacked
        with SipUdpClient(srv.sip_port) as other:  # a stranger's name from the same address: not banned either
            assert other.register("realone", "realone-pass", expires=0).status == 200
        (ban,) = [b for b in jade.get("/admin/security/bans?protocol=sip")["list"] if b["account"] == "victim"]
        assert ban["kind"] == "pair" and ban["source"] == "127.0.0.1" and ban["failures"] == 30, ban
        assert 0 < ban["seconds_left"] <= 300
        r = jade.call("DELETE", "/admin/security/bans", params={"protocol": "sip", "account": "victim"})
        assert r.status_code == 200 and r.json()["result"]["lifted"] == 1, r.text
        assert c.register("victim", "victim-pass", expires=0).status == 200


# ---- SIP over TCP: caps, idle timeout, size ---------------------------------------------------------------
def _server_pid(srv) -> int:
    return srv.proc.pid


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _tcp_options(port: int, source_ip: str) -> SipMessage | None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.bind((source_ip, 0))
        s.connect(("127.0.0.1", port))
        local = s.getsockname()[1]
        s.sendall(
            (
                f"OPTIONS sip:ping@127.0.0.1:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/TCP {source_ip}:{local};branch=z9hG4bKcap{local}\r\nMax-Forwards: 70\r\n"
                f"From: <sip:t@{source_ip}>;tag=1\r\nTo: <sip:ping@127.0.0.1>\r\nCall-ID: cap-{local}\r\n"
                "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            ).encode()
        )
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65535)
            if not chunk:
                return None
            data += chunk
        return SipMessage.parse(data)


def test_two_thousand_idle_connections_from_one_source_stay_under_the_cap(srv):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2500:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    pid = _server_pid(srv)
    before = _open_fds(pid)
    conns: list[socket.socket] = []
    try:
        for _ in range(2000):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", srv.sip_port))
            except BlockingIOError:
                pass
            conns.append(s)
        time.sleep(1.0)  # let the server accept (and refuse) them all
        during = _open_fds(pid)
        assert during - before <= 128 + 16, (before, during)  # the per-source cap, plus a little slack
        # meanwhile everything else answers: UDP, TCP from another address, HTTP
        with SipUdpClient(srv.sip_port) as c:
            assert c.options().status == 200
        resp = _tcp_options(srv.sip_port, "127.0.0.2")
        assert resp is not None and resp.status == 200, resp
        assert httpx.get(srv.url + "/healthz", timeout=5).status_code == 200
    finally:
        for s in conns:
            s.close()
    # idle ones are closed after 2 s of silence; the server's descriptors come back down
    wait_for(lambda: _open_fds(pid) <= before + 8, timeout=15, what="idle connections closed")


def _recv_or_reset(s: socket.socket) -> bytes:
    try:
        return s.recv(10)
    except ConnectionResetError:  # an abort: closed all the same
        return b""


def test_idle_connections_close_but_one_a_registration_is_bound_to_stays(srv, jade):
    idle = socket.create_connection(("127.0.0.1", srv.sip_port), timeout=10)
    phone = socket.create_connection(("127.0.0.1", srv.sip_port), timeout=10)
    try:
        local = phone.getsockname()[1]
        phone.sendall(
            (
                f"REGISTER sip:127.0.0.1:{srv.sip_port} SIP/2.0\r\n"
                f"Via: SIP/2.0/TCP 127.0.0.1:{local};branch=z9hG4bKidle1\r\nMax-Forwards: 70\r\n"
                "From: <sip:tcpphone@127.0.0.1>;tag=i\r\nTo: <sip:tcpphone@127.0.0.1>\r\n"
                f"Call-ID: idle-{local}\r\nCSeq: 1 REGISTER\r\n"
                f"Contact: <sip:tcpphone@127.0.0.1:{local};transport=tcp>\r\nExpires: 60\r\n"
                "Content-Length: 0\r\n\r\n"
            ).encode()
        )
        assert b"SIP/2.0 200" in phone.recv(65535)
        start = time.monotonic()
        assert _recv_or_reset(idle) == b""  # closed by the server
        assert 1.5 <= time.monotonic() - start <= 9
        time.sleep(1)
        phone.setblocking(False)
        with pytest.raises(BlockingIOError):  # still open: nothing to read, no EOF
            phone.recv(10)
    finally:
        idle.close()
        phone.close()


def test_a_tcp_message_over_64k_is_answered_513_then_closed(srv):
    with socket.create_connection(("127.0.0.1", srv.sip_port), timeout=10) as s:
        local = s.getsockname()[1]
        head = (
            f"MESSAGE sip:x@127.0.0.1:{srv.sip_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/TCP 127.0.0.1:{local};branch=z9hG4bKbig\r\nMax-Forwards: 70\r\n"
            "From: <sip:a@127.0.0.1>;tag=b\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: big@test\r\n"
            "CSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: 70000\r\n\r\n"
        ).encode()
        s.sendall(head + b"x" * 70000)
        data = b""
        while chunk := s.recv(65535):
            data += chunk
        assert data.startswith(b"SIP/2.0 513"), data[:200]
        assert b"CSeq: 1 MESSAGE" in data


# ---- HTTP: throttles that cannot be dodged or turned on users -------------------------------------------
def test_rotating_x_forwarded_for_does_not_dodge_the_login_throttle(srv):
    statuses = []
    with httpx.Client(base_url=srv.url, timeout=20) as c:
        for i in range(25):
            r = c.get(
                "/users/me",
                auth=("nosuch-xff", f"guess-{i}"),
                headers={"X-Forwarded-For": f"198.51.100.{i + 1}", "Forwarded": f"for=203.0.113.{i + 1}"},
            )
            statuses.append(r.status_code)
    assert statuses[:20] == [401] * 20 and set(statuses[20:]) == {429}, statuses


def test_a_right_password_from_the_attackers_address_works_for_users_not_under_attack(srv):
    admin = httpx.Client(base_url=srv.url, auth=("admin", ADMIN_PASSWORD), timeout=20)
    for name in ("webvictim", "webbystander"):
        r = admin.post("/users", json={"user": {"username": name, "password": f"{name}-pass-1", "name": name}})
        assert r.status_code == 201, r.text
    with httpx.Client(base_url=srv.url, timeout=20) as c:
        for i in range(20):
            assert c.get("/users/me", auth=("webvictim", f"wrong-{i}")).status_code == 401
        assert c.get("/users/me", auth=("webvictim", "webvictim-pass-1")).status_code == 429  # its pair is banned
        # another user at the same address: spear, kazoo and jade logins work
        assert c.get("/users/me", auth=("webbystander", "webbystander-pass-1")).status_code == 200
        r = c.put("/v2/user_auth", json={"data": {"username": "webbystander", "password": "webbystander-pass-1"}})
        assert r.status_code == 201, r.text
        assert c.post("/v1/admin/login", auth=("webbystander", "webbystander-pass-1")).status_code == 200
        # kazoo too refuses the banned pair, with a 429 that echoes no token
        r = c.put("/v2/user_auth", json={"data": {"username": "webvictim", "password": "webvictim-pass-1"}})
        assert r.status_code == 429, r.text
    with Jade(srv.url, "admin", ADMIN_PASSWORD) as jade:
        (ban,) = [b for b in jade.get("/admin/security/bans?protocol=http")["list"] if b["account"] == "webvictim"]
        assert ban["kind"] == "pair" and ban["source"] == "127.0.0.1" and ban["failures"] == 20, ban
        r = jade.call("DELETE", "/admin/security/bans", params={"protocol": "http", "account": "WebVictim"})
        assert r.json()["result"]["lifted"] == 1, r.text
    with httpx.Client(base_url=srv.url, timeout=20) as c:
        assert c.get("/users/me", auth=("webvictim", "webvictim-pass-1")).status_code == 200
    admin.close()


def test_behind_a_listed_proxy_the_client_address_counts_and_the_account_limit_holds(tmp_path):
    """With 127.0.0.1 listed as a proxy, X-Forwarded-For names the client: a user at another
    address is not banned by the attacker's failures, and rotating forged addresses still hit the
    per-account limit (set low here to keep the test short)."""
    server, _ = make_server(
        "sqlite",
        tmp_path,
        SWITCHBOARD_TRUSTED_PROXIES="127.0.0.1",
        SWITCHBOARD_AUTH_FAILURES_PER_MINUTE="5",
        SWITCHBOARD_AUTH_SOURCE_FAILURES_PER_MINUTE="100",
        SWITCHBOARD_AUTH_ACCOUNT_FAILURES_PER_MINUTE="12",
    )
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=20) as c:

            def login(ip: str, password: str) -> int:
                return c.get("/users/me", auth=("admin", password), headers={"X-Forwarded-For": ip}).status_code

            assert login("198.51.100.1", ADMIN_PASSWORD) == 200  # the admin's usual address
            for _ in range(5):
                assert login("203.0.113.1", "wrong") == 401
            assert login("203.0.113.1", ADMIN_PASSWORD) == 429  # that client is banned for admin
            assert login("198.51.100.2", ADMIN_PASSWORD) == 200  # another client is not
            statuses = [login(f"203.0.113.{i}", "wrong") for i in range(10, 30)]
            assert statuses[:7] == [401] * 7 and set(statuses[7:]) == {429}, statuses  # 12 a minute per account
            assert login("198.51.100.1", ADMIN_PASSWORD) == 200  # a known-good address still gets in
    finally:
        assert server.stop() == 0
