"""Several `serve` nodes on one PostgreSQL (issue 18): two real processes, each with its own data
dir, on one fresh database.

- a node whose secret key is not the cluster's refuses to start: one line, exit 2, no traceback;
- a pjsip.conf written through node A is served by node B within a second and B authenticates
  REGISTERs for its accounts; a module unloaded on A answers 503 on B; a trunk made on A is B's too;
- a binding made at A is in B's contacts (and removed from them when A removes it);
- background work (trunk registration) runs on one node and moves to the other when its node is
  SIGKILLed, within the lease time, while sipp registers through the survivor with 0 failures."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.call_peers import Phone
from tests.conftest import ADMIN_PASSWORD, BIN, PgDatabase, Server, pg_reason, skip_or_fail
from tests.e2e.test_sip_trunks import Providers, register_trunk
from tests.sip_peers import (
    EXTENSIONS_PATH,
    Jade,
    Kamailio,
    SipUdpClient,
    pjsip_account,
    run_sipp,
    sip_options_status,
    skip_without,
    wait_for,
    write_users_csv,
)

LEASE = 3.0  # seconds: SWITCHBOARD_LEASE_SECONDS of these nodes
FAST = {
    "SWITCHBOARD_TRUNK_RETRY_MIN": "1",
    "SWITCHBOARD_TRUNK_RETRY_MAX": "2",
    "SWITCHBOARD_TRUNK_QUALIFY_INTERVAL": "1",
    "SWITCHBOARD_LEASE_SECONDS": str(LEASE),
}


@pytest.fixture(scope="module")
def pg():
    if reason := pg_reason():
        skip_or_fail(f"multi-node needs PostgreSQL: {reason}")
    db = PgDatabase()
    yield db
    db.drop()


def node(pg: PgDatabase, tmp: Path, name: str, **env) -> Server:
    d = tmp / name
    d.mkdir(parents=True, exist_ok=True)
    return Server("postgres", pg.url, d, extra_env={**FAST, **env})


@pytest.fixture(scope="module")
def cluster(pg, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multinode")
    a = node(pg, tmp, "a").start()
    key = (a.data_dir / "secret.key").read_text().strip()
    b = node(pg, tmp, "b", SWITCHBOARD_SECRET_KEY=key).start()
    ja, jb = Jade(a.url, "admin", ADMIN_PASSWORD), Jade(b.url, "admin", ADMIN_PASSWORD)
    yield a, b, ja, jb
    ja.close()
    jb.close()
    for srv in (a, b):
        code = srv.stop()
        assert code in (0, None, -9), f"serve did not stop cleanly ({code})"
        assert "Traceback" not in srv.log(), srv.log()
    shutil.rmtree(tmp, ignore_errors=True)


def sigkill(srv: Server) -> None:
    """SIGKILL a serve, then its embedded media engine (which a killed serve cannot stop)."""
    children = Path(f"/proc/{srv.proc.pid}/task/{srv.proc.pid}/children")
    kids = [int(x) for x in children.read_text().split()] if children.exists() else []
    srv.proc.kill()
    srv.proc.wait()
    for pid in kids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def node_id(srv: Server) -> str:
    return httpx.get(srv.url + "/healthz", timeout=5).json()["node"]


# ---- 1. the secret key ----------------------------------------------------------------------------
def test_a_node_with_another_secret_key_refuses_to_start(cluster, tmp_path):
    a, _, _, _ = cluster
    other = tmp_path / "other"
    other.mkdir()
    srv = Server("postgres", a.database_url, other)  # no key given: it makes its own, not the cluster's
    out = subprocess.run([str(BIN / "switchboard"), "serve"], env=srv.env(), capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr + out.stdout, out.stderr
    lines = [x for x in out.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "secret key" in lines[0] and "refusing to start" in lines[0], out.stderr


# ---- 2. configuration and modules -------------------------------------------------------------------
USERS = [(f"u{i:04d}", f"pw-{i}-secret") for i in range(1, 21)]


def test_pjsip_conf_written_on_a_is_served_and_authenticated_by_b_within_a_second(cluster):
    a, b, ja, jb = cluster
    assert jb.call("GET", "/admin/pjsip/aors/u0001").status_code == 404
    ja.put_pjsip("".join(pjsip_account(u, p, max_contacts=2, remove_existing="yes") for u, p in USERS))
    written = time.monotonic()
    wait_for(lambda: jb.call("GET", "/admin/pjsip/aors/u0001").status_code == 200, 1.0, 0.02, what="u0001 on B")
    took = time.monotonic() - written
    assert jb.get("/admin/pjsip/aors/u0020")["max_contacts"] in (2, "2")
    print(f"pjsip.conf written on A served by B after {took * 1000:.0f} ms")
    for user, password in USERS:
        with SipUdpClient(b.sip_port) as phone:
            resp = phone.register(user, password)
            assert resp is not None and resp.status == 200, (user, resp)
            phone.register(user, password, expires=0)


def test_a_module_unloaded_on_a_answers_503_on_b(cluster):
    a, b, ja, jb = cluster
    assert sip_options_status(b.sip_port) == 200
    assert ja.call("DELETE", "/admin/core/modules/res_pjsip").status_code == 200
    try:
        started = time.monotonic()
        wait_for(lambda: sip_options_status(b.sip_port, 0.3) == 503, 1.5, 0.02, what="503 on B")
        assert time.monotonic() - started < 1.5
        assert jb.get("/admin/core/modules/res_pjsip")["load"] == "Not Running"
    finally:
        assert ja.call("POST", "/admin/core/modules/res_pjsip").status_code == 200
    wait_for(lambda: sip_options_status(b.sip_port, 0.3) == 200, 1.5, 0.02, what="200 on B again")


# ---- 3. registrations -----------------------------------------------------------------------------
def test_a_binding_made_at_a_is_in_bs_contacts_and_its_removal_too(cluster):
    a, b, ja, jb = cluster
    user, password = USERS[2]
    with SipUdpClient(a.sip_port) as phone:
        resp = phone.register(user, password, expires=120)
        assert resp is not None and resp.status == 200, resp
        seen = wait_for(lambda: jb.contacts(user), 1.0, 0.02, what="the binding on B")
        assert seen[0]["via_address"] == f"127.0.0.1:{phone.port}", seen
        assert jb.get(f"/device_states/PJSIP/{user}")["state"] == "NOT_INUSE"
        resp = phone.register(user, password, expires=0)
        assert resp is not None and resp.status == 200, resp
        wait_for(lambda: not jb.contacts(user), 1.0, 0.02, what="the binding gone on B")
        assert jb.get(f"/device_states/PJSIP/{user}")["state"] == "UNAVAILABLE"


CALLERS = """
[alice]
type=endpoint
context=internal
auth=alice
aors=alice
disallow=all
allow=ulaw

