"""HTTP input hardening against a real server: XML bodies in any declared encoding (spear), a
Content-Type the route does not take (415 in each dialect's error format), U+0000 in a query
parameter (400 in each dialect's format, before authentication), and kazoo 401s that never echo
the submitted token. Every refused request is checked to have changed nothing."""

from __future__ import annotations

import httpx
import pytest
from defusedxml.ElementTree import fromstring

from tests.conftest import ADMIN_PASSWORD, as_user, new_user
from tests.e2e.kazoo_client import ENVELOPE_ERR, Kazoo
from tests.e2e.test_jade_authz_matrix import check_envelope, jade_client, jade_login
from tests.e2e.test_providers_api import client as providers_client
from tests.e2e.test_providers_api import login as providers_login

XML = {"Content-Type": "application/xml", "Accept": "application/xml"}


def xml_doc(item: str, encoding: str, fields: dict[str, str], *, codec: str = "utf-8") -> bytes:
    """<item> declaring `encoding`, its bytes written with `codec` (the utf-16/utf-32 codecs write a BOM)."""
    tag = item.replace("_", "-")
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
    return f'<?xml version="1.0" encoding="{encoding}"?><{tag}>{inner}</{tag}>'.encode(codec)


def spear_errors(r: httpx.Response, status: int, *, xml: bool = False) -> list[str]:
    """spear's one error shape: {"errors": [...]} or <errors><error>...</error></errors>."""
    assert r.status_code == status, r.text
    if xml:
        assert r.headers["content-type"].startswith("application/xml"), r.headers
        root = fromstring(r.content)
        assert root.tag == "errors" and len(root) >= 1 and all(e.tag == "error" and e.text for e in root), r.text
        return [e.text for e in root]
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"errors"} and body["errors"] and all(isinstance(m, str) for m in body["errors"]), body
    return body["errors"]


@pytest.fixture
def new_log(server):
    """The server log written during this test (the session server's log is shared)."""
    mark = len(server.log())
    return lambda: server.log()[mark:]


@pytest.fixture
def spear_world(server, admin):
    """A user with an endpoint and a VoIP test on a server of their own."""
    user = new_user(admin)
    with as_user(server, user) as c:
        srv = c.post("/servers", json={"server": {"name": "Hardening", "ip_address": "203.0.113.9"}})
        assert srv.status_code == 201, srv.text
        ep = c.post(f"/users/{user['id']}/endpoints", json={"endpoint": {"name": "PBX", "ip_address": "198.51.100.9"}})
        assert ep.status_code == 201, ep.text
        base = f"/users/{user['id']}/endpoints/{ep.json()['id']}"
        vt = c.post(f"{base}/voip_tests", json={"voip_test": {"server_id": srv.json()["id"]}})
        assert vt.status_code == 201, vt.text
    return {
        "user": user,
        "server": srv.json(),
        "endpoint": ep.json(),
        "test": vt.json(),
        "endpoints": f"/users/{user['id']}/endpoints",
        "tests": f"{base}/voip_tests",
    }


def spear_snapshot(server, admin, w: dict) -> dict:
    """Everything the spear write routes under test could change."""
    uid, sid = w["user"]["id"], w["server"]["id"]
    with as_user(server, w["user"]) as c:
        return {
            "users": admin.get("/users?status=all").json()["metadata"]["count"],
            "user": c.get(f"/users/{uid}").json(),
            "endpoints": c.get(w["endpoints"] + "?status=all").json(),
            "servers": c.get("/servers?status=all").json()["metadata"]["count"],
            "server": c.get(f"/servers/{sid}").json(),
            "tests": c.get(w["tests"] + "?status=all").json(),
        }


def spear_writes(w: dict) -> list[tuple[str, str, str]]:
    """(method, path, item) of every spear route that reads a body."""
    uid, eid, sid, tid = w["user"]["id"], w["endpoint"]["id"], w["server"]["id"], w["test"]["id"]
    return [
        ("POST", "/users", "user"),
        ("PUT", f"/users/{uid}", "user"),
        ("PATCH", f"/users/{uid}", "user"),
        ("POST", w["endpoints"], "endpoint"),
        ("PUT", f"{w['endpoints']}/{eid}", "endpoint"),
        ("PATCH", f"{w['endpoints']}/{eid}", "endpoint"),
        ("POST", "/servers", "server"),
        ("PUT", f"/servers/{sid}", "server"),
        ("PATCH", f"/servers/{sid}", "server"),
        ("POST", w["tests"], "voip_test"),
        ("PUT", f"{w['tests']}/{tid}", "voip_test"),
        ("PATCH", f"{w['tests']}/{tid}", "voip_test"),
    ]


