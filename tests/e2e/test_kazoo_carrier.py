"""The kazoo support routes that talk to the carrier, against a real `switchboard serve` (SQLite and
PostgreSQL) and a real `switchboard carrier-sandbox` process: every example of
kazoo-support-api.txt for devices, phone numbers, subscriptions, usage and ports, and the
refusals (wrong level, unknown ids, invalid bodies, carrier down or slow → 502/504 with nothing
written). Devices' SIP credentials are then registered with by a real SIP client."""

from __future__ import annotations

import csv
import io
import secrets

import httpx
import pytest

from tests.conftest import free_port
from tests.e2e.kazoo_client import CarrierSandbox, Kazoo, cli_user, use_carrier
from tests.sip_peers import SipUdpClient

API_KEY = "sandbox-key-" + secrets.token_hex(8)
MDN = "+15550001111"
ESN = "270113177800000001"
MDN2 = "+14157487153"
ESN2 = "A0000041563752"
MASK = "********"

SUBSCRIPTIONS = [
    {
        "esn": ESN,
        "mdn": MDN,
        "sim": "01234567890123456789",
        "imsi": "9876543210",
        "msid": "012345678901234",
        "csa": "SFRSFR415",
        "plan": "260PLAN21",
        "features": ["international", "sip", "mms", "lte"],
        "model": {"name": "SAMSUNG L300 HANDSET KIT", "number": "SPHL300KTS", "manufacturer": "SAMSUNG"},
        "activation_date": 63648957842,
        "suspended": False,
        "carrier": "sprint",
    },
    {
        "esn": ESN2,
        "mdn": MDN2,
        "sim": None,
        "imsi": None,
        "msid": "000004156375241",
        "csa": "SFRSFR415",
        "plan": "260PLAN1",
        "features": ["international", "sip", "mms", "tethering"],
        "model": None,
        "activation_date": 63746871056,
        "suspended": False,
        "carrier": "sprint",
    },
    # a subscription without a device (no ESN): importing it creates no device
    {
        "esn": None,
        "mdn": "+15550009999",
        "sim": "89014103211118510720",
        "imsi": "310410111851072",
        "msid": "000005550009999",
        "csa": "SFRSFR415",
        "plan": "260PLAN1",
        "features": ["sip"],
        "model": None,
        "activation_date": 63746871000,
        "suspended": False,
        "carrier": "sprint",
    },
]
USAGE = {
    "201611": {"+15550123456": 162324323, "+15556541490": 25670000, MDN: 2031380},
    "201701": {MDN: 2031380, MDN2: 1988955671, "+15550003331": 800087, "+15550003332": 4850649},
}


@pytest.fixture(scope="module")
def sandbox(backend, tmp_path_factory):
    """A carrier per backend: the tests change its port messages, so a run on one backend must not
    see what the other's did (whatever order the tests are run in)."""
    port_messages = [
        {
            "port_id": "port-" + secrets.token_hex(4),
            "mdn": "+15557770001",
            "esn": ESN,
            "code": "submitted",
            "message": "port request received",
            "timestamp": 63750000000,
        }
    ]
    sb = CarrierSandbox(
        tmp_path_factory.mktemp("carrier"),
        {
            "api_key": API_KEY,
            "carrier": "sprint",
            "subscriptions": SUBSCRIPTIONS,
            "usage": USAGE,
            "port_messages": port_messages,
        },
    ).start()
    sb.port_messages = port_messages
    yield sb
    sb.stop()


def sandbox_admin(sandbox, method: str, path: str, **kw) -> httpx.Response:
    return sandbox.admin(method, path, **kw)


@pytest.fixture(scope="module")
def kz(server, sandbox):
    k = Kazoo.login(server)
    k.master_id = use_carrier(k, sandbox)
    yield k
    k.close()


@pytest.fixture(scope="module")
def accounts(kz):
    return [
        kz.ok("PUT", "/accounts", 201, json={"data": {"name": f"carrier-acct-{i}-{secrets.token_hex(3)}"}})["data"][
            "id"
        ]
        for i in range(2)
    ]


