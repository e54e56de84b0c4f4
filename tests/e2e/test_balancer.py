"""Kamailio's `dispatcher` in front of two `serve` nodes on one PostgreSQL (deploy/kamailio-dispatcher.cfg,
deploy/MULTINODE.md): sipp REGISTERs through the balancer are spread over both nodes (each node's
registration events name it), carry a Path to the balancer, and, when one node is SIGKILLed,
registrations go on through the other with 0 failures (failover on timeout, then the OPTIONS health
check keeps the dead node out)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson
import pytest

from tests.call_peers import Phone
from tests.conftest import ADMIN_PASSWORD, PgDatabase, Server, pg_reason, skip_or_fail
from tests.e2e.test_multinode import CALLERS, DIALPLAN, sigkill
from tests.sip_peers import (
    EXTENSIONS_PATH,
    KAMAILIO_MODULES,
    Jade,
    free_port,
    pjsip_account,
    run_sipp,
    sip_options_status,
    skip_without,
    stop_process,
    wait_for,
    which,
    write_users_csv,
)

ROOT = Path(__file__).resolve().parents[2]
CFG = ROOT / "deploy" / "kamailio-dispatcher.cfg"
SHM_MB = 512  # Kamailio's shared memory (deploy/kamailio-dispatcher.cfg: the default 64 MB runs out)
USERS = [(f"lb{i:03d}", f"lb-{i}-secret") for i in range(1, 41)]


class Balancer:
    """Kamailio with the deployment's dispatcher configuration, in front of `nodes` (SIP ports)."""

    def __init__(self, workdir: Path, nodes: list[int]):
        self.workdir, self.port = workdir, free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.list_path = workdir / "dispatcher.list"
        self.list_path.write_text("".join(f"1 sip:127.0.0.1:{p}\n" for p in nodes))
        self.cfg_path = workdir / "balancer.cfg"
        self.cfg_path.write_text(
            CFG.read_text()
            .replace("@LISTEN@", f"udp:127.0.0.1:{self.port}")
            .replace("@MPATH@", KAMAILIO_MODULES)
            .replace("@DSLIST@", str(self.list_path))
        )
        self.log_path = workdir / "balancer.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Balancer:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [which("kamailio"), "-f", str(self.cfg_path), "-DD", "-E", "-m", str(SHM_MB)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        wait_for(lambda: sip_options_status(self.port, 0.5) == 200 or self.proc.poll() is not None, 15, 0.2)
        assert self.proc.poll() is None, self.log_path.read_text()[-3000:]
        return self

    def stop(self) -> None:
        stop_process(self.proc, group=True)


@pytest.fixture(scope="module")
def lb(tmp_path_factory):
    skip_without("kamailio", "sipp")
    if reason := pg_reason():
        skip_or_fail(f"the balancer suite needs PostgreSQL: {reason}")
    pg = PgDatabase()
    tmp = tmp_path_factory.mktemp("balancer")
    env = {"SWITCHBOARD_LEASE_SECONDS": "3"}
    (tmp / "a").mkdir()
    (tmp / "b").mkdir()
    a = Server("postgres", pg.url, tmp / "a", extra_env=env).start()
    key = (a.data_dir / "secret.key").read_text().strip()
    b = Server("postgres", pg.url, tmp / "b", extra_env={**env, "SWITCHBOARD_SECRET_KEY": key}).start()
    jade = Jade(a.url, "admin", ADMIN_PASSWORD)
    jade.put_pjsip("".join(pjsip_account(u, p, max_contacts=2, remove_existing="yes") for u, p in USERS))
    balancer = Balancer(tmp / "kamailio", [a.sip_port, b.sip_port]).start()
    yield a, b, jade, balancer, tmp
    balancer.stop()
    jade.close()
    for srv in (a, b):
        srv.stop()
        assert "Traceback" not in srv.log(), srv.log()
    pg.drop()
    shutil.rmtree(tmp, ignore_errors=True)


def events_since(srv: Server, token: str, since: int = 0, quiet: float = 1.0) -> list[dict]:
    """The events a node's SSE stream replays from `since` (read until it is quiet)."""
    out: list[dict] = []
    try:
        with httpx.stream(
            "GET", srv.url + "/events/stream", params={"since": since, "authtoken": token}, timeout=quiet
        ) as r:
            for line in r.iter_lines():
                if line.startswith("data:"):
                    out.append(orjson.loads(line[5:]))
    except httpx.ReadTimeout:
        pass
    return out


