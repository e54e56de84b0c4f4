"""SIP worker processes (engine/workers.py): `serve` with SWITCHBOARD_SIP_WORKERS=2, two processes on
one UDP port, behaving as one. One test per shared state the issue names: nonce replay state,
per-aor ordering of binding decisions, responses to the node's own requests (qualify) reaching the
process that sent them, configuration reloads reaching every worker; and the authentication
failure throttle, counted for the node (test_security.py passes with the variable set too). Every other registrar
test also passes with the variable set (`SWITCHBOARD_SIP_WORKERS=2 pytest tests/e2e/test_sip_registrar.py`).

Which process handled a REGISTER shows in its challenge: each process signs its nonces with its own
key, and the opaque is derived from that key."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from switchboard.sip.digest import DigestClient
from switchboard.sip.steer import aor_owner
from tests.sip_peers import SipMessage, SipUdpClient, pjsip_account, running_pbx, wait_for

WORKERS = 2


def names(prefix: str, per_owner: int) -> list[str]:
    """`per_owner` account names owned by each worker."""
    out: dict[int, list[str]] = {k: [] for k in range(WORKERS)}
    i = 0
    while any(len(v) < per_owner for v in out.values()):
        name = f"{prefix}{i}"
        bucket = out[aor_owner(name, WORKERS)]
        if len(bucket) < per_owner:
            bucket.append(name)
        i += 1
    return [n for k in range(WORKERS) for n in out[k]]


SPREAD = names("spread", 3)
QUAL = names("qual", 3)
PJSIP = "".join(
    [
        *(pjsip_account(n, f"{n}-pass", remove_existing="yes") for n in SPREAD),
        *(pjsip_account(n, f"{n}-pass", qualify_frequency=1, qualify_timeout=1) for n in QUAL),
        pjsip_account("strict", "strict-pass", remove_existing="no"),
        pjsip_account("replay", "replay-pass", remove_existing="yes"),
    ]
)


@pytest.fixture(scope="module")
def node(backend, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"sip-workers-{backend}")
    env = {"SWITCHBOARD_SIP_WORKERS": str(WORKERS), "SWITCHBOARD_SIP_AUTH_FAILURES_PER_MINUTE": "100000"}
    with running_pbx(backend, tmp, PJSIP, {}, **env) as (srv, jade):
        yield srv, jade


def opaque(resp: SipMessage) -> str:
    return re.search(r'opaque="([^"]+)"', resp.get("WWW-Authenticate")).group(1)


def test_two_processes_share_the_port_and_each_aor_has_one(node):
    """From many source ports (the kernel spreads them over both sockets), an aor's challenge always
    comes from the same process, and aors of different owners from different processes."""
    srv, _ = node
    seen: dict[str, set[str]] = {n: set() for n in SPREAD}
    for _ in range(6):
        for name in SPREAD:
            with SipUdpClient(srv.sip_port) as c:
                resp = c.register(name, None)
                assert resp is not None and resp.status == 401, resp
                seen[name].add(opaque(resp))
    assert all(len(v) == 1 for v in seen.values()), seen
    by_owner = {aor_owner(n, WORKERS): next(iter(v)) for n, v in seen.items()}
    assert len(set(by_owner.values())) == WORKERS, by_owner  # one key per process
    for name in SPREAD:  # and each registers
        with SipUdpClient(srv.sip_port) as c:
            assert c.register(name, f"{name}-pass").status == 200


def test_an_options_and_its_retransmissions_get_the_same_answer_from_either_process(node):
    """An OPTIONS outside a dialog is answered statelessly wherever it lands (RFC 3261 §8.2.7): the kernel
    spreads one socket's datagrams over both processes at random, and every retransmission, whichever
    process answers it, gets the same bytes (the To tag is derived from the request, not drawn at random
    nor kept in one process's memory). Another transaction gets another tag."""
    srv, _ = node
    with SipUdpClient(srv.sip_port) as c:
        data, _ = c.build("OPTIONS", f"sip:127.0.0.1:{srv.sip_port}")
        answers = set()
        for _ in range(24):  # all 24 in one process: a chance of 2**-23
            c.send(data)
            resp = c.recv()
            assert resp is not None and resp.status == 200, resp
            answers.add(resp.raw)
        assert len(answers) == 1, answers
        other = c.transaction(*c.build("OPTIONS", f"sip:127.0.0.1:{srv.sip_port}"))
        assert other.status == 200 and other.get("To") != SipMessage.parse(answers.pop()).get("To")


def test_nonce_replay_is_refused_whichever_process_sees_it(node):
    """Point 1, nonce replay state: a REGISTER's Authorization sent again is refused (401 stale) when
    it comes back over UDP from another port, and over TCP (which the main process takes)."""
    srv, jade = node
    with SipUdpClient(srv.sip_port) as c:
        assert c.register("replay", "replay-pass").status == 200
        replayed = c.last_authorization
    for _ in range(4):  # other source ports: either socket may receive it
        with SipUdpClient(srv.sip_port) as c:
            again = c.register("replay", authorization=replayed)
            assert again.status == 401 and "stale=true" in again.get("WWW-Authenticate"), str(again)
    again = tcp_register(srv.sip_port, "replay", 1, authorization=replayed)
    assert again.status == 401 and "stale=true" in again.get("WWW-Authenticate"), str(again)
    # a stale answer is no failure: the same client authenticates again at once
    with SipUdpClient(srv.sip_port) as c:
        assert c.register("replay", "replay-pass").status == 200
    assert "authentication failed" not in srv.log().split("replay")[-1]


def tcp_register(
    port: int, user: str, cseq: int, *, contact: str | None = None, authorization: str | None = None, password=None
):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        local = s.getsockname()[1]
        contact = contact or f"<sip:{user}@127.0.0.1:{local};transport=tcp>"

        def send(cseq: int, auth: str | None) -> SipMessage:
            head = (
                f"REGISTER sip:127.0.0.1:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/TCP 127.0.0.1:{local};branch=z9hG4bKtcp{cseq}x{local}\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:{user}@127.0.0.1>;tag=tcp\r\nTo: <sip:{user}@127.0.0.1>\r\n"
                f"Call-ID: tcp-{local}@test\r\nCSeq: {cseq} REGISTER\r\nContact: {contact}\r\nExpires: 60\r\n"
            )
            if auth:
                head += f"Authorization: {auth}\r\n"
            s.sendall((head + "Content-Length: 0\r\n\r\n").encode())
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65535)
                assert chunk, data
                data += chunk
            return SipMessage.parse(data)

        resp = send(cseq, authorization)
        if resp.status == 401 and password is not None:
            auth = DigestClient(user, password).authorize(
                "REGISTER", f"sip:127.0.0.1:{port}", resp.get_all("WWW-Authenticate")
            )
            resp = send(cseq + 1, auth)
        return resp


