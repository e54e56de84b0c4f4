"""The providers (PortSIP) dialect against a real `switchboard serve`: login, every route with the
spec's samples, validation (400 and nothing written), tokens (length rules, other dialects'
tokens), permissions, paging maths, sorting, live status and the password that never leaves."""

from __future__ import annotations

import secrets

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, new_user
from tests.e2e.test_jade_authz_matrix import jade_login

INVALID_ID = "Invalid provider ID supplied."
MASK = "********"

# the spec's create body, every field given (status says ONLINE: it must be ignored)
FULL = {
    "provider_in_lan": False,
    "name": "spec-provider",
    "auth_mode": "REGISTER_AUTH",
    "protocol": "UDP",
    "require_register": True,
    "password": "pw-never-echoed-0",
    "reregister_interval": 600,
    "port": 5060,
    "ips": ["192.0.2.50"],
    "auth_id": "1001",
    "outbound_server": "proxy.example.net",
    "status": "ONLINE",
    "hostname": "sip.example.com",
    "outbound_server_port": 5070,
    "single_via_header": True,
    "in_parameters": [{"name": "X-In", "value": "1"}],
    "out_parameters": [{"name": "X-Out", "value": "2"}],
}
FIELDS = set(FULL) | {"id"}


def login(url: str, username: str = "admin", password: str = ADMIN_PASSWORD) -> dict:
    r = httpx.post(
        url + "/api/account/credentials/verify", json={"username": username, "password": password}, timeout=20
    )
    assert r.status_code == 200, r.text
    return r.json()


def client(url: str, token: str | None) -> httpx.Client:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["access_token"] = token
    return httpx.Client(base_url=url, headers=headers, timeout=20)


def unique(prefix: str = "prov") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def error_of(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["code"] == status, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]["message"]


@pytest.fixture(scope="module")
def api(server):
    with client(server.url, login(server.url)["access_token"]) as c:
        yield c


def count(api: httpx.Client) -> int:
    r = api.get("/api/providers/list")
    assert r.status_code == 200, r.text
    return r.json()["count"]


def create(api: httpx.Client, **fields) -> int:
    body = {
        "name": unique(),
        "auth_mode": "IP_AUTH",
        "protocol": "UDP",
        "hostname": "192.0.2.10",
        "port": 5060,
        **fields,
    }
    r = api.post("/api/providers/create", json=body)
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"id"} and isinstance(r.json()["id"], int)
    return r.json()["id"]


def show(api: httpx.Client, pid: int) -> dict:
    r = api.get("/api/providers/show", params={"id": pid})
    assert r.status_code == 200, r.text
    return r.json()


# ---- login ------------------------------------------------------------------------------------
def test_login(server):
    body = login(server.url)
    assert set(body) == {"access_token", "expires", "role", "api_version"}
    assert 32 <= len(body["access_token"]) <= 64
    assert body["expires"] == 86400 and body["role"] == "super_master" and body["api_version"] == "1.0"


def test_login_refusals(server):
    url = server.url + "/api/account/credentials/verify"
    assert "invalid username or password" in error_of(
        httpx.post(url, json={"username": "admin", "password": "wrong-password"}), 401
    )
    error_of(httpx.post(url, json={"username": "nobody-" + secrets.token_hex(3), "password": "x"}), 401)
    msg = error_of(httpx.post(url, json={"username": "admin"}), 400)
    assert "password" in msg
    assert "username" in error_of(httpx.post(url, json={"username": 5, "password": "x"}), 400)
    error_of(httpx.post(url, content=b'{"username": "admin",'), 400)
    error_of(httpx.post(url, content=b""), 400)
    error_of(httpx.post(url, json=["admin", ADMIN_PASSWORD]), 400)


