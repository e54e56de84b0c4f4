"""The endpoints spec (voipspear-endpoints-api.txt), example by example, then its rules."""

from __future__ import annotations

import re

from defusedxml.ElementTree import fromstring

from tests.conftest import as_user, new_user

XML = {"Accept": "text/xml", "Content-Type": "application/xml"}
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
PLAIN = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


def endpoint_xml(**fields) -> str:
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
    return f"<endpoint>{inner}</endpoint>"


def fields_of(el) -> dict:
    return {c.tag: c for c in el}


def test_create_endpoint_xml_as_spec(server, alice):
    """POST /users/{id}/endpoints with XML -> 201, Location, the spec's XML document."""
    with as_user(server, alice) as c:
        r = c.post(
            f"/users/{alice['id']}/endpoints",
            headers=XML,
            content=endpoint_xml(name="Test endpoint", **{"ip-address": "127.0.0.1"}),
        )
        assert r.status_code == 201, r.text
        assert r.headers["content-type"].startswith("application/xml")
        assert r.text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<endpoint>')
        root = fromstring(r.content)
        f = fields_of(root)
        assert [c.tag for c in root] == [
            "created-at",
            "deleted-at",
            "description",
            "id",
            "ip-address",
            "is-server",
            "name",
        ]
        eid = int(f["id"].text)
        assert f["id"].get("type") == "integer"
        assert r.headers["location"] == f"{server.url}/users/{alice['id']}/endpoints/{eid}"
        assert ISO.match(f["created-at"].text) and f["created-at"].get("type") == "datetime"
        assert f["deleted-at"].get("nil") == "true" and f["deleted-at"].get("type") == "datetime"
        assert f["description"].get("nil") == "true"
        assert f["ip-address"].text == "127.0.0.1"
        assert f["is-server"].get("type") == "boolean" and f["is-server"].text == "false"
        assert f["name"].text == "Test endpoint"

        # Show: the same record
        r = c.get(f"/users/{alice['id']}/endpoints/{eid}", headers={"Accept": "text/xml"})
        assert r.status_code == 200 and fields_of(fromstring(r.content))["name"].text == "Test endpoint"

        # Update (the spec's example sends the name and the same IP): 200, name changed
        r = c.put(
            f"/users/{alice['id']}/endpoints/{eid}",
            headers=XML,
            content=endpoint_xml(name="Endpoint name", **{"ip-address": "127.0.0.1"}),
        )
        assert r.status_code == 200, r.text
        assert fields_of(fromstring(r.content))["name"].text == "Endpoint name"

        # Delete: cancelled, deleted-at set, still there
        r = c.delete(f"/users/{alice['id']}/endpoints/{eid}", headers=XML)
        assert r.status_code == 200
        deleted = fields_of(fromstring(r.content))["deleted-at"]
        assert deleted.get("nil") is None and ISO.match(deleted.text)

        # Re-activate: deleted-at nil again
        r = c.put(f"/users/{alice['id']}/endpoints/{eid}/activate", headers=XML)
        assert r.status_code == 200
        assert fields_of(fromstring(r.content))["deleted-at"].get("nil") == "true"


def test_list_endpoints_xml_and_filters(server, alice):
    base = f"/users/{alice['id']}/endpoints"
    with as_user(server, alice) as c:
        ids = {}
        for name, ip in [
            ("Test endpoint", "127.0.0.1"),
            ("Test endpoint2", "127.0.0.2"),
            ("Voice SERVER", "sip.example.com"),
        ]:
            r = c.post(base, json={"endpoint": {"name": name, "ip_address": ip}})
            assert r.status_code == 201, r.text
            ids[name] = r.json()["id"]
        r = c.get(base, headers={"Accept": "text/xml"})
        assert r.status_code == 200
        root = fromstring(r.content)
        assert root.tag == "endpoints" and root.get("type") == "array"
        assert [fields_of(e)["name"].text for e in root] == ["Test endpoint", "Test endpoint2", "Voice SERVER"]

        # spec examples: ?name=server, ?deleted, ?deleted&ip_address=127.0.0.1
        assert [e["name"] for e in c.get(base, params={"name": "server"}).json()["collection"]] == ["Voice SERVER"]
        c.delete(f"{base}/{ids['Test endpoint']}")
        active = c.get(base).json()
        assert active["metadata"]["count"] == 2
        assert ids["Test endpoint"] not in [e["id"] for e in active["collection"]]
        everything = c.get(base + "?deleted").json()
        assert everything["metadata"]["count"] == 3
        r = c.get(base + "?deleted&ip_address=127.0.0.1").json()
        assert [e["id"] for e in r["collection"]] == [ids["Test endpoint"]]
        assert c.get(base, params={"ip_address": "EXAMPLE.COM"}).json()["metadata"]["count"] == 1
        # LIKE wildcards are literal
        assert c.get(base, params={"name": "%"}).json()["metadata"]["count"] == 0
        assert c.get(base, params={"status": "cancelled"}).json()["metadata"]["count"] == 1