def test_one_aors_registers_are_decided_one_after_the_other(node):
    """Point 2, per-aor ordering: max_contacts=1 without remove_existing; ten phones (ten source
    ports, so both sockets, and one over TCP, which the main process relays to the aor's owner)
    register different contacts at once: exactly one wins, the others get 403, one binding stays."""
    srv, jade = node
    barrier = threading.Barrier(11)

    def udp(i: int) -> int:
        with SipUdpClient(srv.sip_port) as c:
            barrier.wait()
            return c.register("strict", "strict-pass", contacts=[f"<sip:strict@127.0.0.1:{40000 + i}>"]).status

    def tcp() -> int:
        barrier.wait()
        return tcp_register(srv.sip_port, "strict", 1, password="strict-pass").status

    with ThreadPoolExecutor(11) as pool:
        futures = [pool.submit(udp, i) for i in range(10)] + [pool.submit(tcp)]
        statuses = sorted(f.result(timeout=30) for f in futures)
    assert statuses.count(200) == 1 and statuses.count(403) == 10, statuses
    assert len(jade.contacts("strict")) == 1


class Responder:
    """Phones that answer qualify: each client's own socket (qualify pings where the REGISTER came
    from) answers every OPTIONS with 200, in a thread."""

    def __init__(self, clients: list[SipUdpClient]):
        self.clients = clients
        self.answered = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(c.sock,), daemon=True) for c in clients]
        for t in self._threads:
            t.start()

    def _run(self, sock: socket.socket) -> None:
        sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data, addr = sock.recvfrom(65535)
            except (TimeoutError, OSError):
                continue
            msg = SipMessage.parse(data)
            if msg.method != "OPTIONS":
                continue
            lines = ["SIP/2.0 200 OK"]
            for name in ("Via", "From", "To", "Call-ID", "CSeq"):
                lines += [f"{name}: {v}" for v in msg.get_all(name)]
            sock.sendto(("\r\n".join([*lines, "Content-Length: 0"]) + "\r\n\r\n").encode(), addr)
            self.answered += 1

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(2)
        for c in self.clients:
            c.close()


def test_qualify_answers_reach_the_main_process(node):
    """Point 3: the main process qualifies (OPTIONS) contacts behind six source ports; whichever
    socket the kernel hands an answer to, it reaches the main process's transaction: all Reachable."""
    srv, jade = node
    clients = [SipUdpClient(srv.sip_port) for _ in QUAL]
    for c, name in zip(clients, QUAL, strict=True):
        resp = c.register(name, f"{name}-pass")
        assert resp.status == 200, str(resp)
    phones = Responder(clients)
    try:
        wait_for(
            lambda: all([x["status"] for x in jade.contacts(n)] == ["Reachable"] for n in QUAL),
            15,
            what="every qualified contact Reachable",
        )
        assert phones.answered >= len(QUAL)
    finally:
        phones.close()