# ---- 1. spear XML in any declared encoding ----------------------------------------------------------
def test_spear_xml_unknown_encoding_is_400_on_every_write_route(server, admin, spear_world, new_log):
    w = spear_world
    before = spear_snapshot(server, admin, w)
    fields = {
        "name": "Changed",
        "ip-address": "192.0.2.77",
        "username": "enc-user",
        "password": "pw-enc-secret-1",
        "server-id": str(w["server"]["id"]),
    }
    with as_user(server, w["user"]) as c:
        for method, path, item in spear_writes(w):
            client = admin if path == "/users" else c
            for encoding in ("bogus", "x-no-such-charset", "rot13", "base64"):
                body = xml_doc(item, encoding, fields)
                r = client.request(method, path, headers=XML, content=body)
                msgs = spear_errors(r, 400, xml=True)
                assert "encoding" in msgs[0], (method, path, msgs)
                r = client.request(
                    method,
                    path,
                    content=body,
                    headers={"Content-Type": "application/xml", "Accept": "application/json"},
                )
                spear_errors(r, 400)
    assert spear_snapshot(server, admin, w) == before
    assert "Traceback" not in new_log(), new_log()


@pytest.mark.parametrize(
    "encoding,codec,name",
    [
        ("ISO-8859-1", "latin-1", "Caf\u00e9 \u00bd"),
        ("windows-1252", "cp1252", "Price \u20ac5"),
        ("UTF-16", "utf-16", "Caf\u00e9 \u65e5\u672c"),  # BOM written by the codec
        ("UTF-16LE", "utf-16-le", "Caf\u00e9"),  # no BOM: expat sniffs '<\0?\0'
        ("UTF-8", "utf-8-sig", "Caf\u00e9 \u65e5\u672c"),  # with a UTF-8 BOM
        ("Shift_JIS", "shift_jis", "\u65e5\u672c\u8a9e"),  # multi-byte: expat cannot read it itself
        ("EUC-KR", "euc-kr", "\ud55c\uad6d\uc5b4"),
        ("GB18030", "gb18030", "\u4e2d\u6587 \u20ac"),
        ("UTF-32", "utf-32", "Caf\u00e9 \U0001f600"),  # BOM written by the codec
    ],
)
def test_spear_xml_known_encodings_parse(server, spear_world, encoding, codec, name):
    w = spear_world
    body = xml_doc("endpoint", encoding, {"name": name, "ip-address": "192.0.2.5"}, codec=codec)
    with as_user(server, w["user"]) as c:
        r = c.post(w["endpoints"], headers=XML, content=body)
        assert r.status_code == 201, r.text
        assert fromstring(r.content).find("name").text == name
        eid = fromstring(r.content).find("id").text
        assert c.get(f"{w['endpoints']}/{eid}").json()["name"] == name
        # an update in the same encoding
        r = c.put(
            f"{w['endpoints']}/{eid}",
            headers=XML,
            content=xml_doc("endpoint", encoding, {"description": name}, codec=codec),
        )
        assert r.status_code == 200, r.text
        assert c.get(f"{w['endpoints']}/{eid}").json()["description"] == name