@pytest.fixture(scope="module")
def device(kz, accounts):
    """The spec's device import example (mdn and esn both given: mdn wins)."""
    body = {
        "data": {
            "esn": "ignored-because-mdn-wins",
            "mdn": MDN,
            "name": "Joe's Mobile Phone",
            "voice": {
                "protocol": "sip",
                "sip": {
                    "realm": "sip.mycompany.com",
                    "username": f"soft{secrets.token_hex(3)}",
                    "password": "abcdef123456",
                },
            },
        },
        "carrier": "sprint",
    }
    env = kz.ok("PUT", f"/support/accounts/{accounts[0]}/devices/import", 201, json=body)
    return env, body


def test_device_import_spec_example(device, accounts):
    env, body = device
    assert env["carrier"] == "sprint"
    d = env["data"]
    assert len(d["id"]) == 32 and d["name"] == "Joe's Mobile Phone"
    assert d["model"] == {"name": "SAMSUNG L300 HANDSET KIT", "number": "SPHL300KTS", "manufacturer": "SAMSUNG"}
    sub = d["subscription"]
    assert sub["mdn"] == MDN and sub["csa"] == "SFRSFR415" and sub["sim"] == "01234567890123456789"
    assert sub["imsi"] == "9876543210" and sub["plan"] == "260PLAN21"
    assert sub["features"] == ["international", "sip", "mms", "lte"]
    assert sub["esn"] == ESN and sub["carrier_data"] == {"msid": "012345678901234", "csa": "SFRSFR415"}
    # no data policy given: no cap (the spec's example values)
    assert d["data"] == {"caps": {"blocking": {"cap": 0}, "throttling": {"cap": 0, "rate": "256k"}}}
    # the SIP password is never echoed
    assert d["voice"]["sip"] == {**body["data"]["voice"]["sip"], "password": MASK}
    assert d["voice"]["protocol"] == "sip"


def test_import_refusals(kz, accounts, device):
    path = f"/support/accounts/{accounts[1]}/devices/import"
    kz.err("PUT", path, 409, "conflict", json={"data": {"mdn": MDN}})  # already a device (in another account)
    body = kz.err("PUT", path, 400, "validation error", json={"data": {"name": "no number"}})
    assert "required" in body["data"]["mdn"] and "required" in body["data"]["esn"]
    kz.err("PUT", path, 404, "bad_identifier", json={"data": {"mdn": "+15550000000"}})  # carrier knows none
    kz.err("PUT", f"/support/accounts/{'0' * 32}/devices/import", 404, "bad_identifier", json={"data": {"mdn": MDN}})
    kz.err(
        "PUT",
        path,
        400,
        "validation error",
        json={"data": {"mdn": "+15551231234", "voice": {"sip": {"username": "has space", "password": "x"}}}},
    )
    name, password = cli_user(kz.server, "master")
    master = Kazoo.login(kz.server, name, password)
    master.err("PUT", path, 403, "forbidden", json={"data": {"mdn": MDN2}})
    master.close()


def test_top_device_lookup_by_mdn(kz, device, accounts):
    env = kz.ok("GET", f"/support/phone_numbers/{MDN}/device")
    assert env["account_id"] == accounts[0] and env["carrier"] == "sprint"
    assert env["data"] == device[0]["data"]
    # the same number written without + or country code
    assert kz.ok("GET", "/support/phone_numbers/5550001111/device")["data"]["id"] == device[0]["data"]["id"]
    kz.err("GET", "/support/phone_numbers/+15559998888/device", 404, "bad_identifier")


def test_subscription_from_carrier_by_mdn_and_esn(kz):
    expect = {
        "esn": ESN,
        "mdn": MDN,
        "sim": "01234567890123456789",
        "imsi": "9876543210",
        "plan": "260PLAN21",
        "features": ["international", "sip", "mms", "lte"],
        "carrier_data": {"msid": "012345678901234", "csa": "SFRSFR415"},
    }
    env = kz.ok("GET", f"/support/phone_numbers/{MDN}/subscription", params={"carrier": "sprint"})
    assert env["data"] == expect and env["carrier"] == "sprint"
    assert kz.ok("GET", f"/support/devices/{ESN}/subscription")["data"] == expect
    kz.err("GET", "/support/devices/NOSUCHESN/subscription", 404, "bad_identifier")