def test_a_reload_reaches_every_worker_before_the_api_answers(node):
    """Point 4: accounts added through jade register at once (no wait) whichever process owns them;
    a changed password applies at once too; unloading the registrar module reaches every worker."""
    srv, jade = node
    fresh = names("fresh", 3)
    jade.put_pjsip(PJSIP + "".join(pjsip_account(n, f"{n}-pass", remove_existing="yes") for n in fresh))
    for name in fresh:
        with SipUdpClient(srv.sip_port) as c:
            assert c.register(name, f"{name}-pass").status == 200, name
    jade.put_pjsip(PJSIP + "".join(pjsip_account(n, f"{n}-new", remove_existing="yes") for n in fresh))
    for name in fresh:
        with SipUdpClient(srv.sip_port) as c:
            assert c.register(name, f"{name}-pass").status == 403, name
        with SipUdpClient(srv.sip_port) as c:
            assert c.register(name, f"{name}-new").status == 200, name
    r = jade.call("DELETE", "/admin/core/modules/res_pjsip_registrar")
    assert r.status_code == 200, r.text
    try:
        for name in fresh:
            with SipUdpClient(srv.sip_port) as c:
                assert wait_for(lambda c=c, name=name: c.register(name, None).status == 501, 5, what="501"), name
    finally:
        assert jade.call("POST", "/admin/core/modules/res_pjsip_registrar").status_code == 200
    deadline = time.monotonic() + 5
    for name in fresh:
        while True:
            with SipUdpClient(srv.sip_port) as c:
                if c.register(name, f"{name}-new").status == 200 or time.monotonic() > deadline:
                    break
        with SipUdpClient(srv.sip_port) as c:
            assert c.register(name, f"{name}-new").status == 200, name


def worker_pids(srv) -> list[int]:
    pattern = "switchboard.cli sip-worker"
    out = subprocess.run(["pgrep", "-P", str(srv.proc.pid), "-f", pattern], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_a_worker_that_dies_is_replaced_and_its_aors_still_register(node):
    """The main process takes a dead worker's aors until a new one is up (their clients authenticate
    again on a stale nonce), starts a new worker, and logs it. The nonce-counts the dead worker saw went
    with it: an Authorization it accepted is refused (401 stale) by the main process standing in, and by
    the new worker, never accepted once more (Registrar.worker_gone, DigestServer.forget_before)."""
    srv, _ = node
    (pid,) = worker_pids(srv)
    mine = [n for n in SPREAD if aor_owner(n, WORKERS) == 1]
    accepted = {}
    for name in mine:
        with SipUdpClient(srv.sip_port) as c:
            assert c.register(name, f"{name}-pass").status == 200, name
            accepted[name] = c.last_authorization
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: "SIP worker 1 exited with -9; starting it again" in srv.log(), 10, what="the watcher")
    for name in mine:
        with SipUdpClient(srv.sip_port) as c:
            again = c.register(name, authorization=accepted[name], timeout=10)
            assert again.status == 401 and "stale=true" in again.get("WWW-Authenticate"), str(again)
            assert c.register(name, f"{name}-pass", timeout=10).status == 200, name
    (new,) = wait_for(lambda: [p for p in worker_pids(srv) if p != pid], 30, what="a new SIP worker")
    assert new != pid
    for name in mine:  # and the new one serves them
        with SipUdpClient(srv.sip_port) as c:
            assert wait_for(lambda c=c, name=name: c.register(name, f"{name}-pass").status == 200, 20), name
            again = c.register(name, authorization=accepted[name])
            assert again.status == 401 and "stale=true" in again.get("WWW-Authenticate"), str(again)


def test_the_failure_throttle_counts_the_node_and_bans_reach_every_process(backend, tmp_path):
    """Point 5 (the throttle): failures at both aor owners add up to the per-source limit; the ban
    holds in both processes at once (the refusal waits for it), jade lists it and lifting it
    reaches both."""
    known = names("known", 1)  # a real account owned by each process
    pjsip = "".join(pjsip_account(n, f"{n}-pass") for n in known)
    env = {"SWITCHBOARD_SIP_WORKERS": str(WORKERS), "SWITCHBOARD_SIP_AUTH_SOURCE_FAILURES_PER_MINUTE": "10"}
    with running_pbx(backend, tmp_path, pjsip, {}, **env) as (srv, jade):
        with SipUdpClient(srv.sip_port) as c:
            for name in names("spray", 5):  # 5 failures at each owner: 10 from this source
                assert c.register(name, "guess").status == 403
            for name in known:  # never logged in from here: banned with the source, at either owner
                refused = c.register(name, f"{name}-pass")
                assert refused.status == 403 and not refused.get_all("WWW-Authenticate"), str(refused)
        bans = jade.get("/admin/security/bans?protocol=sip")["list"]
        (ban,) = [b for b in bans if b["kind"] == "source"]
        assert ban["source"] == "127.0.0.1" and ban["failures"] == 10, bans
        r = jade.call("DELETE", "/admin/security/bans", params={"protocol": "sip", "source": "127.0.0.1"})
        assert r.status_code == 200 and r.json()["result"]["lifted"] == 1, r.text
        with SipUdpClient(srv.sip_port) as c:
            for name in known:
                assert c.register(name, f"{name}-pass").status == 200
