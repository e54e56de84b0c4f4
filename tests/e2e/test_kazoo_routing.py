"""The kazoo dialect against a real `switchboard serve` (SQLite and PostgreSQL): authentication,
the envelope and error bodies, authentication levels, cluster documents and the routing documents
(customer clusters, carrier SBCs, media servers) replayed from kazoo-support-api.txt's examples."""

from __future__ import annotations

import copy
import secrets
import subprocess

import pytest

from tests.conftest import ADMIN_PASSWORD, BIN
from tests.e2e.kazoo_client import Kazoo, cli_user, md5_credentials


@pytest.fixture(scope="module")
def kz(server):
    k = Kazoo.login(server)
    yield k
    k.close()


@pytest.fixture(scope="module")
def master(server):
    name, password = cli_user(server, "master")
    k = Kazoo.login(server, name, password)
    yield k
    k.close()


def test_user_auth_forms(server, kz):
    # username/password form, without KAZOO's data wrapper too
    k = Kazoo(server)
    r = k.call("PUT", "/user_auth", json={"username": "admin", "password": ADMIN_PASSWORD}, auth=False)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "success" and len(body["auth_token"]) >= 32
    assert {"account_id", "owner_id", "is_reseller"} <= set(body["data"])
    # md5 credentials form (KAZOO's), for a user made by the CLI (its credentials are kept at creation)
    name, password = cli_user(server, "super_master")
    r = k.call("PUT", "/user_auth", json={"data": {"credentials": md5_credentials(name, password)}}, auth=False)
    assert r.status_code == 201, r.text
    token = r.json()["auth_token"]
    assert Kazoo(server, token).ok("GET", "/support/routing/customer_clusters")["data"] is not None
    # with an account_name: the account must exist
    acct = kz.ok("PUT", "/accounts", 201, json={"data": {"name": f"acct-{secrets.token_hex(4)}"}})["data"]
    r = k.call(
        "PUT",
        "/user_auth",
        json={"data": {"credentials": md5_credentials(name, password), "account_name": acct["name"]}},
        auth=False,
    )
    assert r.status_code == 201 and r.json()["data"]["account_id"] == acct["id"]
    k.err(
        "PUT",
        "/user_auth",
        401,
        "invalid_credentials",
        auth=False,
        json={"data": {"credentials": md5_credentials(name, password), "account_name": "no-such-account"}},
    )
    # wrong credentials, wrong password, bad bodies
    k.err(
        "PUT",
        "/user_auth",
        401,
        "invalid_credentials",
        auth=False,
        json={"data": {"credentials": md5_credentials(name, "wrong")}},
    )
    k.err(
        "PUT",
        "/user_auth",
        401,
        "invalid_credentials",
        auth=False,
        json={"data": {"username": "admin", "password": "wrong"}},
    )
    body = k.err("PUT", "/user_auth", 400, "validation error", auth=False, json={"data": {}})
    assert "required" in body["data"]["credentials"]
    k.err("PUT", "/user_auth", 400, "invalid request", auth=False, content=b"{not json")
    k.close()


def test_tokens_and_levels(server, kz, master):
    anon = Kazoo(server)
    anon.err("GET", "/support/routing/media_servers", 401, "invalid_credentials")
    Kazoo(server, "x" * 40).err("GET", "/support/routing/media_servers", 401, "invalid_credentials")
    # a master user: 403 on super_master routes, allowed on master routes (ports)
    body = master.err("GET", "/support/routing/media_servers", 403, "forbidden")
    assert body["auth_token"] == master.token
    master.err(
        "PUT",
        "/support/clusters/" + secrets.token_hex(16),
        403,
        "forbidden",
        json={"data": {"mvno_id": "m", "api_url": "http://127.0.0.1:9", "api_key": "k"}},
    )
    master.err(
        "POST",
        "/support/ports/in/no-such-port/status",
        404,
        "bad_identifier",
        json={"data": {"code": "completed", "source": "carrier"}},
    )
    # a plain user: 403 even on master routes
    name, password = cli_user(server, "user")
    user = Kazoo.login(server, name, password)
    user.err("POST", "/support/ports/in/no-such-port/status", 403, "forbidden", json={"data": {"code": "completed"}})
    user.close()
    # another dialect's token works here (one token service)
    jade = server.client(user="admin").post("/v1/admin/login")
    assert jade.status_code == 200, jade.text
    assert Kazoo(server, jade.json()["result"]["authtoken"]).ok("GET", "/support/routing/customer_clusters")


