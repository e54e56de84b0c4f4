"""Calls and operations: a trunk made through the providers API carries calls both ways (digest
answered on the way out, identified by its host on the way in); calls spread over two media
engines that `serve` did not start itself; SIGTERM ends the calls in progress with BYE and their
CDRs survive the restart. Each test runs its own server (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from switchboard.media.protocol import frame, unframe
from tests.call_peers import Phone, dominant_frequency
from tests.conftest import ADMIN_PASSWORD
from tests.sip_peers import EXTENSIONS_PATH, Jade, cdrs, running_pbx, wait_for

PJSIP = """
[alice]
type=endpoint
context=internal
auth=alice
aors=alice
allow=ulaw

[alice]
type=auth
username=alice
password=alice-pass

[alice]
type=aor
max_contacts=2

[bob]
type=endpoint
context=internal
aors=bob
allow=ulaw

[bob]
type=aor
max_contacts=2
"""

EXTENSIONS = """
[internal]
exten => 200,1,Dial(PJSIP/bob,20)
 same => n,Hangup()
exten => _8X.,1,Dial(PJSIP/${EXTEN:1}@upstream,10)
 same => n,Hangup()

[from-trunk]
exten => _X.,1,Dial(PJSIP/bob,10)
 same => n,Hangup()
"""


FILES = {EXTENSIONS_PATH: EXTENSIONS}
ENV = {"SWITCHBOARD_RTP_PORTS": "21000-29999"}


def answered_call(port: int, a: Phone, b: Phone, exten: str = "200"):
    assert b.register(port, "bob").status == 200
    invite = a.invite(port, exten, user="alice", password="alice-pass")
    incoming = b.answer_incoming(timeout=10)
    assert incoming is not None and invite.wait_final(10) == 200
    return invite, incoming


def test_a_providers_trunk_carries_calls_out_with_digest_and_in_by_its_host(backend, tmp_path):
    with (
        running_pbx(backend, tmp_path, PJSIP, FILES, **ENV) as (srv, jade),
        Phone(host="127.0.0.3", user="carrier", challenge=("1234", "trunk-secret")) as carrier,
        Phone(user="alice") as a,
        Phone(user="bob") as b,
    ):
        login = httpx.post(
            srv.url + "/api/account/credentials/verify", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        token = login.json()["access_token"]
        r = httpx.post(
            srv.url + "/api/providers/create",
            headers={"access_token": token},
            json={
                "name": "upstream",
                "auth_mode": "IP_AUTH",
                "protocol": "UDP",
                "require_register": False,
                "auth_id": "1234",
                "password": "trunk-secret",
                "hostname": "127.0.0.3",
                "port": carrier.port,
                "reregister_interval": 300,
                "ips": [],
                "in_parameters": [],
                "out_parameters": [],
            },
        )
        assert r.status_code == 200, r.text
        time.sleep(0.5)  # the engine reloads its trunks after the commit
        # out: alice dials 8 + the number; the carrier challenges; the engine answers with the trunk's digest
        invite = a.invite(srv.sip_port, "85551234", user="alice", password="alice-pass")
        got = carrier.answer_incoming(timeout=10)
        assert got is not None, "the INVITE with credentials reached the carrier"
        assert invite.wait_final(10) == 200
        t0 = time.monotonic()
        invite.send_tone(1000, 1.0)
        time.sleep(0.3)
        assert abs(dominant_frequency(carrier.received(since=t0).pcm) - 1000) < 15
        invite.bye()
        assert got.wait_bye(5)
        # in: the carrier (127.0.0.3, the trunk's host) calls a DID: from-trunk dials bob
        assert b.register(srv.sip_port, "bob").status == 200
        inbound = carrier.invite(srv.sip_port, "5550100")
        ringing = b.answer_incoming(timeout=10)
        assert ringing is not None and inbound.wait_final(10) == 200
        inbound.bye()
        assert ringing.wait_bye(5)
        cdr = wait_for(lambda: cdrs(jade, dst="5550100"), 5)[0]
        assert cdr["channel"].startswith("PJSIP/upstream-") and cdr["dcontext"] == "from-trunk"
        out = wait_for(lambda: cdrs(jade, dst="85551234"), 5)[0]
        assert out["dstchannel"].startswith("PJSIP/upstream-")


def _media_engine(tmp_path, name: str):
    log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - the child's stderr for its lifetime
    proc = subprocess.Popen(
        [sys.executable, "-m", "switchboard.cli", "media", "--listen", "127.0.0.1:0", "--rtp-ports", "30000-30999"],
        stdout=subprocess.PIPE,
        stderr=log,
    )
    line = proc.stdout.readline().decode()
    m = re.match(r"switchboard-media: listening control=(\S+):(\d+)", line)
    assert m, line
    return proc, (m.group(1), int(m.group(2)))


def _statistics(address) -> dict:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(frame(b"t1", {"command": "statistics"}), address)
        _, body = unframe(s.recv(65536))
    return body


def test_calls_spread_over_two_media_engines(backend, tmp_path):
    engines = [_media_engine(tmp_path, "m1"), _media_engine(tmp_path, "m2")]
    listed = ",".join(f"{h}:{p}" for _, (h, p) in engines)
    try:
        with running_pbx(backend, tmp_path, PJSIP, FILES, **ENV, SWITCHBOARD_MEDIA_ENGINES=listed) as (srv, jade):
            phones = [Phone(user="alice") for _ in range(2)] + [Phone(user="bob") for _ in range(2)]
            calls = []
            for a, b in ((phones[0], phones[2]), (phones[1], phones[3])):
                calls.append(answered_call(srv.sip_port, a, b))
                b.register(srv.sip_port, "bob", expires=0)
            for invite, _incoming in calls:
                invite.send_tone(1000, 0.4)
            relayed = [int(_statistics(addr)["statistics"]["packets-relayed"]) for _, addr in engines]
            assert all(n > 0 for n in relayed), relayed  # each engine carried one of the two calls
            for invite, incoming in calls:
                invite.bye()
                assert incoming.wait_bye(5)
            for p in phones:
                p.close()
    finally:
        for proc, _ in engines:
            proc.terminate()
            proc.wait(5)


def test_sigterm_ends_calls_with_bye_and_their_records_survive(backend, tmp_path):
    with running_pbx(backend, tmp_path, PJSIP, FILES, **ENV) as (srv, jade):
        with Phone(user="alice") as a, Phone(user="bob") as b:
            invite, incoming = answered_call(srv.sip_port, a, b)
            linked = wait_for(lambda: jade.get("/admin/core/channels")["list"], 5)[0]["linked_id"]
            assert srv.stop() == 0
            assert invite.wait_bye(5) and incoming.wait_bye(5), "both parties got a BYE at shutdown"
        srv.start()
        with Jade(srv.url, "admin", ADMIN_PASSWORD) as again:  # the restarted server
            cdr = cdrs(again, linkedid=linked)
        assert cdr and cdr[0]["disposition"] == "ANSWERED" and cdr[0]["dstchannel"].startswith("PJSIP/bob-")


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _children(pid: int) -> list[int]:
    path = f"/proc/{pid}/task/{pid}/children"
    with open(path) as f:
        return [int(p) for p in f.read().split()]


def test_the_embedded_media_engine_ends_with_a_killed_serve(backend, tmp_path):
    """serve SIGKILLed (no chance to stop its child): the media engine it started notices and exits."""
    with running_pbx(backend, tmp_path, PJSIP, FILES, **ENV) as (srv, _jade):
        media = [p for p in _children(srv.proc.pid) if b"media" in open(f"/proc/{p}/cmdline", "rb").read()]
        assert len(media) == 1, media
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(5)
        assert wait_for(lambda: not os.path.exists(f"/proc/{media[0]}") or _zombie(media[0]), 5)
        srv.start()  # running_pbx stops it cleanly again


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
