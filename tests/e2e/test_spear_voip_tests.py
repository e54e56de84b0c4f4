"""Spear VoIP tests: CRUD, defaults, server usability, XML names."""

from __future__ import annotations

from defusedxml.ElementTree import fromstring

from tests.conftest import as_user, new_user

KEYS = {
    "id",
    "endpoint_id",
    "server_id",
    "codec",
    "alert_threshold",
    "num_tests",
    "interpacket_ms",
    "interval_seconds",
    "mos",
    "last_tested_at",
    "alerting_since",
    "created_at",
    "updated_at",
    "deleted_at",
}


def setup(server, admin):
    user = new_user(admin)
    pub = admin.post("/servers", json={"server": {"name": "Community", "ip_address": "203.0.113.7"}}).json()
    with as_user(server, user) as c:
        ep = c.post(
            f"/users/{user['id']}/endpoints", json={"endpoint": {"name": "PBX", "ip_address": "198.51.100.1"}}
        ).json()
    return user, pub, ep


def test_crud_and_defaults(server, admin):
    user, pub, ep = setup(server, admin)
    base = f"/users/{user['id']}/endpoints/{ep['id']}/voip_tests"
    with as_user(server, user) as c:
        r = c.post(base, json={"voip_test": {"server_id": pub["id"]}})
        assert r.status_code == 201, r.text
        t = r.json()
        assert set(t) == KEYS
        assert (t["codec"], t["num_tests"], t["interpacket_ms"], t["alert_threshold"]) == ("G.711", 25, 100, 3.5)
        assert t["endpoint_id"] == ep["id"] and t["alerting_since"] is None
        assert r.headers["location"].endswith(f"{base}/{t['id']}")
        assert c.get(f"{base}/{t['id']}").json() == t
        r = c.put(f"{base}/{t['id']}", json={"voip_test": {"codec": "g729", "alert_threshold": 4.1, "num_tests": 50}})
        assert r.status_code == 200
        assert (r.json()["codec"], r.json()["alert_threshold"], r.json()["num_tests"]) == ("G.729", 4.1, 50)
        assert c.delete(f"{base}/{t['id']}").json()["deleted_at"] is not None
        assert c.get(base).json()["metadata"]["count"] == 0
        assert c.get(base + "?deleted").json()["metadata"]["count"] == 1
        assert c.put(f"{base}/{t['id']}/activate").json()["deleted_at"] is None
        # XML: <voip-tests type="array"><voip-test>... dashed names
        doc = fromstring(c.get(base, headers={"Accept": "application/xml"}).content)
        assert doc.tag == "voip-tests" and doc.get("type") == "array"
        item = doc.find("voip-test")
        assert item.find("alert-threshold").get("type") == "float"
        assert item.find("server-id").text == str(pub["id"])
        assert item.find("alerting-since").get("nil") == "true"
        r = c.post(
            base,
            headers={"Content-Type": "application/xml", "Accept": "application/xml"},
            content=f'<voip-test><server-id type="integer">{pub["id"]}</server-id>'
            f"<interpacket-ms>20</interpacket-ms></voip-test>".encode(),
        )
        assert r.status_code == 201, r.text
        assert fromstring(r.content).find("interpacket-ms").text == "20"


def test_validation_and_server_usability(server, admin):
    user, pub, ep = setup(server, admin)
    other = new_user(admin)
    base = f"/users/{user['id']}/endpoints/{ep['id']}/voip_tests"
    with as_user(server, other) as o:
        private = o.post("/servers", json={"server": {"name": "theirs", "ip_address": "10.2.2.2"}}).json()
    with as_user(server, user) as c:
        bad = [
            ({"server_id": pub["id"], "alert_threshold": 6}, "Alert threshold"),
            ({"server_id": pub["id"], "num_tests": 0}, "Num tests"),
            ({"server_id": pub["id"], "codec": "mp3"}, "Codec"),
            ({"server_id": pub["id"], "interpacket_ms": "fast"}, "Interpacket ms"),
            ({}, "Server id"),
            ({"server_id": private["id"]}, "Server id"),  # someone else's private server
            ({"server_id": 987654}, "Server id"),
        ]
        for body, field in bad:
            r = c.post(base, json={"voip_test": body})
            assert r.status_code == 422, (body, r.text)
            assert r.json()["errors"][0].startswith(field), r.json()
        admin.delete(f"/servers/{pub['id']}")
        r = c.post(base, json={"voip_test": {"server_id": pub["id"]}})
        assert r.status_code == 422  # cancelled server
        assert c.get(base + "?deleted").json()["metadata"]["count"] == 0
        assert c.get(f"{base}/123456").status_code == 404
        assert c.get(f"/users/{user['id']}/endpoints/999999/voip_tests").status_code == 404
    with as_user(server, other) as o:
        assert o.get(base).status_code == 403