def test_patch_device_spec_example(kz, device, accounts):
    dev = device[0]["data"]
    path = f"/support/accounts/{accounts[0]}/devices/{dev['id']}"
    env = kz.ok(
        "PATCH",
        path,
        json={"data": {"name": "Bob's Mobile Phone", "model": {"manufacturer": "MOTOROLA"}}, "recursive": True},
    )
    d = env["data"]
    assert d["name"] == "Bob's Mobile Phone"
    assert d["model"] == {"name": "SAMSUNG L300 HANDSET KIT", "number": "SPHL300KTS", "manufacturer": "MOTOROLA"}
    assert isinstance(d["additional_properties"]["last_manual_update"], int)
    assert d["additional_properties"]["last_manual_update"] > 63_000_000_000  # Gregorian seconds
    # without recursive, a top-level key is replaced as a whole
    d2 = kz.ok("PATCH", path, json={"data": {"model": {"manufacturer": "MOTOROLA"}}})["data"]
    assert d2["model"] == {"manufacturer": "MOTOROLA"}
    # the spec's data-caps shape, and any other field
    caps = {"blocking": {"cap": 2000000000}, "throttling": {"cap": 1800000000, "rate": "256k"}}
    d3 = kz.ok("PATCH", path, json={"data": {"data": caps, "model": dev["model"]}})["data"]
    assert d3["data"] == caps and d3["voice"]["sip"]["password"] == MASK
    kz.err(
        "PATCH",
        f"/support/accounts/{accounts[1]}/devices/{dev['id']}",
        404,
        "bad_identifier",
        json={"data": {"name": "x"}},
    )
    kz.err(
        "PATCH", path, 400, "validation error", json={"data": {"voice": {"sip": {"username": 5}}}, "recursive": True}
    )
    assert kz.ok("GET", f"/support/phone_numbers/{MDN}/device")["data"]["data"] == caps


def test_device_sip_account_registers(kz, server, device, accounts):
    """The device's voice.sip credentials are a SIP account of the registrar (digest)."""
    sip = device[1]["data"]["voice"]["sip"]
    with SipUdpClient(server.sip_port) as c:
        ok = c.register(sip["username"], sip["password"])
        assert ok is not None and ok.status == 200, ok
    with SipUdpClient(server.sip_port) as c:
        bad = c.register(sip["username"], "wrong-password")
        assert bad is not None and bad.status == 403, bad
    # a new password by PATCH takes effect at once
    path = f"/support/accounts/{accounts[0]}/devices/{device[0]['data']['id']}"
    kz.ok("PATCH", path, json={"data": {"voice": {"sip": {"password": "n3w-pass"}}}, "recursive": True})
    with SipUdpClient(server.sip_port) as c:
        assert c.register(sip["username"], "n3w-pass").status == 200
    with SipUdpClient(server.sip_port) as c:
        assert c.register(sip["username"], sip["password"]).status == 403


