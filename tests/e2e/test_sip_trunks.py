"""Trunks on the wire against a Kamailio 5.6 from Debian as the upstream registrar: a REGISTER_AUTH
provider created through the providers API registers (UDP and TCP) and turns ONLINE, OFFLINE when
Kamailio stops, ONLINE again when it is back; a wrong password is "Rejected"; IP_AUTH trunks are
qualified with OPTIONS; destroying a trunk unregisters it (Expires: 0 seen by Kamailio); a trunk
made through jade `/manager/trunks` is the same trunk in the providers list.

A server of its own with fast trunk timers (retry 1-2 s, qualify every 1 s) and one Kamailio per test
on a port of its own."""

from __future__ import annotations

import secrets
import socket
import time

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, make_server
from tests.sip_peers import Jade, Kamailio, free_port, skip_without, wait_for

FAST = {
    "SWITCHBOARD_TRUNK_RETRY_MIN": "1",
    "SWITCHBOARD_TRUNK_RETRY_MAX": "2",
    "SWITCHBOARD_TRUNK_QUALIFY_INTERVAL": "1",
}


class Providers:
    """The providers (PortSIP) dialect as the admin."""

    def __init__(self, url: str):
        r = httpx.post(
            url + "/api/account/credentials/verify", json={"username": "admin", "password": ADMIN_PASSWORD}, timeout=20
        )
        assert r.status_code == 200, r.text
        self.http = httpx.Client(base_url=url, headers={"access_token": r.json()["access_token"]}, timeout=20)

    def create(self, **fields) -> int:
        r = self.http.post("/api/providers/create", json=fields)
        assert r.status_code == 200, r.text
        return r.json()["id"]

    def show(self, pid: int) -> dict:
        r = self.http.get("/api/providers/show", params={"id": pid})
        assert r.status_code == 200, r.text
        return r.json()

    def status(self, pid: int) -> str:
        return self.show(pid)["status"]

    def providers(self) -> list[dict]:
        r = self.http.get("/api/providers/list", params={"pagination": 1, "pagesize": 100})
        assert r.status_code == 200, r.text
        return r.json()["providers"]

    def destroy(self, pid: int) -> None:
        r = self.http.post("/api/providers/destroy", json={"id": pid})
        assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def trunk_server(backend, tmp_path_factory):
    skip_without("kamailio")
    tmp = tmp_path_factory.mktemp(f"sip-trunks-{backend}")
    srv, pg = make_server(backend, tmp, **FAST)
    srv.start()
    providers, jade = Providers(srv.url), Jade(srv.url, "admin", ADMIN_PASSWORD)
    yield srv, providers, jade
    jade.close()
    code = srv.stop()
    log = srv.log()
    if pg:
        pg.drop()
    assert code == 0, f"serve did not stop cleanly ({code})"
    assert "Traceback" not in log, log


@pytest.fixture
def kamailio(tmp_path):
    skip_without("kamailio")
    kam = Kamailio(tmp_path / "kamailio").start()
    yield kam
    kam.stop()


def register_trunk(
    kam: Kamailio, *, auth_id: str = "trunkuser", password: str = "trunkpass", protocol: str = "UDP", **fields
) -> dict:
    return {
        "name": f"kam-{secrets.token_hex(4)}",
        "auth_mode": "REGISTER_AUTH",
        "protocol": protocol,
        "require_register": True,
        "hostname": "127.0.0.1",
        "port": kam.port,
        "auth_id": auth_id,
        "password": password,
        "reregister_interval": 60,
        **fields,
    }


def registry(jade: Jade, account: str) -> dict | None:
    r = jade.call("GET", f"/registries/{account}")
    return r.json()["result"] if r.status_code == 200 else None


def registry_accounts(jade: Jade) -> list[str]:
    return [x["account"] for x in jade.get("/registries")["list"]]


def wait_status(providers: Providers, pid: int, status: str, timeout: float) -> None:
    wait_for(lambda: providers.status(pid) == status, timeout, 0.2, what=f"provider {pid} {status}")


def test_register_auth_trunk_online_offline_online(trunk_server, kamailio):
    srv, providers, jade = trunk_server
    pid = providers.create(**register_trunk(kamailio))
    try:
        wait_status(providers, pid, "ONLINE", 10)
        account = f"trunkuser@127.0.0.1:{kamailio.port}"
        assert account in registry_accounts(jade)
        reg = registry(jade, account)
        assert reg["state"] == "Registered" and reg["username"] == "trunkuser", reg
        assert reg["host"] == "127.0.0.1" and reg["port"] == kamailio.port and reg["refresh"] == 60, reg
        assert reg["registration_time"] > 0
        seen = kamailio.registers()
        assert any(r.authorized and r.expires == "60" and r.proto == "udp" for r in seen), seen
        assert providers.show(pid)["password"] == "********"

        kamailio.stop()
        wait_status(providers, pid, "OFFLINE", 6)
        assert registry(jade, account)["state"] in ("Request Sent", "Rejected", "Unregistered")

        kamailio.start()
        wait_status(providers, pid, "ONLINE", 10)
        assert registry(jade, account)["state"] == "Registered"
    finally:
        providers.destroy(pid)