@pytest.mark.parametrize(
    "body",
    [
        # the declaration does not match the bytes
        '<?xml version="1.0" encoding="UTF-8"?><endpoint><name>Caf\u00e9</name></endpoint>'.encode("latin-1"),
        b'<?xml version="1.0" encoding="UTF-16"?><endpoint><name>x</name></endpoint>',
        '<?xml version="1.0" encoding="ISO-8859-1"?><endpoint><name>x</name></endpoint>'.encode("utf-16"),
        # bytes the declared multi-byte encoding cannot decode
        b'<?xml version="1.0" encoding="Shift_JIS"?><endpoint><name>\x81\xff\xfc</name></endpoint>',
        b'<?xml version="1.0" encoding="UTF-32"?><endpoint><name>x</name></endpoint>',
        b"\xff\xfe\x00\x00<\x00\x00\x00?",  # a UTF-32 BOM, then a cut-off code unit
        # codecs Python has that are no character encodings, or that refuse expat's probe
        b'<?xml version="1.0" encoding="zlib"?><endpoint><name>x</name></endpoint>',
        b'<?xml version="1.0" encoding="idna"?><endpoint><name>x</name></endpoint>',
        b'<?xml version="1.0" encoding="punycode"?><endpoint><name>x</name></endpoint>',
        b'<?xml version="1.0" encoding="undefined"?><endpoint><name>x</name></endpoint>',
        b'<?xml version="1.0" encoding=""?><endpoint><name>x</name></endpoint>',
        b'<?xml version="1.0" encoding="\xe9\xe9"?><endpoint><name>x</name></endpoint>',
        b'<?xml version="1.0" encoding="utf-8"?><endpoint><name>&#0;</name></endpoint>',
    ],
)
def test_spear_xml_that_cannot_be_decoded_is_400(server, spear_world, new_log, body):
    w = spear_world
    with as_user(server, w["user"]) as c:
        before = c.get(w["endpoints"]).json()["metadata"]["count"]
        spear_errors(c.post(w["endpoints"], headers=XML, content=body), 400, xml=True)
        spear_errors(c.post(w["endpoints"], headers={"Content-Type": "text/xml"}, content=body), 400, xml=True)
        spear_errors(
            c.post(
                w["endpoints"], headers={"Content-Type": "application/xml", "Accept": "application/json"}, content=body
            ),
            400,
        )
        assert c.get(w["endpoints"]).json()["metadata"]["count"] == before
    assert "Traceback" not in new_log(), new_log()


# ---- 2. a Content-Type the route does not take: 415 ------------------------------------------------
ENDPOINT_JSON = b'{"endpoint": {"name": "Typed", "ip_address": "192.0.2.8"}}'
ENDPOINT_XML = b"<endpoint><name>Typed</name><ip-address>192.0.2.8</ip-address></endpoint>"


def test_spear_refuses_other_content_types_415(server, admin, spear_world):
    w = spear_world
    before = spear_snapshot(server, admin, w)
    with as_user(server, w["user"]) as c:
        for ctype in (
            "text/plain",
            "image/png",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/octet-stream",
            "text/html",
            "image/svg+xml",
            "garbage",
            "application/jsonx",
        ):
            for method, path, item in spear_writes(w):
                client = admin if path == "/users" else c
                r = client.request(
                    method,
                    path,
                    content=ENDPOINT_JSON.replace(b"endpoint", item.encode()),
                    headers={"Content-Type": ctype, "Accept": "application/json"},
                )
                assert "Content-Type" in spear_errors(r, 415)[0], (ctype, method, path)
            r = c.post(w["endpoints"], content=ENDPOINT_XML, headers={"Content-Type": ctype, "Accept": "text/xml"})
            spear_errors(r, 415, xml=True)
    assert spear_snapshot(server, admin, w) == before


def test_spear_takes_json_xml_and_no_content_type(server, spear_world):
    w = spear_world
    accepted = [
        ({"Content-Type": "application/json"}, ENDPOINT_JSON),
        ({"Content-Type": "application/json; charset=utf-8"}, ENDPOINT_JSON),
        ({"Content-Type": "Application/JSON"}, ENDPOINT_JSON),
        ({"Content-Type": "application/vnd.spear+json"}, ENDPOINT_JSON),
        ({"Content-Type": "application/xml"}, ENDPOINT_XML),
        ({"Content-Type": "text/xml; charset=utf-8"}, ENDPOINT_XML),
        ({"Content-Type": "application/vnd.spear+xml"}, ENDPOINT_XML),
        ({}, ENDPOINT_JSON),  # no Content-Type: JSON ...
        ({}, ENDPOINT_XML),  # ... or XML when the body starts with '<'
    ]
    with as_user(server, w["user"]) as c:
        before = c.get(w["endpoints"]).json()["metadata"]["count"]
        for headers, body in accepted:
            r = c.post(w["endpoints"], content=body, headers={**headers, "Accept": "application/json"})
            assert r.status_code == 201, (headers, r.text)
            assert r.json()["name"] == "Typed"
        assert c.get(w["endpoints"]).json()["metadata"]["count"] == before + len(accepted)
        # an empty body with any Content-Type is no body (the activate routes take none)
        eid = w["endpoint"]["id"]
        r = c.put(f"{w['endpoints']}/{eid}/activate", headers={"Content-Type": "image/png"})
        assert r.status_code == 200, r.text