def test_registers_through_the_balancer_are_spread_over_both_nodes_with_path(lb):
    a, b, jade, balancer, tmp = lb
    ids = {httpx.get(s.url + "/healthz").json()["node"] for s in (a, b)}
    csv = write_users_csv(tmp / "users.csv", USERS)
    out = run_sipp(balancer.port, "register_auth.xml", tmp, calls=len(USERS), rate=20, inf=csv, keys={"expires": "300"})
    assert out.returncode == 0 and out.failed == 0 and out.successful == len(USERS), out.text
    events = [e for e in events_since(a, jade.token) if e["type"].startswith("registration.")]
    by_node = {n: sum(1 for e in events if e["data"].get("node") == n) for n in ids}
    assert all(count > 0 for count in by_node.values()), by_node
    contact = wait_for(lambda: jade.contacts(USERS[0][0]), 2)[0]
    assert contact["via_address"] == f"127.0.0.1:{balancer.port}", contact  # answers go back through it
    paths = pg_paths(lb_db(a))
    assert paths and all(f"127.0.0.1:{balancer.port}" in p and "received=" in p for p in paths), paths[:3]
    print(f"REGISTERs through the balancer by node: {sorted(by_node.values())}")


def lb_db(srv: Server) -> str:
    return srv.database_url


def pg_paths(url: str) -> list[str]:
    """The Path each binding was registered with (sip_contacts.path)."""

    async def go():
        import asyncpg

        conn = await asyncpg.connect(url, timeout=3)
        try:
            return [r["path"] for r in await conn.fetch("SELECT path FROM sip_contacts")]
        finally:
            await conn.close()

    return asyncio.run(go())


def test_a_call_to_a_phone_registered_through_the_balancer_goes_through_it(lb):
    a, b, jade, balancer, tmp = lb
    jade.put_pjsip("".join(pjsip_account(u, p, max_contacts=2, remove_existing="yes") for u, p in USERS) + CALLERS)
    assert jade.call("PUT", EXTENSIONS_PATH, json={"data": DIALPLAN}).status_code == 200
    bjade = Jade(b.url, "admin", ADMIN_PASSWORD)
    try:
        wait_for(lambda: bjade.call("GET", "/admin/pjsip/aors/bob").status_code == 200, 1.0, 0.02)
        for _ in range(4):  # several calls: the Call-ID hash sends them to either node
            with Phone(user="bob") as bob:
                assert bob.register(balancer.port, "bob", "bob-pass").status == 200
                # the node that did not take the REGISTER learns the binding from the event bus (ms,
                # more under load): the call may land on either node
                wait_for(lambda: jade.contacts("bob") and bjade.contacts("bob"), 5, 0.02, what="bob on both nodes")
                with Phone(user="alice") as alice:
                    invite = alice.invite(balancer.port, "200", user="alice", password="alice-pass")
                    incoming = bob.answer_incoming(timeout=10)
                    assert incoming is not None, "the node's INVITE did not reach bob through the balancer"
                    assert incoming.dest == ("127.0.0.1", balancer.port), incoming.dest  # via its Path
                    assert not incoming.invite.get_all("Route"), incoming.invite  # the balancer took its Route
                    assert invite.wait_final(10) == 200
                    assert invite.bye().status == 200
                    assert incoming.wait_bye(5)
                assert bob.register(balancer.port, "bob", "bob-pass", expires=0).status == 200
            # max_contacts = 1: the next phone may register once both nodes saw this one go
            wait_for(lambda: not jade.contacts("bob") and not bjade.contacts("bob"), 2, 0.02, what="bob gone")
    finally:
        bjade.close()


def test_a_node_killed_behind_the_balancer_registrations_go_on_with_0_failures(lb):
    a, b, jade, balancer, tmp = lb
    csv = write_users_csv(tmp / "users2.csv", USERS)
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(
            run_sipp,
            balancer.port,
            "register_auth.xml",
            tmp,
            calls=120,
            rate=10,
            inf=csv,
            keys={"expires": "300"},
            timeout=60,
        )
        time.sleep(2)
        sigkill(b)
        out = job.result()
    assert out.returncode == 0 and out.failed == 0 and out.successful == 120, out.text