def test_wrong_password_stays_offline_and_is_rejected(trunk_server, kamailio):
    srv, providers, jade = trunk_server
    pid = providers.create(**register_trunk(kamailio, auth_id="wrongtrunk", password="not-the-password"))
    try:
        account = f"wrongtrunk@127.0.0.1:{kamailio.port}"
        wait_for(lambda: (registry(jade, account) or {}).get("state") == "Rejected", 10, 0.2, what="Rejected")
        for _ in range(10):  # and it does not come ONLINE through the retries
            assert providers.status(pid) == "OFFLINE"
            assert registry(jade, account)["state"] in ("Rejected", "Request Sent")
            time.sleep(0.3)
        assert len([r for r in kamailio.registers() if r.from_uri.startswith("sip:wrongtrunk@")]) >= 2
        # the right password through update: the engine restarts the registration and it comes ONLINE
        r = providers.http.post("/api/providers/update", json={"id": pid, "password": "trunkpass"})
        assert r.status_code == 200, r.text
        wait_status(providers, pid, "ONLINE", 10)
        assert registry(jade, account)["state"] == "Registered"
    finally:
        providers.destroy(pid)


def test_tcp_trunk_registers(trunk_server, kamailio):
    srv, providers, jade = trunk_server
    pid = providers.create(**register_trunk(kamailio, auth_id="tcptrunk", protocol="TCP"))
    try:
        wait_status(providers, pid, "ONLINE", 10)
        assert registry(jade, f"tcptrunk@127.0.0.1:{kamailio.port}")["state"] == "Registered"
        seen = [r for r in kamailio.registers() if r.from_uri.startswith("sip:tcptrunk@")]
        assert seen and all(r.proto == "tcp" for r in seen), seen
    finally:
        providers.destroy(pid)


def test_ip_auth_trunks_are_qualified_with_options(trunk_server, kamailio):
    srv, providers, jade = trunk_server
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # takes the OPTIONS, never answers
    silent.bind(("127.0.0.1", free_port()))
    silent_port = silent.getsockname()[1]
    up = providers.create(
        name=f"ip-{secrets.token_hex(4)}", auth_mode="IP_AUTH", protocol="UDP", hostname="127.0.0.1", port=kamailio.port
    )
    down = providers.create(
        name=f"ip-{secrets.token_hex(4)}", auth_mode="IP_AUTH", protocol="UDP", hostname="127.0.0.1", port=silent_port
    )
    try:
        wait_status(providers, up, "ONLINE", 10)
        silent.settimeout(10)
        data, _ = silent.recvfrom(65535)  # the qualify OPTIONS reached the silent peer...
        assert data.startswith(b"OPTIONS sip:127.0.0.1:"), data[:200]
        for _ in range(3):  # ...and nothing answering keeps it OFFLINE
            assert providers.status(down) == "OFFLINE"
            silent.recvfrom(65535)
        assert providers.status(down) == "OFFLINE"
        # IP_AUTH trunks do not register: not in /registries
        assert not [a for a in registry_accounts(jade) if a.endswith(f":{kamailio.port}")]
        kamailio.stop()
        wait_status(providers, up, "OFFLINE", 8)
    finally:
        providers.destroy(up)
        providers.destroy(down)
        silent.close()


def test_destroy_unregisters_with_expires_zero(trunk_server, kamailio):
    srv, providers, jade = trunk_server
    pid = providers.create(**register_trunk(kamailio, auth_id="gone"))
    account = f"gone@127.0.0.1:{kamailio.port}"
    wait_status(providers, pid, "ONLINE", 10)
    assert account in registry_accounts(jade)
    providers.destroy(pid)
    seen = wait_for(
        lambda: [
            r for r in kamailio.registers() if r.from_uri.startswith("sip:gone@") and r.expires == "0" and r.authorized
        ],
        5,
        what="REGISTER Expires: 0",
    )
    assert seen
    assert account not in registry_accounts(jade)
    assert registry(jade, account) is None
    assert pid not in [p["id"] for p in providers.providers()]
    r = providers.http.post("/api/providers/destroy", json={"id": pid})
    assert r.status_code == 400 and r.json()["error"]["message"] == "Invalid provider ID supplied."


def test_jade_trunk_is_a_provider(trunk_server, kamailio):
    srv, providers, jade = trunk_server
    body = register_trunk(kamailio, auth_id="jadetrunk", protocol="UDP")
    r = jade.call("POST", "/manager/trunks", json=body)
    assert r.status_code == 200, r.text
    try:
        (listed,) = [p for p in providers.providers() if p["name"] == body["name"]]
        assert listed["auth_mode"] == "REGISTER_AUTH" and listed["auth_id"] == "jadetrunk"
        assert listed["port"] == kamailio.port and listed["password"] == "********"
        wait_status(providers, listed["id"], "ONLINE", 10)
        view = jade.get(f"/manager/trunks/{body['name']}")
        assert view["id"] == listed["id"] and view["status"] == "ONLINE" and view["state"] == "Registered", view
        assert registry(jade, f"jadetrunk@127.0.0.1:{kamailio.port}")["state"] == "Registered"
    finally:
        r = jade.call("DELETE", f"/manager/trunks/{body['name']}")
        assert r.status_code == 200, r.text
    assert body["name"] not in [p["name"] for p in providers.providers()]
    wait_for(
        lambda: any(x.from_uri.startswith("sip:jadetrunk@") and x.expires == "0" for x in kamailio.registers()),
        5,
        what="jade delete unregisters",
    )
