"""Spear results, summary and alerts (read side) against a real server; the test schedule field
and users' webhook_url. Ingestion itself is covered in-process by tests/unit/domain/test_results.py."""

from __future__ import annotations

from defusedxml.ElementTree import fromstring

from tests.conftest import as_user, new_user

XML = {"Accept": "application/xml"}


def setup(server, admin):
    user = new_user(admin)
    pub = admin.post("/servers", json={"server": {"name": "Community", "ip_address": "203.0.113.9"}}).json()
    with as_user(server, user) as c:
        ep = c.post(
            f"/users/{user['id']}/endpoints", json={"endpoint": {"name": "PBX", "ip_address": "198.51.100.2"}}
        ).json()
        test = c.post(
            f"/users/{user['id']}/endpoints/{ep['id']}/voip_tests", json={"voip_test": {"server_id": pub["id"]}}
        ).json()
    return user, pub, ep, test


def test_interval_seconds_default_min_and_last_result(server, admin):
    user, pub, ep, t = setup(server, admin)
    base = f"/users/{user['id']}/endpoints/{ep['id']}/voip_tests"
    assert (t["interval_seconds"], t["mos"], t["last_tested_at"]) == (60, None, None)
    with as_user(server, user) as c:
        for bad in (4, 0, "often", 86_401):
            r = c.post(base, json={"voip_test": {"server_id": pub["id"], "interval_seconds": bad}})
            assert r.status_code == 422, (bad, r.text)
            assert r.json()["errors"][0].startswith("Interval seconds"), r.json()
        r = c.put(f"{base}/{t['id']}", json={"voip_test": {"interval_seconds": 3}})
        assert r.status_code == 422
        r = c.put(f"{base}/{t['id']}", json={"voip_test": {"interval_seconds": 5}})
        assert r.status_code == 200 and r.json()["interval_seconds"] == 5
        r = c.post(
            base,
            headers={"Content-Type": "application/xml", **XML},
            content=f'<voip-test><server-id type="integer">{pub["id"]}</server-id>'
            f'<interval-seconds type="integer">300</interval-seconds></voip-test>'.encode(),
        )
        assert r.status_code == 201, r.text
        doc = fromstring(r.content)
        assert doc.find("interval-seconds").text == "300" and doc.find("interval-seconds").get("type") == "integer"
        assert doc.find("mos").get("nil") == "true"
        assert doc.find("last-tested-at").get("nil") == "true" and doc.find("last-tested-at").get("type") == "datetime"


def test_results_and_summary_empty_shapes(server, admin):
    user, pub, ep, t = setup(server, admin)
    base = f"/users/{user['id']}/endpoints/{ep['id']}/voip_tests/{t['id']}"
    with as_user(server, user) as c:
        r = c.get(base + "/results")
        assert r.status_code == 200 and r.json() == {"collection": [], "metadata": {"count": 0}}
        r = c.get(
            base + "/results", params={"from": "2024-01-01 00:00:00", "to": "2024-01-02T00:00:00Z", "limit": "1000"}
        )
        assert r.status_code == 200, r.text
        doc = fromstring(c.get(base + "/results", headers=XML).content)
        assert doc.tag == "results" and doc.get("type") == "array" and len(doc) == 0
        for params in (
            {"from": "yesterday"},
            {"to": "2024-13-01"},
            {"limit": "0"},
            {"limit": "1001"},
            {"limit": "ten"},
            {"from": "2024-01-02", "to": "2024-01-01"},
        ):
            r = c.get(base + "/results", params=params)
            assert r.status_code == 422, (params, r.text)
            assert r.json()["errors"], r.json()
        r = c.get(base + "/results", params={"limit": "x"}, headers=XML)
        assert r.status_code == 422 and fromstring(r.content).tag == "errors"
        for period in (None, "hour", "day"):
            r = c.get(base + "/summary", params={"period": period} if period else {})
            assert r.status_code == 200 and r.json() == {"collection": [], "metadata": {"count": 0}}, r.text
        assert fromstring(c.get(base + "/summary?period=day", headers=XML).content).tag == "periods"
        assert c.get(base + "/summary?period=week").status_code == 422
        assert c.get(base + "/summary?from=nope").status_code == 422
        # alerts: none yet
        r = c.get(f"/users/{user['id']}/alerts")
        assert r.status_code == 200 and r.json() == {"collection": [], "metadata": {"count": 0}}
        assert c.get("/users/me/alerts").json()["metadata"]["count"] == 0
        doc = fromstring(c.get(f"/users/{user['id']}/alerts", headers=XML).content)
        assert doc.tag == "alerts" and doc.get("type") == "array"
        assert c.get(f"/users/{user['id']}/alerts?limit=0").status_code == 422
    # admins read anyone's
    assert admin.get(base + "/results").status_code == 200
    assert admin.get(f"/users/{user['id']}/alerts").status_code == 200