def test_errors_in_kazoo_format(kz):
    body = kz.err("GET", "/support/no/such/route", 404, "not_found")
    assert body["auth_token"] == kz.token
    kz.err("DELETE", "/support/routing/carrier_sbcs", 405, "invalid_method")
    kz.err("GET", "/support/routing/carrier_sbcs/" + "0" * 32, 404, "bad_identifier")
    kz.err("PUT", "/support/routing/carrier_sbcs", 400, "invalid request", content=b"[1,2]")
    kz.err("PUT", "/support/routing/carrier_sbcs", 400, "invalid request", content=b'{"data": "\\u0000"}')
    r = kz.call("GET", "/support/routing/carrier_sbcs", headers={"X-Request-ID": "req-123"})
    assert r.json()["request_id"] == "req-123" and r.headers["x-request-id"] == "req-123"


CUSTOMER_CLUSTER = {
    "owner": "2600hz",
    "name": "Test Cluster",
    "ips": {
        "inbound": {"east": ["0.0.0.1"], "central": ["0.0.1.1"], "west": ["0.0.2.1"]},
        "outbound": {"east": ["0.0.0.2"], "central": ["0.0.1.2"], "west": ["0.0.2.2"]},
    },
    "randomize_routing": False,
}


def test_customer_clusters_spec_examples(kz):
    cid = secrets.token_hex(16)
    path = f"/support/routing/customer_clusters/{cid}"
    created = kz.ok("PUT", path, 201, json={"data": CUSTOMER_CLUSTER})["data"]
    assert created == {"id": cid, **CUSTOMER_CLUSTER}
    assert kz.ok("GET", path)["data"] == created
    kz.err("PUT", path, 409, "conflict", json={"data": CUSTOMER_CLUSTER})
    listed = kz.ok("GET", "/support/routing/customer_clusters")["data"]
    assert {"id": cid, "name": "Test Cluster", "owner": "2600hz"} in listed
    assert all(set(item) <= {"id", "name", "owner"} for item in listed)
    # POST replaces (the spec's update example)
    update = copy.deepcopy(CUSTOMER_CLUSTER)
    update["ips"]["outbound"] = {
        "east": ["0.0.0.2", "0.0.0.3"],
        "central": ["0.0.1.2", "0.0.1.3"],
        "west": ["0.0.2.2", "0.0.2.3"],
    }
    assert kz.ok("POST", path, json={"data": update})["data"] == {"id": cid, **update}
    # PATCH deep-merges: east replaced, central and west kept
    patched = kz.ok(
        "PATCH", path, json={"data": {"ips": {"outbound": {"east": ["1.1.1.2", "1.1.1.3"]}}, "randomize_routing": True}}
    )["data"]
    assert patched["ips"]["outbound"] == {
        "east": ["1.1.1.2", "1.1.1.3"],
        "central": ["0.0.1.2", "0.0.1.3"],
        "west": ["0.0.2.2", "0.0.2.3"],
    }
    assert patched["ips"]["inbound"] == CUSTOMER_CLUSTER["ips"]["inbound"] and patched["randomize_routing"] is True
    # null deletes a key
    assert "owner" not in kz.ok("PATCH", path, json={"data": {"owner": None}})["data"]
    kz.ok("PATCH", path, json={"data": {"owner": "2600hz"}})
    # invalid: nothing written
    body = kz.err("PATCH", path, 400, "validation error", json={"data": {"ips": {"inbound": {"east": ["nope"]}}}})
    assert "format" in body["data"]["ips.inbound.east.0"]
    kz.err("POST", path, 400, "validation error", json={"data": {"owner": "x"}})  # name required
    assert kz.ok("GET", path)["data"] == patched
    deleted = kz.ok("DELETE", path)["data"]
    assert deleted == patched
    kz.err("GET", path, 404, "bad_identifier")
    kz.err("POST", path, 404, "bad_identifier", json={"data": CUSTOMER_CLUSTER})