def test_json_form_and_envelope(server, alice):
    base = f"/users/{alice['id']}/endpoints"
    with as_user(server, alice) as c:
        r = c.post(base, json={"endpoint": {"name": "J", "ip_address": "10.1.2.3", "description": "d"}})
        assert r.status_code == 201
        body = r.json()
        assert set(body) == {"id", "name", "description", "ip_address", "is_server", "created_at", "deleted_at"}
        assert PLAIN.match(body["created_at"]) and body["deleted_at"] is None and body["is_server"] is False
        lst = c.get(base).json()
        assert set(lst) == {"collection", "metadata"} and lst["metadata"]["count"] == len(lst["collection"])
        # also /users/me/...
        assert c.get("/users/me/endpoints").json() == lst


def test_update_cannot_change_ip(server, alice):
    base = f"/users/{alice['id']}/endpoints"
    with as_user(server, alice) as c:
        eid = c.post(base, json={"endpoint": {"name": "A", "ip_address": "10.0.0.1"}}).json()["id"]
        r = c.put(f"{base}/{eid}", json={"endpoint": {"name": "B", "ip_address": "10.0.0.2"}})
        assert r.status_code == 422
        assert r.json() == {"errors": ["Ip address cannot be changed after the endpoint is created"]}
        r = c.put(f"{base}/{eid}", headers=XML, content=endpoint_xml(name="B", **{"ip-address": "10.0.0.2"}))
        assert r.status_code == 422
        root = fromstring(r.content)
        assert root.tag == "errors" and [e.tag for e in root] == ["error"]
        # nothing changed
        assert c.get(f"{base}/{eid}").json()["name"] == "A"


def test_validation_and_malformed_bodies(server, alice):
    base = f"/users/{alice['id']}/endpoints"
    with as_user(server, alice) as c:
        before = c.get(base + "?deleted").json()["metadata"]["count"]
        r = c.post(base, json={"endpoint": {"ip_address": "10.0.0.1"}})
        assert r.status_code == 422 and r.json() == {"errors": ["Name can't be blank"]}
        r = c.post(base, json={"endpoint": {"name": "x", "ip_address": "999.1.1.1"}})
        assert r.status_code == 422 and "Ip address" in r.json()["errors"][0]
        r = c.post(base, json={"endpoint": {"name": "   ", "ip_address": "not a host!"}})
        assert r.status_code == 422 and len(r.json()["errors"]) == 2
        r = c.post(base, content=b'{"endpoint": {', headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "errors" in r.json()
        r = c.post(base, content=b"<endpoint><name>x</name>", headers=XML)
        assert r.status_code == 400 and fromstring(r.content).tag == "errors"
        bomb = (
            b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            b"<endpoint><name>&b;</name><ip-address>10.0.0.1</ip-address></endpoint>"
        )
        r = c.post(base, content=bomb, headers=XML)
        assert r.status_code == 400
        r = c.post(base, content=b"<server><name>x</name></server>", headers=XML)
        assert r.status_code == 400
        r = c.post(base, json=[1, 2])
        assert r.status_code == 400
        assert c.get(base + "?deleted").json()["metadata"]["count"] == before


def test_ownership_and_unknown_ids(server, admin, alice, bob):
    base = f"/users/{alice['id']}/endpoints"
    with as_user(server, alice) as a, as_user(server, bob) as b:
        eid = a.post(base, json={"endpoint": {"name": "mine", "ip_address": "10.9.9.9"}}).json()["id"]
        assert b.get(base).status_code == 403
        assert b.get(f"{base}/{eid}").status_code == 403
        assert b.post(base, json={"endpoint": {"name": "x", "ip_address": "1.1.1.1"}}).status_code == 403
        assert b.delete(f"{base}/{eid}").status_code == 403
        # bob's own URL does not reach alice's endpoint
        assert b.get(f"/users/{bob['id']}/endpoints/{eid}").status_code == 404
        assert a.get(f"{base}/999999").status_code == 404
        assert a.get(f"{base}/abc").status_code == 404
    # admins reach every user's endpoints
    assert admin.get(f"{base}/{eid}").json()["name"] == "mine"
    assert admin.get("/users/999999/endpoints").status_code == 404
    assert a.is_closed


def test_auth_required(server, alice):
    with server.client(user=None) as anon:
        r = anon.get(f"/users/{alice['id']}/endpoints")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
        assert "errors" in r.json()
        r = anon.get(f"/users/{alice['id']}/endpoints", headers={"Accept": "application/xml"})
        assert r.status_code == 401 and fromstring(r.content).tag == "errors"
        assert anon.get("/").status_code == 200  # the root URL answers without credentials
    with server.client(alice["username"], "wrong-password") as bad:
        assert bad.get(f"/users/{alice['id']}/endpoints").status_code == 401


def test_cancelled_user_cannot_log_in(server, admin):
    u = new_user(admin)
    with as_user(server, u) as c:
        assert c.get("/users/me").status_code == 200
        assert admin.delete(f"/users/{u['id']}").json()["deleted_at"] is not None
        assert c.get("/users/me").status_code == 401
        assert admin.put(f"/users/{u['id']}/activate").json()["deleted_at"] is None
        assert c.get("/users/me").status_code == 200