def test_subscription_lookup_import_patch_move_delete(kz, accounts):
    # lookup before import: the carrier's record, not in the database
    env = kz.ok("POST", "/support/subscriptions/lookup", json={"data": {"esn": ESN2}, "carrier": "sprint"})
    cd = env["data"]["carrier_data"]
    assert cd == {
        "esn": ESN2,
        "mdn": MDN2,
        "sim": None,
        "imsi": None,
        "plan": "260PLAN1",
        "features": ["international", "sip", "mms", "tethering"],
        "carrier": "sprint",
        "carrier_data": {"msid": "000004156375241", "csa": "SFRSFR415"},
        "activation_date": 63746871056,
        "suspended": False,
    }
    assert env["data"]["account_id"] is None and env["data"]["document"] is None
    # import (tied to a device: the device comes along with device_data)
    body = {
        "data": {
            "mdn": MDN2,
            "device_data": {
                "name": "Samsung 013",
                "voice": {
                    "sip": {
                        "realm": "sip.mycompany.com",
                        "username": f"s{secrets.token_hex(3)}",
                        "password": "abcdef123456",
                    }
                },
                "data": {"blocking": {"cap": 0}, "throttling": {"cap": 0, "rate": "64k"}},
            },
        },
        "carrier": "sprint",
    }
    env = kz.ok("PUT", f"/support/accounts/{accounts[0]}/subscriptions/import", 201, json=body)
    sub = env["data"]
    assert env["carrier"] == "sprint"
    assert {
        k: sub[k]
        for k in ("esn", "sim", "mdn", "imsi", "plan", "features", "suspended", "carrier_data", "carrier_name")
    } == {
        "esn": ESN2,
        "sim": None,
        "mdn": MDN2,
        "imsi": None,
        "plan": "260PLAN1",
        "features": ["international", "sip", "mms", "tethering"],
        "suspended": False,
        "carrier_data": {"msid": "000004156375241", "csa": "SFRSFR415"},
        "carrier_name": "sprint",
    }
    dev = kz.ok("GET", f"/support/phone_numbers/{MDN2}/device")
    assert dev["account_id"] == accounts[0] and dev["data"]["name"] == "Samsung 013"
    assert dev["data"]["data"] == {"blocking": {"cap": 0}, "throttling": {"cap": 0, "rate": "64k"}}
    kz.err("PUT", f"/support/accounts/{accounts[1]}/subscriptions/import", 409, "conflict", json=body)
    # lookup now shows the document (private fields) and the account
    env = kz.ok("POST", "/support/subscriptions/lookup", json={"data": {"mdn": MDN2}})
    doc = env["data"]["document"]
    assert env["data"]["account_id"] == accounts[0] and doc["_id"] == sub["id"]
    assert doc["pvt_type"] == "subscription" and doc["pvt_carrier_name"] == "sprint"
    assert doc["pvt_mvno"] == "2600hz_sandbox" and doc["pvt_cluster_id"] == kz.master_id
    assert doc["pvt_created"] > 63_000_000_000 and doc["pvt_modified"] >= doc["pvt_created"]
    # patch (the spec's example)
    sp = f"/support/accounts/{accounts[0]}/subscriptions/{sub['id']}"
    patched = kz.ok(
        "PATCH",
        sp,
        json={
            "data": {
                "additional_properties": {"name": "New Subscription Name"},
                "mdn": "+15555555555",
                "plan": "fakeplan",
            },
            "recursive": True,
        },
    )["data"]
    assert patched["mdn"] == "+15555555555" and patched["plan"] == "fakeplan"
    assert patched["additional_properties"]["name"] == "New Subscription Name"
    assert isinstance(patched["additional_properties"]["last_manual_update"], int)
    assert patched["features"] == sub["features"] and patched["carrier_name"] == "sprint"
    kz.err("PATCH", sp, 400, "validation error", json={"data": {"features": "not-a-list"}})
    # move to the other account (the spec's example sends target_account_id beside data): the device moves too
    moved = kz.ok("POST", f"{sp}/move", json={"target_account_id": accounts[1]})["data"]
    assert moved["id"] == sub["id"]
    assert kz.ok("GET", f"/support/phone_numbers/{MDN2}/device")["account_id"] == accounts[1]
    kz.err("PATCH", sp, 404, "bad_identifier", json={"data": {"plan": "x"}})  # no longer in accounts[0]
    sp1 = f"/support/accounts/{accounts[1]}/subscriptions/{sub['id']}"
    kz.err("POST", f"{sp1}/move", 400, "validation error", json={"data": {"target_account_id": "f" * 32}})
    kz.err(
        "POST",
        f"{sp1}/move",
        400,
        "validation error",
        json={"data": {"target_account_id": accounts[0], "target_cluster_id": "nope"}},
    )
    # delete with cascade: the device goes too
    deleted = kz.ok("DELETE", f"{sp1}?cascade=true", json={"data": {}})["data"]
    assert deleted["id"] == sub["id"] and deleted["mdn"] == "+15555555555"
    kz.err("GET", f"/support/phone_numbers/{MDN2}/device", 404, "bad_identifier")
    kz.err("DELETE", sp1, 404, "bad_identifier")


def test_subscription_without_device_and_delete_keeps_device(kz, accounts):
    env = kz.ok(
        "PUT",
        f"/support/accounts/{accounts[1]}/subscriptions/import",
        201,
        json={"data": {"sim": "89014103211118510720"}},
    )
    assert env["data"]["esn"] is None and env["data"]["mdn"] == "+15550009999"
    kz.err("GET", "/support/phone_numbers/+15550009999/device", 404, "bad_identifier")
    sub_id = env["data"]["id"]
    assert kz.ok("DELETE", f"/support/accounts/{accounts[1]}/subscriptions/{sub_id}")["data"]["id"] == sub_id


def _usage_owner(kz, accounts):
    return kz.ok("GET", f"/support/phone_numbers/{MDN}/device")["account_id"]