def _sbc(media_server: str, **over) -> dict:
    return {
        "name": "Dummy SBC",
        "location": {"zone": "west", "state": "CA", "city": "San Francisco"},
        "ips": ["1.2.3.4"],
        "mobile_media_server": media_server,
        "call_directions": [
            {"direction": "from_mobile_device", "headers": {"variable_sip_h_P-Served-User": "sescase=orig"}},
            {"direction": "from_pstn", "headers": {"variable_sip_h_P-Served-User": "sescase=term"}},
        ],
        "number_formatting": {
            "from_mobile_device": {"to_number": {"pattern": "/^(?:467)?([0-9]+)$/", "replace": "$1"}},
            "from_pstn": {"to_number": {"pattern": "/^(?:467)?([0-9]+)$/", "replace": "$1"}},
            "to_mobile_device": {"to_number": {"pattern": "/^([0-9]+)$/", "replace": "99999$1"}},
        },
        **over,
    }


def _media_server(sbcs: list[str], **over) -> dict:
    return {
        "name": "Dummy Media Server",
        "location": {"zone": "west", "state": "CA", "city": "San Francisco"},
        "interfaces": {
            "carrier_mpls": {"sprint": "sipinterface_sprint"},
            "authenticated_connection": "sipinterface_to_customer",
            "unauthenticated_connection": "sipinterface_sprint_did",
        },
        "carrier_sbc_priority": {"sprint": sbcs},
        "top_ips": ["10.26.254.254", "10.26.254.253"],
        **over,
    }