# ---- the spec's routes ----------------------------------------------------------------------------
def test_create_show_list_update_destroy(api):
    before = count(api)
    body = {**FULL, "name": unique("spec")}
    r = api.post("/api/providers/create", json=body)
    assert r.status_code == 200, r.text
    pid = r.json()["id"]
    assert r.json() == {"id": pid}

    p = show(api, pid)
    assert set(p) == FIELDS
    expected = {**body, "id": pid, "password": MASK, "status": "OFFLINE"}
    assert p == expected
    # the spec's sample sends the id in no query: a JSON body is accepted too
    r = api.request("GET", "/api/providers/show", json={"id": pid})
    assert r.status_code == 200 and r.json() == expected

    listing = api.get("/api/providers/list", params={"pagination": 1, "pagesize": 1000}).json()
    assert listing["count"] == before + 1
    assert [x for x in listing["providers"] if x["id"] == pid] == [expected]

    # partial update: only the given fields change
    r = api.post("/api/providers/update", json={"id": pid, "port": 5080, "protocol": "tcp", "status": "ONLINE"})
    assert r.status_code == 200 and r.json() == {}
    assert show(api, pid) == {**expected, "port": 5080, "protocol": "TCP"}
    # the mask sent back leaves the password as it was (a show → edit → update round trip)
    r = api.post("/api/providers/update", json={**show(api, pid), "reregister_interval": 900})
    assert r.status_code == 200, r.text
    assert show(api, pid) == {**expected, "port": 5080, "protocol": "TCP", "reregister_interval": 900}

    r = api.post("/api/providers/destroy", json={"id": pid})
    assert r.status_code == 200 and r.json() == {}
    assert count(api) == before
    assert error_of(api.get("/api/providers/show", params={"id": pid}), 400) == INVALID_ID
    assert error_of(api.post("/api/providers/destroy", json={"id": pid}), 400) == INVALID_ID
    assert error_of(api.post("/api/providers/update", json={"id": pid, "port": 5060}), 400) == INVALID_ID


def test_spec_samples(api):
    """The spec's sample requests as they stand: create `{}` and show without an id are refused
    with 400; list without parameters answers the defaults; update/destroy of 1234 → unknown id."""
    assert "name" in error_of(api.post("/api/providers/create", content=b"{}"), 400)
    assert "id" in error_of(api.get("/api/providers/show"), 400)
    r = api.get("/api/providers/list")
    assert r.status_code == 200
    assert {k: r.json()[k] for k in ("pagination", "pagesize", "sort_by")} == {
        "pagination": 1,
        "pagesize": 10,
        "sort_by": "DEFAULT",
    }
    for route in ("update", "destroy"):
        assert error_of(api.post(f"/api/providers/{route}", content=b'{\n    "id": 1234\n}'), 400) == INVALID_ID


def test_defaults_of_a_minimal_create(api):
    pid = create(api, hostname="198.51.100.9", protocol="udp", auth_mode="ip_auth")
    p = show(api, pid)
    assert p["auth_mode"] == "IP_AUTH" and p["protocol"] == "UDP"
    assert p["require_register"] is False and p["auth_id"] == "" and p["password"] == ""
    assert p["outbound_server"] == "" and p["outbound_server_port"] == 0 and p["reregister_interval"] == 3600
    assert p["ips"] == ["198.51.100.9"] and p["in_parameters"] == [] and p["out_parameters"] == []
    assert p["provider_in_lan"] is False and p["single_via_header"] is False and p["status"] == "OFFLINE"
    api.post("/api/providers/destroy", json={"id": pid})


def test_status_is_live_state_never_the_clients(api):
    pid = create(api, status="ONLINE")
    assert show(api, pid)["status"] == "OFFLINE"
    assert api.post("/api/providers/update", json={"id": pid, "status": "ONLINE"}).status_code == 200
    assert show(api, pid)["status"] == "OFFLINE"
    api.post("/api/providers/destroy", json={"id": pid})


def test_password_never_in_any_response(api):
    secret = "pw-" + secrets.token_hex(8)
    responses = [api.post("/api/providers/create", json={**FULL, "name": unique(), "password": secret})]
    pid = responses[0].json()["id"]
    responses.append(api.get("/api/providers/show", params={"id": pid}))
    responses.append(api.get("/api/providers/list", params={"pagesize": 1000}))
    responses.append(api.post("/api/providers/update", json={"id": pid, "password": secret + "x"}))
    responses.append(api.post("/api/providers/update", json={"id": pid, "port": 0, "password": secret}))
    responses.append(api.get("/api/providers/show", params={"id": pid}))
    responses.append(api.post("/api/providers/destroy", json={"id": pid}))
    for r in responses:
        assert r.status_code in (200, 400), r.text
        assert secret not in r.text
    assert responses[1].json()["password"] == MASK