def test_usage_unknown_numbers(kz, device):
    env = kz.ok("GET", "/support/usage/unknown_numbers", params={"month": "201611"})
    assert env["data"] == {
        "from": "201611",
        "to": "201611",
        "total": 162324323 + 25670000,
        "per_mdn": {"+15550123456": 162324323, "+15556541490": 25670000},
    }
    assert kz.ok("GET", "/support/usage/unknown_numbers/201611")["data"] == env["data"]
    # a range with an empty month (201612 has no usage at all)
    data = kz.ok("GET", "/support/usage/unknown_numbers", params={"from": "201611", "to": "201701"})["data"]
    assert data["from"] == "201611" and data["to"] == "201701" and data["empty_months"] == ["201612"]
    assert data["per_mdn"]["+15550003331"] == 800087 and MDN not in data["per_mdn"]
    assert data["total"] == sum(data["per_mdn"].values())
    kz.err("GET", "/support/usage/unknown_numbers", 400, "validation error", params={"from": "2016-11"})
    kz.err("GET", "/support/usage/unknown_numbers", 400, "validation error", params={"from": "201702", "to": "201701"})


def test_usage_audit_json_and_csv(kz, device, accounts):
    owner = _usage_owner(kz, accounts)
    data = kz.ok("GET", "/support/usage/audit/201701")["data"]
    assert data["from"] == data["to"] == "201701"
    assert data["accounts"][owner] == {MDN: 2031380}
    unknown = data["accounts"]["unknown_account"]
    assert unknown["+15550003331"] == 800087 and unknown["+15550003332"] == 4850649
    assert data["total"] == sum(sum(a.values()) for a in data["accounts"].values()) == sum(USAGE["201701"].values())
    # CSV: the /csv URL, and Accept: text/csv
    for path, headers in (
        ("/support/usage/audit/201701/csv", {}),
        ("/support/usage/audit/201701", {"Accept": "text/csv"}),
    ):
        r = kz.call("GET", path, headers=headers)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), r.text
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert set(rows[0]) == {"month", "account_id", "mdn", "bytes"}
        got = {(row["account_id"], row["mdn"]): int(row["bytes"]) for row in rows}
        assert got[(owner, MDN)] == 2031380 and got[("unknown_account", "+15550003331")] == 800087
        assert len(rows) == len(USAGE["201701"])


def test_large_audit_streams(kz, sandbox):
    """A month of 30,000 numbers: the CSV arrives in many chunks and every row is there."""
    usage = {f"+1666{n:07d}": n + 1 for n in range(30_000)}
    sandbox_admin(sandbox, "PUT", "/usage/209901", json=usage)
    with kz.http.stream("GET", "/support/usage/audit/209901/csv", headers=kz.headers()) as r:
        assert r.status_code == 200
        chunks = list(r.iter_raw())
    text = b"".join(chunks).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 30_000 and len(chunks) > 1
    assert sum(int(row["bytes"]) for row in rows) == sum(usage.values())
    assert {row["account_id"] for row in rows} == {"unknown_account"}


def test_ports_poll_and_status(kz, device, accounts, sandbox):
    name, password = cli_user(kz.server, "master")
    master = Kazoo.login(kz.server, name, password)
    msg = sandbox.port_messages[0]
    env = master.ok("POST", "/support/ports/poll", json={"data": {}})
    ports = {p["id"]: p for p in env["data"]["ports"]}
    assert msg["port_id"] in ports and ports[msg["port_id"]]["status"]["code"] == "submitted"
    # polling again brings nothing new (no message doubled)
    again = master.ok("POST", "/support/ports/poll", json={"data": {}})["data"]
    assert again["messages"] == 0 and again["ports"] == []
    # the carrier sends more: pending then completed → the device takes the ported number
    new = [
        {"port_id": msg["port_id"], "mdn": msg["mdn"], "esn": ESN, "code": "pending", "timestamp": 63750000100},
        {"port_id": msg["port_id"], "mdn": msg["mdn"], "esn": ESN, "code": "completed", "timestamp": 63750000200},
    ]
    sandbox_admin(sandbox, "POST", "/port_messages", json=new)
    env = master.ok("POST", "/support/ports/poll", json={"data": {}})["data"]
    assert env["messages"] == 2
    port = env["ports"][0]
    assert [h["code"] for h in port["history"]] == ["submitted", "pending", "completed"]
    dev = kz.ok("GET", f"/support/phone_numbers/{msg['mdn']}/device")["data"]
    assert dev["id"] == device[0]["data"]["id"] and dev["port_in"]["status"] == "completed"
    kz.err("GET", f"/support/phone_numbers/{MDN}/device", 404, "bad_identifier")
    # manual status: forced_update added and cannot be overwritten
    st = master.ok(
        "POST",
        f"/support/ports/in/{msg['port_id']}/status",
        json={"data": {"code": "canceled", "source": "carrier", "forced_update": False}},
    )["data"]
    assert st["status"]["code"] == "canceled" and st["status"]["forced_update"] is True
    assert st["status"]["source"] == "carrier"
    assert kz.ok("GET", f"/support/phone_numbers/{msg['mdn']}/device")["data"]["port_in"]["status"] == "canceled"
    body = master.err(
        "POST", f"/support/ports/in/{msg['port_id']}/status", 400, "validation error", json={"data": {"code": "done"}}
    )
    assert "enum" in body["data"]["code"]
    master.err("POST", "/support/ports/in/nope/status", 404, "bad_identifier", json={"data": {"code": "completed"}})
    master.close()