def test_authz(server, admin):
    user, pub, ep, t = setup(server, admin)
    other = new_user(admin)
    base = f"/users/{user['id']}/endpoints/{ep['id']}/voip_tests/{t['id']}"
    with as_user(server, other) as o:
        for path in (base + "/results", base + "/summary", f"/users/{user['id']}/alerts"):
            assert o.get(path).status_code == 403, path
        # their own endpoint path with someone else's test id: not found
        oep = o.post(
            f"/users/{other['id']}/endpoints", json={"endpoint": {"name": "mine", "ip_address": "198.51.100.3"}}
        ).json()
        assert o.get(f"/users/{other['id']}/endpoints/{oep['id']}/voip_tests/{t['id']}/results").status_code == 404
    with as_user(server, user) as c:
        assert c.get(f"/users/{user['id']}/endpoints/{ep['id']}/voip_tests/999999/results").status_code == 404
        assert c.get(f"/users/{user['id']}/endpoints/999999/voip_tests/{t['id']}/summary").status_code == 404
        assert c.get(f"/users/{user['id']}/endpoints/{ep['id']}/voip_tests/abc/results").status_code == 404
    assert admin.get("/users/999999/alerts").status_code == 404
    with server.client(None) as anon:
        assert anon.get(base + "/results").status_code == 401


def test_webhook_url(server, admin):
    user = new_user(admin, webhook_url="https://hooks.example.com/sb?k=1")
    assert user["webhook_url"] == "https://hooks.example.com/sb?k=1"
    plain = new_user(admin)
    assert plain["webhook_url"] is None
    r = admin.post(
        "/users",
        json={"user": {"username": "hooky-bad", "password": "hooky-pass-1", "webhook_url": "ftp://example.com"}},
    )
    assert r.status_code == 422 and r.json()["errors"][0].startswith("Webhook url"), r.text
    assert admin.get("/users", params={"username": "hooky-bad"}).json()["metadata"]["count"] == 0
    with as_user(server, user) as c:
        uid = user["id"]
        for bad in ("not a url", "example.com/hook", "javascript:alert(1)", 12):
            r = c.put(f"/users/{uid}", json={"user": {"webhook_url": bad}})
            assert r.status_code == 422, (bad, r.text)
        r = c.patch(f"/users/{uid}", json={"user": {"webhook_url": "http://10.0.0.5:8080/alerts"}})
        assert r.status_code == 200 and r.json()["webhook_url"] == "http://10.0.0.5:8080/alerts"
        r = c.put(f"/users/{uid}", json={"user": {"name": "Renamed"}})  # absent: kept
        assert r.json()["webhook_url"] == "http://10.0.0.5:8080/alerts" and r.json()["name"] == "Renamed"
        r = c.put(
            f"/users/{uid}",
            headers={"Content-Type": "application/xml", **XML},
            content=b"<user><webhook-url>https://h.example/x</webhook-url></user>",
        )
        assert r.status_code == 200 and fromstring(r.content).find("webhook-url").text == "https://h.example/x"
        assert c.put(f"/users/{uid}", json={"user": {"webhook_url": ""}}).json()["webhook_url"] is None
        r = c.put(f"/users/{uid}", json={"user": {"webhook_url": "https://h.example/y"}})
        assert c.put(f"/users/{uid}", json={"user": {"webhook_url": None}}).json()["webhook_url"] is None
        doc = fromstring(c.get(f"/users/{uid}", headers=XML).content)
        assert doc.find("webhook-url").get("nil") == "true"
    with as_user(server, plain) as p:
        assert p.put(f"/users/{user['id']}", json={"user": {"webhook_url": "https://evil.example/"}}).status_code == 403
