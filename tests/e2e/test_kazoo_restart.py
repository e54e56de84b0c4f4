"""What the kazoo dialect acknowledged is there after SIGKILL and a new start: accounts, cluster
documents (the key still decrypts: the carrier is reachable with it), routing documents, devices
and subscriptions — and a device's SIP account is what the registrar loads on start."""

from __future__ import annotations

import secrets
import signal

from tests.e2e.kazoo_client import Kazoo, use_carrier
from tests.e2e.test_kazoo_carrier import MDN, sandbox  # noqa: F401 - the sandbox fixture
from tests.sip_peers import SipUdpClient, wait_for


def test_kazoo_documents_survive_sigkill(fresh_server, sandbox):  # noqa: F811
    fresh_server.extra_env["SWITCHBOARD_KAZOO_PORT_POLL_SECONDS"] = "1"  # the regular poll, made quick
    srv = fresh_server.start()
    kz = Kazoo.login(srv)
    use_carrier(kz, sandbox, "restart")
    acct = kz.ok("PUT", "/accounts", 201, json={"data": {"name": "restart-acct"}})["data"]
    cc = kz.ok("PUT", "/support/routing/customer_clusters/rc1", 201, json={"data": {"name": "RC"}})["data"]
    ms = kz.ok("PUT", "/support/routing/media_servers", 201, json={"data": {"name": "MS"}})["data"]
    sbc = kz.ok(
        "PUT", "/support/routing/carrier_sbcs", 201, json={"data": {"name": "SBC", "mobile_media_server": ms["id"]}}
    )["data"]
    user, password = f"rs{secrets.token_hex(3)}", "restart-pass-1"
    dev = kz.ok(
        "PUT",
        f"/support/accounts/{acct['id']}/devices/import",
        201,
        json={"data": {"mdn": MDN, "voice": {"sip": {"username": user, "password": password}}}},
    )["data"]
    # the background poll records the carrier's port messages without being asked
    port_id = sandbox.port_messages[0]["port_id"]
    wait_for(
        lambda: kz.call("GET", f"/support/ports/in/{port_id}").status_code == 200,
        15,
        what="the port poller to record the carrier's port message",
    )
    before = {
        "clusters": kz.ok("GET", "/support/clusters")["data"],
        "account": kz.ok("GET", f"/accounts/{acct['id']}")["data"],
        "cc": kz.ok("GET", "/support/routing/customer_clusters/rc1")["data"],
        "sbc": kz.ok("GET", f"/support/routing/carrier_sbcs/{sbc['id']}")["data"],
        "device": kz.ok("GET", f"/support/phone_numbers/{MDN}/device")["data"],
        "port": kz.ok("GET", f"/support/ports/in/{port_id}")["data"],
    }
    assert before["cc"] == cc and before["device"] == dev
    srv.stop(signal.SIGKILL)
    srv.start()
    kz2 = Kazoo(srv, kz.token)  # the token survives too
    after = {
        "clusters": kz2.ok("GET", "/support/clusters")["data"],
        "account": kz2.ok("GET", f"/accounts/{acct['id']}")["data"],
        "cc": kz2.ok("GET", "/support/routing/customer_clusters/rc1")["data"],
        "sbc": kz2.ok("GET", f"/support/routing/carrier_sbcs/{sbc['id']}")["data"],
        "device": kz2.ok("GET", f"/support/phone_numbers/{MDN}/device")["data"],
        "port": kz2.ok("GET", f"/support/ports/in/{port_id}")["data"],
    }
    assert after == before
    # the stored (encrypted) carrier key still works
    assert kz2.ok("GET", f"/support/phone_numbers/{MDN}/subscription")["data"]["mdn"] == MDN
    # the registrar loaded the device's account on start
    with SipUdpClient(srv.sip_port) as c:
        assert c.register(user, password).status == 200
    kz.close()
    kz2.close()