[alice]
type=auth
username=alice
password=alice-pass

[alice]
type=aor
max_contacts=1

[bob]
type=endpoint
context=internal
auth=bob
aors=bob
disallow=all
allow=ulaw

[bob]
type=auth
username=bob
password=bob-pass

[bob]
type=aor
max_contacts=1
"""
DIALPLAN = """
[internal]
exten => 200,1,Dial(PJSIP/bob,20)
 same => n,Hangup()
"""


def test_bs_dial_reaches_a_phone_registered_at_a_from_bs_own_socket(cluster):
    skip_without("sipp")  # the media engine's tests' prerequisites; the phones here are Python
    a, b, ja, jb = cluster
    ja.put_pjsip("".join(pjsip_account(u, p, max_contacts=2, remove_existing="yes") for u, p in USERS) + CALLERS)
    r = ja.call("PUT", EXTENSIONS_PATH, json={"data": DIALPLAN})
    assert r.status_code == 200, r.text
    wait_for(lambda: jb.call("GET", "/admin/pjsip/aors/bob").status_code == 200, 1.0, 0.02, what="bob on B")
    with Phone(user="bob") as bob:
        assert bob.register(a.sip_port, "bob", "bob-pass").status == 200  # bob registers at A only
        wait_for(lambda: jb.contacts("bob"), 1.0, 0.02, what="bob's binding on B")
        with Phone(user="alice") as alice:
            invite = alice.invite(b.sip_port, "200", user="alice", password="alice-pass")  # alice calls B
            incoming = bob.answer_incoming(timeout=10)
            assert incoming is not None, "B's Dial did not reach bob"
            assert incoming.dest == ("127.0.0.1", b.sip_port), incoming.dest  # from B's own socket
            assert invite.wait_final(10) == 200
            chans = wait_for(lambda: len(jb.get("/admin/core/channels")["list"]) == 2, 5, what="2 channels on B")
            assert chans
            assert jb.get("/device_states/PJSIP/bob")["state"] == "INUSE"
            assert invite.bye().status == 200
            assert incoming.wait_bye(5)


def pg_exec(pg: PgDatabase, sql: str, *args):
    async def go():
        import asyncpg

        conn = await asyncpg.connect(pg.url, timeout=3)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(go())


def test_a_write_missed_while_bs_listen_connection_was_down_is_resynced(cluster, pg):
    a, b, ja, jb = cluster
    killed = pg_exec(
        pg,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        f"switchboard-listen-{node_id(b)}",
    )
    assert len(killed) == 1, killed
    text = "".join(pjsip_account(u, p, max_contacts=2, remove_existing="yes") for u, p in USERS)
    ja.put_pjsip(text + pjsip_account("late1", "late-secret"))  # B hears nothing of it: it is not listening
    wait_for(lambda: jb.call("GET", "/admin/pjsip/aors/late1").status_code == 200, 6, 0.05, what="late1 on B")
    with SipUdpClient(b.sip_port) as phone:
        resp = phone.register("late1", "late-secret", expires=0)
        assert resp is not None and resp.status == 200, resp


# ---- 4. once-per-cluster work, and a node killed ---------------------------------------------------
def lease_holders(pg: PgDatabase) -> dict[str, str]:
    rows = pg_exec(pg, "SELECT name, holder FROM leases WHERE expires_at >= extract(epoch FROM clock_timestamp())")
    return {r["name"]: r["holder"] for r in rows}


def test_sigkill_a_while_sipp_registers_through_b_and_b_takes_over_the_trunk(cluster, pg, tmp_path):
    skip_without("sipp", "kamailio")
    a, b, ja, jb = cluster
    ida, idb = node_id(a), node_id(b)
    holders = lease_holders(pg)
    assert holders.get("trunks") == ida and holders.get("qualify") == ida, (holders, ida, idb)
    kam = Kamailio(tmp_path / "kamailio").start()
    try:
        pa, pb = Providers(a.url), Providers(b.url)
        pid = pa.create(**register_trunk(kam))
        wait_for(lambda: pa.status(pid) == "ONLINE", 10, 0.1, what="trunk ONLINE on A")
        wait_for(lambda: pb.status(pid) == "ONLINE", 2, 0.05, what="trunk ONLINE on B (A's trunk.status)")
        assert pid in [p["id"] for p in pb.providers()]
        # a node that starts later shows the trunk's state too (the holder announces it again)
        c = node(pg, tmp_path, "c", SWITCHBOARD_SECRET_KEY=(a.data_dir / "secret.key").read_text().strip()).start()
        try:
            wait_for(lambda: Providers(c.url).status(pid) == "ONLINE", 3, 0.1, what="trunk ONLINE on C")
        finally:
            assert c.stop() == 0
            assert "Traceback" not in c.log(), c.log()
        before = len(kam.registers())
        csv = write_users_csv(tmp_path / "users.csv", USERS)
        with ThreadPoolExecutor(1) as pool:
            # 120 REGISTERs over 12 s through B: A is killed 2 s in
            job = pool.submit(
                run_sipp,
                b.sip_port,
                "register_auth.xml",
                tmp_path,
                calls=120,
                rate=10,
                inf=csv,
                keys={"expires": "300"},
                timeout=40,
            )
            time.sleep(2)
            sigkill(a)
            killed = time.monotonic()
            wait_for(lambda: len(kam.registers()) > before, LEASE * 3, 0.05, what="B's trunk REGISTER")
            took = time.monotonic() - killed
            out = job.result()
        print(f"trunk registration taken over by B {took:.2f} s after SIGKILL of A (lease {LEASE} s)")
        assert took <= LEASE + LEASE / 5 + 1.0, took
        assert out.returncode == 0 and out.failed == 0 and out.successful == 120, out.text
        assert kam.registers()[-1].authorized or len(kam.registers()) > before + 1
        wait_for(lambda: pb.status(pid) == "ONLINE", 5, 0.1, what="trunk ONLINE on B after the takeover")
        assert lease_holders(pg).get("trunks") == idb
        wait_for(lambda: lease_holders(pg).get("qualify") == idb, LEASE * 2, 0.1, what="qualify moved to B")
    finally:
        kam.stop()