# ---- validation: 400, a message naming the field, nothing written --------------------------------
MINIMAL = {"name": "x", "auth_mode": "IP_AUTH", "protocol": "UDP", "hostname": "192.0.2.10", "port": 5060}


def _without(field: str) -> dict:
    return {k: v for k, v in MINIMAL.items() if k != field}


INVALID_CREATES = [
    *[(f"missing {f}", _without(f), f) for f in MINIMAL],
    ("register without auth_id", {**MINIMAL, "auth_mode": "REGISTER_AUTH", "password": "p"}, "auth_id"),
    ("register without password", {**MINIMAL, "auth_mode": "REGISTER_AUTH", "auth_id": "u"}, "password"),
    ("bad auth_mode", {**MINIMAL, "auth_mode": "DIGEST"}, "auth_mode"),
    ("bad protocol", {**MINIMAL, "protocol": "SCTP"}, "protocol"),
    ("port 0", {**MINIMAL, "port": 0}, "port"),
    ("port 65536", {**MINIMAL, "port": 65536}, "port"),
    ("port string", {**MINIMAL, "port": "5060"}, "port"),
    ("port boolean", {**MINIMAL, "port": True}, "port"),
    ("port float", {**MINIMAL, "port": 5060.5}, "port"),
    ("bad hostname", {**MINIMAL, "hostname": "not a host!"}, "hostname"),
    ("bad ip hostname", {**MINIMAL, "hostname": "300.1.1.1"}, "hostname"),
    ("outbound_server_port", {**MINIMAL, "outbound_server_port": 65536}, "outbound_server_port"),
    ("bad outbound_server", {**MINIMAL, "outbound_server": "bad_host"}, "outbound_server"),
    ("reregister too small", {**MINIMAL, "reregister_interval": 10}, "reregister_interval"),
    ("require_register string", {**MINIMAL, "require_register": "true"}, "require_register"),
    ("provider_in_lan number", {**MINIMAL, "provider_in_lan": 1}, "provider_in_lan"),
    ("single_via_header string", {**MINIMAL, "single_via_header": "false"}, "single_via_header"),
    ("ips not a list", {**MINIMAL, "ips": "192.0.2.1"}, "ips"),
    ("ips not addresses", {**MINIMAL, "ips": ["example.com"]}, "ips"),
    ("in_parameters not objects", {**MINIMAL, "in_parameters": ["a"]}, "in_parameters"),
    ("name too long", {**MINIMAL, "name": "n" * 256}, "name"),
    ("name not a string", {**MINIMAL, "name": 12}, "name"),
]


@pytest.mark.parametrize("body,field", [c[1:] for c in INVALID_CREATES], ids=[c[0] for c in INVALID_CREATES])
def test_invalid_create(api, body, field):
    before = count(api)
    if body.get("name") == "x":
        body = {**body, "name": unique()}
    assert field in error_of(api.post("/api/providers/create", json=body), 400)
    assert count(api) == before


@pytest.mark.parametrize("raw", [b'{"name": "x",', b"[1, 2]", b'"text"', b"", b"not json"])
def test_unreadable_bodies(api, raw):
    before = count(api)
    error_of(api.post("/api/providers/create", content=raw), 400)
    error_of(api.post("/api/providers/update", content=raw), 400)
    error_of(api.post("/api/providers/destroy", content=raw), 400)
    assert count(api) == before


def test_duplicate_name_is_400(api):
    name = unique()
    pid = create(api, name=name)
    before = count(api)
    assert "name" in error_of(api.post("/api/providers/create", json={**MINIMAL, "name": name}), 400)
    other = create(api)
    assert "name" in error_of(api.post("/api/providers/update", json={"id": other, "name": name}), 400)
    assert count(api) == before + 1
    for i in (pid, other):
        api.post("/api/providers/destroy", json={"id": i})