def _count_devices(kz, accounts) -> int:
    n = 0
    for mdn in (MDN, "+15557770001", MDN2):
        if kz.call("GET", f"/support/phone_numbers/{mdn}/device").status_code == 200:
            n += 1
    return n


def test_carrier_failures_are_502_504_and_write_nothing(kz, accounts, sandbox):
    path = f"/support/accounts/{accounts[1]}/subscriptions/import"
    before = _count_devices(kz, accounts)
    sandbox_admin(sandbox, "POST", "/faults", json={"status": 503, "delay_seconds": 0, "count": None})
    try:
        body = kz.err("PUT", path, 502, "bad_gateway", json={"data": {"mdn": MDN2}})
        assert "carrier" in body["data"]["message"]
        kz.err("GET", "/support/usage/audit/201701", 502, "bad_gateway")
        kz.err("GET", "/support/usage/audit/201701/csv", 502, "bad_gateway")
    finally:
        sandbox_admin(sandbox, "DELETE", "/faults")
    sandbox_admin(sandbox, "POST", "/faults", json={"status": None, "delay_seconds": 30, "count": None})
    try:
        kz.err("PUT", path, 504, "gateway_timeout", json={"data": {"mdn": MDN2}})
    finally:
        sandbox_admin(sandbox, "DELETE", "/faults")
    assert _count_devices(kz, accounts) == before
    # a cluster whose carrier is not listening at all
    cid = secrets.token_hex(16)
    kz.ok(
        "PUT",
        f"/support/clusters/{cid}",
        201,
        json={"data": {"mvno_id": "x", "api_url": f"http://127.0.0.1:{free_port()}", "api_key": "k"}},
    )
    down = Kazoo(kz.server, kz.token, cluster=cid)
    down.err("GET", f"/support/phone_numbers/{MDN}/subscription", 502, "bad_gateway")
    down.err("PUT", path, 502, "bad_gateway", json={"data": {"mdn": MDN2}})
    kz.ok("DELETE", f"/support/clusters/{cid}")
    # the carrier refusing our key
    kz.ok(
        "PUT",
        f"/support/clusters/{cid}",
        201,
        json={"data": {"mvno_id": "x", "api_url": sandbox.url, "api_key": "wrong-key"}},
    )
    Kazoo(kz.server, kz.token, cluster=cid).err("GET", f"/support/phone_numbers/{MDN}/subscription", 502, "bad_gateway")
    # the right key, then the mask sent back: the key is kept and the carrier still answers
    kz.ok(
        "PUT",
        f"/support/clusters/{cid}",
        json={"data": {"mvno_id": "x", "api_url": sandbox.url, "api_key": sandbox.api_key}},
    )
    shown = kz.ok(
        "PUT",
        f"/support/clusters/{cid}",
        json={"data": {"mvno_id": "x", "api_url": sandbox.url, "api_key": "********"}},
    )["data"]
    assert shown["api_key"] == "********"
    Kazoo(kz.server, kz.token, cluster=cid).ok("GET", f"/support/phone_numbers/{MDN}/subscription")
    kz.ok("DELETE", f"/support/clusters/{cid}")
    assert _count_devices(kz, accounts) == before