def test_json_dialects_refuse_other_content_types_415(server, admin, new_log):
    refused = ("text/plain", "image/png", "application/xml", "multipart/form-data; boundary=x", "text/csv")
    # jade
    token = jade_login(server.url, "admin", ADMIN_PASSWORD)
    with jade_client(server.url, token) as j:
        adpmas = "/v1/admin/dialplan/adpmas"
        count = len(j.get(adpmas).json()["result"]["list"])
        for ctype in refused:
            r = j.post(adpmas, content=b'{"name": "typed dpma", "detail": "x"}', headers={"Content-Type": ctype})
            assert r.status_code == 415, r.text
            check_envelope(r)
        assert len(j.get(adpmas).json()["result"]["list"]) == count
        for ctype in ("application/x-www-form-urlencoded", "application/json", "application/merge-patch+json"):
            r = j.post(adpmas, content=b'{"name": "typed dpma", "detail": "x"}', headers={"Content-Type": ctype})
            assert r.status_code == 200, r.text
        assert len(j.get(adpmas).json()["result"]["list"]) == count + 3
        # a configuration file still takes text/plain (this one is invalid: 400, not 415) but not image/png
        conf = "/v1/admin/dialplan/configurations/extensions.conf"
        text = j.get(conf).json()["result"]["data"]
        r = j.put(conf, content=b"[broken\nexten => 1,1,NoOp()\n", headers={"Content-Type": "text/plain"})
        assert r.status_code == 400, r.text
        r = j.put(conf, content=b"[ok]\nexten => 1,1,NoOp()\n", headers={"Content-Type": "image/png"})
        assert r.status_code == 415, r.text
        check_envelope(r)
        assert j.get(conf).json()["result"]["data"] == text
    # providers
    with providers_client(server.url, providers_login(server.url)["access_token"]) as p:
        count = p.get("/api/providers/list").json()["count"]
        body = (
            b'{"name": "typed-prov", "auth_mode": "IP_AUTH", "protocol": "UDP", "hostname": "192.0.2.10", "port": 5060}'
        )
        for ctype in refused:
            r = p.post("/api/providers/create", content=body, headers={"Content-Type": ctype})
            assert r.status_code == 415, r.text
            assert set(r.json()) == {"error"} and r.json()["error"]["code"] == 415, r.json()
        assert p.get("/api/providers/list").json()["count"] == count
        r = p.post("/api/providers/create", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 200, r.text
        assert p.post("/api/providers/destroy", json={"id": r.json()["id"]}).status_code == 200
        # the login route too (a 415, not a 401 nor a login)
        r = httpx.post(
            server.url + "/api/account/credentials/verify",
            headers={"Content-Type": "text/plain"},
            content=b'{"username": "admin", "password": "%s"}' % ADMIN_PASSWORD.encode(),
        )
        assert r.status_code == 415 and r.json()["error"]["code"] == 415, r.text
    # probe
    r = admin.post("/servers", json={"server": {"name": "typed-probe", "ip_address": "192.0.2.44"}})
    assert r.status_code == 201, r.text
    sid, key = r.json()["id"], r.json()["agent_key"]
    for ctype in refused:
        r = httpx.post(
            server.url + "/probe/v1/login",
            auth=(str(sid), key),
            content=b'{"version": "9.9-typed"}',
            headers={"Content-Type": ctype},
            timeout=20,
        )
        assert r.status_code == 415, r.text
        assert set(r.json()) == {"error"} and r.json()["error"]["code"] == 415, r.json()
    assert admin.get(f"/servers/{sid}").json()["version"] is None
    r = httpx.post(
        server.url + "/probe/v1/login",
        auth=(str(sid), key),
        content=b'{"version": "9.9-typed"}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=20,
    )
    assert r.status_code == 200, r.text
    # kazoo
    kz = Kazoo.login(server)
    try:
        count = len(kz.ok("GET", "/accounts")["data"])
        for ctype in refused:
            body = kz.err(
                "PUT",
                "/accounts",
                415,
                "unsupported_media_type",
                content=b'{"data": {"name": "typed-acct"}}',
                headers={"Content-Type": ctype},
            )
            assert set(body) == ENVELOPE_ERR and body["data"]["message"], body
        assert len(kz.ok("GET", "/accounts")["data"]) == count
        kz.ok(
            "PUT",
            "/accounts",
            201,
            content=b'{"data": {"name": "typed-acct-form"}}',
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )  # what `curl -d` sends
        assert len(kz.ok("GET", "/accounts")["data"]) == count + 1
    finally:
        kz.close()
    assert "Traceback" not in new_log(), new_log()


# ---- 3. U+0000 in a query parameter: 400 -----------------------------------------------------------
def test_nul_in_a_query_parameter_is_400_in_every_dialect(server, admin, spear_world):
    w = spear_world
    with as_user(server, w["user"]) as c:
        r = c.get(w["endpoints"] + "?name=%00")
        assert "U+0000" in spear_errors(r, 400)[0]
        spear_errors(c.get(w["endpoints"] + "?name=a%00b", headers={"Accept": "text/xml"}), 400, xml=True)
        spear_errors(c.get(w["endpoints"] + "?na%00me=x"), 400)  # in a name too
        spear_errors(c.get(w["endpoints"] + "?status=all&deleted=%00"), 400)
        before = c.get(w["endpoints"]).json()["metadata"]["count"]
        r = c.post(w["endpoints"] + "?x=%00", json={"endpoint": {"name": "n", "ip_address": "192.0.2.3"}})
        spear_errors(r, 400)
        assert c.get(w["endpoints"]).json()["metadata"]["count"] == before
        # ordinary values still work (and %2500 is the text "%00", no NUL)
        assert c.get(w["endpoints"] + "?status=all&x=%2500").status_code == 200
    # before authentication: a 400, not a 401
    spear_errors(httpx.get(server.url + w["endpoints"] + "?name=%00"), 400)
    # jade (its token is a query parameter too)
    token = jade_login(server.url, "admin", ADMIN_PASSWORD)
    with jade_client(server.url, token) as j:
        check_envelope(r := j.get("/v1/admin/dialplan/adpmas?x=%00"))
        assert r.status_code == 400
    r = httpx.get(server.url + "/v1/admin/dialplan/adpmas?authtoken=%00")
    assert r.status_code == 400 and check_envelope(r)
    # providers
    with providers_client(server.url, providers_login(server.url)["access_token"]) as p:
        r = p.get("/api/providers/list?pagination=1&x=%00")
        assert r.status_code == 400 and r.json()["error"]["code"] == 400, r.text
    # probe
    r = httpx.get(server.url + "/probe/v1/tests?x=%00")
    assert r.status_code == 400 and r.json()["error"]["code"] == 400, r.text
    # kazoo
    kz = Kazoo.login(server)
    try:
        kz.err("GET", "/support/routing/customer_clusters?x=%00", 400, "invalid request")
        count = len(kz.ok("GET", "/accounts")["data"])
        kz.err("PUT", "/accounts?x=%00", 400, "invalid request", json={"data": {"name": "nul-acct"}})
        assert len(kz.ok("GET", "/accounts")["data"]) == count
    finally:
        kz.close()
    r = httpx.get(server.url + "/v2/support/routing/customer_clusters?auth_token=%00")
    assert r.status_code == 400 and r.json()["error"] == "400", r.text


# ---- 4. kazoo 401s never echo the submitted token --------------------------------------------------
def test_kazoo_401_does_not_echo_the_submitted_token(server):
    path = "/v2/support/routing/customer_clusters"
    submitted = "f" * 32 + "-not-a-token"
    for kw in ({"headers": {"X-Auth-Token": submitted}}, {"params": {"auth_token": submitted}}):
        r = httpx.get(server.url + path, timeout=20, **kw)
        assert r.status_code == 401, r.text
        body = r.json()
        assert set(body) == ENVELOPE_ERR and body["error"] == "401" and body["auth_token"] == "", body
        assert submitted not in r.text
    # a real token, once revoked
    kz = Kazoo.login(server)
    revoked = kz.token
    assert kz.ok("GET", "/support/routing/customer_clusters")["auth_token"] == revoked  # success echoes it
    r = httpx.delete(server.url + "/v1/admin/login", params={"authtoken": revoked}, timeout=20)
    assert r.status_code == 200, r.text
    body = kz.err("GET", "/support/routing/customer_clusters", 401, "invalid_credentials")
    assert body["auth_token"] == "" and revoked not in str(body), body
    kz.close()
    # a failed login that also carries a token
    r = httpx.put(
        server.url + "/v2/user_auth",
        headers={"X-Auth-Token": submitted},
        timeout=20,
        json={"data": {"username": "admin", "password": "wrong"}},
    )
    assert r.status_code == 401 and r.json()["auth_token"] == "" and submitted not in r.text, r.text
    # other errors echo the token as before (test_kazoo_routing pins it for a 404)
    kz = Kazoo.login(server)
    try:
        body = kz.err("GET", "/support/routing/customer_clusters/no-such-cluster", 404)
        assert body["auth_token"] == kz.token, body
    finally:
        kz.close()