def test_carrier_sbcs_and_media_servers_spec_examples(kz):
    sbcs, media = "/support/routing/carrier_sbcs", "/support/routing/media_servers"
    # a media server first (no SBCs yet), then the SBCs that name it, then the priority list
    ms = kz.ok("PUT", media, 201, json={"data": _media_server([])})["data"]
    assert len(ms["id"]) == 32 and int(ms["id"], 16) >= 0
    created = [kz.ok("PUT", sbcs, 201, json={"data": _sbc(ms["id"], name=n)})["data"] for n in ("W", "C", "E")]
    for c in created:
        assert c == {"id": c["id"], **_sbc(ms["id"], name=c["name"])}
    west, central, east = (c["id"] for c in created)
    # the spec's media server create example, with existing SBC ids
    ms2 = kz.ok("PUT", media, 201, json={"data": _media_server([west, central, east])})["data"]
    assert ms2 == {"id": ms2["id"], **_media_server([west, central, east])}
    # references must exist: 400 with the field, nothing written
    body = kz.err("PUT", media, 400, "validation error", json={"data": _media_server([west, "0" * 32])})
    assert "not_found" in body["data"]["carrier_sbc_priority.sprint.1"]
    body = kz.err("PUT", sbcs, 400, "validation error", json={"data": _sbc("f" * 32)})
    assert "not_found" in body["data"]["mobile_media_server"]
    kz.err(
        "PUT",
        sbcs,
        400,
        "validation error",
        json={"data": _sbc(ms["id"], number_formatting={"x": {"to_number": {"pattern": "/([/", "replace": ""}}})},
    )
    # GET one / list (summaries as the spec's list shows them)
    assert kz.ok("GET", f"{sbcs}/{west}")["data"] == created[0]
    listed = {i["id"]: i for i in kz.ok("GET", sbcs)["data"]}
    assert set(listed[west]) <= {"id", "name", "carrier", "location", "mobile_media_server"}
    assert listed[west]["mobile_media_server"] == ms["id"]
    mlisted = {i["id"]: i for i in kz.ok("GET", media)["data"]}
    assert mlisted[ms2["id"]] == {
        "id": ms2["id"],
        "name": "Dummy Media Server",
        "location": ms2["location"],
        "carrier_sbc_priority": {"sprint": [west, central, east]},
    }
    # POST replaces (the spec's SBC update drops two number_formatting entries)
    update = _sbc(ms["id"], name="W")
    update["number_formatting"] = {"to_mobile_device": update["number_formatting"]["to_mobile_device"]}
    assert kz.ok("POST", f"{sbcs}/{west}", json={"data": update})["data"] == {"id": west, **update}
    # PATCH (the spec's: the ips list is replaced)
    patched = kz.ok("PATCH", f"{sbcs}/{west}", json={"data": {"ips": ["1.2.3.4", "1.2.3.5", "1.2.3.6"]}})["data"]
    assert patched == {"id": west, **update, "ips": ["1.2.3.4", "1.2.3.5", "1.2.3.6"]}
    # media server update / patch examples
    upd = _media_server([west, central, east])
    upd["interfaces"] = {
        "carrier_mpls": {"sprint": "sprint_mpls_interface"},
        "authenticated_connection": "authenticated_connection_interface",
        "unauthenticated_connection": "unauthenticated_connection_interface",
    }
    assert kz.ok("POST", f"{media}/{ms2['id']}", json={"data": upd})["data"] == {"id": ms2["id"], **upd}
    mp = kz.ok("PATCH", f"{media}/{ms2['id']}", json={"data": {"top_ips": ["10.26.0.254", "10.26.0.253"]}})["data"]
    assert mp == {"id": ms2["id"], **upd, "top_ips": ["10.26.0.254", "10.26.0.253"]}
    # deleting what other documents name removes those references: an SBC named by ms2's priority list
    assert kz.ok("DELETE", f"{sbcs}/{west}")["data"]["id"] == west
    assert kz.ok("GET", f"{media}/{ms2['id']}")["data"]["carrier_sbc_priority"] == {"sprint": [central, east]}
    # the media server that central and east name: they lose their mobile_media_server
    assert kz.ok("DELETE", f"{media}/{ms['id']}")["data"]["id"] == ms["id"]
    for sbc in (central, east):
        assert "mobile_media_server" not in kz.ok("GET", f"{sbcs}/{sbc}")["data"]
    # documents that name each other: a media server lists an SBC that names it; either goes first
    both = kz.ok("PUT", media, 201, json={"data": _media_server([])})["data"]
    sbc = kz.ok("PUT", sbcs, 201, json={"data": _sbc(both["id"], name="Mutual")})["data"]
    kz.ok("PATCH", f"{media}/{both['id']}", json={"data": {"carrier_sbc_priority": {"sprint": [sbc["id"]]}}})
    assert kz.ok("DELETE", f"{media}/{both['id']}")["data"]["id"] == both["id"]
    assert "mobile_media_server" not in kz.ok("GET", f"{sbcs}/{sbc['id']}")["data"]
    assert kz.ok("DELETE", f"{sbcs}/{sbc['id']}")["data"]["id"] == sbc["id"]
    assert kz.ok("DELETE", f"{media}/{ms2['id']}")["data"]["carrier_sbc_priority"] == {"sprint": [central, east]}
    kz.err("GET", f"{media}/{ms2['id']}", 404, "bad_identifier")
    for sbc_id in (central, east):
        assert kz.ok("DELETE", f"{sbcs}/{sbc_id}")["data"]["id"] == sbc_id