def test_invalid_update_changes_nothing(api):
    pid = create(api)
    before = show(api, pid)
    for body, field in [
        ({"port": 0}, "port"),
        ({"port": "5061"}, "port"),
        ({"auth_mode": "REGISTER_AUTH"}, "auth_id"),
        ({"hostname": "bad host"}, "hostname"),
        ({"name": "", "port": 5061}, "name"),
    ]:
        assert field in error_of(api.post("/api/providers/update", json={"id": pid, **body}), 400)
        assert show(api, pid) == before
    # switching to REGISTER_AUTH with credentials is fine
    r = api.post(
        "/api/providers/update", json={"id": pid, "auth_mode": "REGISTER_AUTH", "auth_id": "u9", "password": "p9"}
    )
    assert r.status_code == 200, r.text
    assert show(api, pid)["auth_mode"] == "REGISTER_AUTH" and show(api, pid)["password"] == MASK
    api.post("/api/providers/destroy", json={"id": pid})


@pytest.mark.parametrize("ident", ["abc", True, 1.5, [1], None])
def test_ids_of_the_wrong_type(api, ident):
    msg = error_of(api.post("/api/providers/destroy", json={"id": ident}), 400)
    assert msg.startswith("id:"), msg
    error_of(api.post("/api/providers/update", json={"id": ident, "port": 5060}), 400)


@pytest.mark.parametrize("ident", [0, -1, 2**63, 2**64 - 1])
def test_ids_naming_nothing(api, ident):
    assert error_of(api.post("/api/providers/destroy", json={"id": ident}), 400) == INVALID_ID
    assert error_of(api.get("/api/providers/show", params={"id": str(ident)}), 400) == INVALID_ID
    assert error_of(api.get("/api/providers/show", params={"id": str(ident) + "0" * 20}), 400) == INVALID_ID


def test_show_query_id_must_be_an_integer(api):
    assert error_of(api.get("/api/providers/show", params={"id": "x1"}), 400).startswith("id:")


# ---- tokens and permissions -------------------------------------------------------------------------
@pytest.mark.parametrize("token", [None, "", "a" * 31, "a" * 65, "a" * 32, "b" * 64, "c" * 1000])
def test_bad_tokens_are_401(server, token):
    with client(server.url, token) as c:
        error_of(c.get("/api/providers/list"), 401)
        error_of(c.get("/api/providers/show", params={"id": 1}), 401)
        error_of(c.post("/api/providers/create", json=MINIMAL), 401)
        error_of(c.post("/api/providers/update", json={"id": 1}), 401)
        error_of(c.post("/api/providers/destroy", json={"id": 1}), 401)


def test_length_rule_before_lookup(server, api):
    """A real token padded past 64 characters, or cut below 32, is refused."""
    token = api.headers["access_token"]
    with client(server.url, token + "x" * (65 - len(token))) as c:
        assert "32 to 64" in error_of(c.get("/api/providers/list"), 401)
    with client(server.url, token[:31]) as c:
        assert "32 to 64" in error_of(c.get("/api/providers/list"), 401)


def test_plain_user_is_refused(server, admin, api):
    user = new_user(admin)
    body = login(server.url, user["username"], user["password"])
    assert body["role"] == "user"
    pid = create(api)
    before = count(api)
    with client(server.url, body["access_token"]) as c:
        assert error_of(c.post("/api/providers/create", json={**MINIMAL, "name": unique()}), 403)
        error_of(c.post("/api/providers/update", json={"id": pid, "port": 5099}), 403)
        error_of(c.post("/api/providers/destroy", json={"id": pid}), 403)
        error_of(c.get("/api/providers/show", params={"id": pid}), 403)
        error_of(c.get("/api/providers/list"), 403)
    assert count(api) == before and show(api, pid)["port"] == 5060
    api.post("/api/providers/destroy", json={"id": pid})


def test_admin_role_may_manage(server, admin):
    user = new_user(admin, category="Admin")
    body = login(server.url, user["username"], user["password"])
    assert body["role"] == "admin"
    with client(server.url, body["access_token"]) as c:
        pid = create(c)
        assert c.post("/api/providers/destroy", json={"id": pid}).status_code == 200


def test_tokens_cross_dialects(server, api):
    jade_token = jade_login(server.url, "admin", ADMIN_PASSWORD)  # a uuid: 36 characters
    with client(server.url, jade_token) as c:
        assert c.get("/api/providers/list").status_code == 200
    ours = api.headers["access_token"]
    r = httpx.get(server.url + "/v1/admin/info", params={"authtoken": ours}, timeout=20)
    assert r.status_code == 200 and r.json()["result"]["username"] == "admin"


def test_unknown_routes_use_this_format(api):
    error_of(api.get("/api/providers/nothing"), 404)
    error_of(api.get("/api/elsewhere"), 404)
    error_of(api.get("/api/providers/create"), 405)


# ---- listing: sorting and paging maths --------------------------------------------------------------
def test_sort_by(api):
    tag = secrets.token_hex(3)
    names = [f"zz-{tag}-c", f"zz-{tag}-a", f"zz-{tag}-b"]
    ids = [create(api, name=n) for n in names]

    def ours(sort_by: str) -> list[str]:
        r = api.get("/api/providers/list", params={"pagesize": 1000, "sort_by": sort_by})
        assert r.status_code == 200, r.text
        assert r.json()["sort_by"] == sort_by.upper()
        return [p["name"] for p in r.json()["providers"] if p["id"] in ids]

    assert ours("DEFAULT") == names
    assert ours("OPTIONAL") == sorted(names)
    assert ours("optional") == sorted(names)
    assert "sort_by" in error_of(api.get("/api/providers/list", params={"sort_by": "NAME"}), 400)
    for i in ids:
        api.post("/api/providers/destroy", json={"id": i})


@pytest.mark.parametrize(
    "params,field",
    [
        ({"pagination": 0}, "pagination"),
        ({"pagination": -1}, "pagination"),
        ({"pagination": "x"}, "pagination"),
        ({"pagesize": 0}, "pagesize"),
        ({"pagesize": 1001}, "pagesize"),
        ({"pagesize": "ten"}, "pagesize"),
        ({"pagesize": "1.5"}, "pagesize"),
    ],
)
def test_bad_paging(api, params, field):
    assert field in error_of(api.get("/api/providers/list", params=params), 400)


def test_paging_maths(fresh_server):
    """On a server of its own, so the counts start at 0."""
    srv = fresh_server.start()
    with client(srv.url, login(srv.url)["access_token"]) as c:
        size = 3

        def page(n: int, **extra) -> dict:
            r = c.get("/api/providers/list", params={"pagination": n, "pagesize": size, **extra})
            assert r.status_code == 200, r.text
            return r.json()

        assert page(1) == {
            "count": 0,
            "page_count": 0,
            "pagination": 1,
            "pagesize": 3,
            "sort_by": "DEFAULT",
            "providers": [],
        }
        ids = [create(c)]
        assert (page(1)["count"], page(1)["page_count"], len(page(1)["providers"])) == (1, 1, 1)
        ids += [create(c) for _ in range(size - 1)]
        assert (page(1)["count"], page(1)["page_count"], len(page(1)["providers"])) == (3, 1, 3)
        assert page(2)["providers"] == []
        ids.append(create(c))
        p1, p2, p3 = page(1), page(2), page(3)
        assert (p1["count"], p1["page_count"]) == (4, 2)
        assert [p["id"] for p in p1["providers"]] == ids[:3] and [p["id"] for p in p2["providers"]] == ids[3:]
        assert p3["providers"] == [] and p3["pagination"] == 3 and p3["count"] == 4
        assert page(10**6)["providers"] == []
        # the parameters may come in a JSON body too (the spec's sample sends no query)
        r = c.request("GET", "/api/providers/list", json={"pagination": 2, "pagesize": 2})
        assert r.status_code == 200 and [p["id"] for p in r.json()["providers"]] == ids[2:4]