def test_cluster_documents(kz):
    clusters = kz.ok("GET", "/support/clusters")["data"]
    master = [c for c in clusters if c["master"]]
    assert len(master) == 1
    kz.err("DELETE", f"/support/clusters/{master[0]['id']}", 403, "forbidden")
    cid = secrets.token_hex(16)
    acct = kz.ok("PUT", "/accounts", 201, json={"data": {"name": f"billing-{cid[:6]}"}})["data"]
    data = {
        "mvno_id": "2600hz_sandbox",
        "api_url": "http://127.0.0.1:9/api",
        "api_key": "s3cret-carrier-key",
        "hosted_billing_account_id": acct["id"],
    }
    created = kz.ok("PUT", f"/support/clusters/{cid}", 201, json={"data": data})["data"]
    assert created["id"] == cid and created["mvno_id"] == "2600hz_sandbox"
    assert created["api_url"] == "http://127.0.0.1:9/api" and created["hosted_billing_account_id"] == acct["id"]
    # the key is shown masked, like every secret: neither the clear value nor its ciphertext
    assert created["api_key"] == "********"
    # sending the mask back keeps it
    again = kz.ok("PUT", f"/support/clusters/{cid}", json={"data": {**data, "api_key": "********"}})["data"]
    assert again["api_key"] == "********"
    # the mask cannot create a key
    kz.err(
        "PUT",
        f"/support/clusters/{secrets.token_hex(16)}",
        400,
        "validation error",
        json={"data": {**data, "api_key": "********"}},
    )
    body = kz.err(
        "PUT",
        f"/support/clusters/{cid}",
        400,
        "validation error",
        json={"data": {**data, "api_url": "ftp://x", "hosted_billing_account_id": "0" * 32}},
    )
    assert "format" in body["data"]["api_url"]
    kz.err("PUT", f"/support/clusters/{secrets.token_hex(16)}", 400, "validation error", json={"data": {}})
    # X-Kazoo-Cluster-ID naming no cluster: 404
    other = Kazoo(kz.server, kz.token, cluster="0" * 32)
    other.err("GET", "/support/phone_numbers/+15550001111/subscription", 404, "bad_identifier")
    deleted = kz.ok("DELETE", f"/support/clusters/{cid}")["data"]
    assert deleted["id"] == cid and deleted["api_key"] == "********"
    kz.err("DELETE", f"/support/clusters/{cid}", 404, "bad_identifier")


def test_accounts(kz, master):
    name = f"Account {secrets.token_hex(3)}"
    acct = kz.ok("PUT", "/accounts", 201, json={"data": {"name": name, "realm": "sip.example.com"}})["data"]
    assert len(acct["id"]) == 32 and acct["name"] == name and acct["realm"] == "sip.example.com"
    kz.err("PUT", "/accounts", 409, "conflict", json={"data": {"name": name.upper()}})
    kz.err("PUT", "/accounts", 400, "validation error", json={"data": {"realm": "x"}})
    master.err("PUT", "/accounts", 403, "forbidden", json={"data": {"name": "m"}})
    assert master.ok("GET", f"/accounts/{acct['id']}")["data"] == acct
    assert acct in master.ok("GET", "/accounts")["data"]
    kz.err("GET", "/accounts/not-hex", 404, "bad_identifier")


def test_account_cli(server, kz):
    """`switchboard account create` against the server's database: the API sees the account."""
    name = f"cli-acct-{secrets.token_hex(3)}"
    out = subprocess.run(
        [
            str(BIN / "switchboard"),
            "account",
            "create",
            name,
            "--realm",
            "sip.cli.test",
            "--database-url",
            server.database_url,
        ],
        capture_output=True,
        text=True,
        env=server.env(),
        timeout=60,
        check=True,
    ).stdout
    acct_id = out.split()[0]
    assert kz.ok("GET", f"/accounts/{acct_id}")["data"] == {
        **kz.ok("GET", f"/accounts/{acct_id}")["data"],
        "id": acct_id,
        "name": name,
        "realm": "sip.cli.test",
    }
    again = subprocess.run(
        [str(BIN / "switchboard"), "account", "create", name.upper(), "--database-url", server.database_url],
        capture_output=True,
        text=True,
        env=server.env(),
        timeout=60,
    )
    assert again.returncode != 0 and "exists" in again.stderr
