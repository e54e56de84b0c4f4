"""Spear users: list/show with filters, admin-only creation, updates, cancel and activate."""

from __future__ import annotations

from defusedxml.ElementTree import fromstring

from tests.conftest import as_user, new_user

USER_KEYS = {
    "id",
    "username",
    "name",
    "master",
    "email",
    "category",
    "time_zone",
    "webhook_url",
    "created_at",
    "deleted_at",
}


def test_create_and_show(server, admin):
    r = admin.post(
        "/users",
        json={
            "user": {
                "username": "giggsy",
                "password": "ryan-giggs-11",
                "name": "Ryan Giggs",
                "email": "rgiggs@emailtest.com",
                "category": "Admin",
                "time_zone": "Eastern Time (US & Canada)",
            }
        },
    )
    assert r.status_code == 201, r.text
    u = r.json()
    assert set(u) == USER_KEYS and "password" not in r.text
    assert u["category"] == "Admin" and u["master"] is False
    assert r.headers["location"].endswith(f"/users/{u['id']}")
    assert admin.get(f"/users/{u['id']}").json() == u
    me = admin.get("/users/me").json()
    assert me["username"] == "admin" and me["master"] is True
    # duplicate username (any case) -> 422, nothing written
    count = admin.get("/users").json()["metadata"]["count"]
    r = admin.post("/users", json={"user": {"username": "GIGGSY", "password": "another-pw-1"}})
    assert r.status_code == 422 and r.json() == {"errors": ["Username has already been taken"]}
    assert admin.get("/users").json()["metadata"]["count"] == count


def test_xml_user(server, admin):
    r = admin.post(
        "/users",
        headers={"Content-Type": "application/xml", "Accept": "application/xml"},
        content=b"<user><username>becks</username><password>david-beckham-7</password>"
        b"<name>David Beckham</name><email>becks@toepoke.com</email>"
        b"<category>Normal</category></user>",
    )
    assert r.status_code == 201, r.text
    doc = fromstring(r.content)
    assert doc.find("time-zone").text == "UTC" and doc.find("master").text == "false"
    assert doc.find("password") is None


def test_filters(server, admin):
    a = new_user(admin, name="David Beckham", email="becks@toepoke.com")
    b = new_user(admin, name="Edgar Davids", email="edavids@yahoo.com", category="Admin")

    def ids(**params):
        return [u["id"] for u in admin.get("/users", params=params).json()["collection"]]

    assert a["id"] in ids(name="david") and b["id"] in ids(name="david")
    assert ids(email="YAHOO") == [b["id"]]
    assert a["id"] in ids(username=a["username"].upper())
    assert b["id"] in ids(category="admin") and a["id"] not in ids(category="admin")
    assert a["id"] in ids(category="Normal")
    assert admin.get("/users", params={"category": "Wizard"}).status_code == 422
    admin.delete(f"/users/{a['id']}")
    assert a["id"] not in ids()
    r = admin.get("/users?category=Normal&email=toepoke&deleted").json()
    assert a["id"] in [u["id"] for u in r["collection"]]


def test_normal_users_see_and_change_only_themselves(server, admin):
    a, b = new_user(admin), new_user(admin)
    with as_user(server, a) as c:
        listed = c.get("/users").json()
        assert [u["id"] for u in listed["collection"]] == [a["id"]]
        assert c.get(f"/users/{b['id']}").status_code == 403
        assert c.post("/users", json={"user": {"username": "nope", "password": "password-1"}}).status_code == 403
        assert c.put(f"/users/{b['id']}", json={"user": {"name": "x"}}).status_code == 403
        assert c.delete(f"/users/{b['id']}").status_code == 403
        r = c.put(f"/users/{a['id']}", json={"user": {"name": "New Name", "category": "Admin"}})
        assert r.status_code == 403  # no self-promotion
        r = c.patch("/users/me", json={"user": {"name": "New Name", "time_zone": "Europe/London"}})
        assert r.status_code == 200 and r.json()["name"] == "New Name"
        # password change: the old one stops working at once, the new one works
        r = c.put("/users/me", json={"user": {"password": "brand-new-pw-1"}})
        assert r.status_code == 200
        assert c.get("/users/me").status_code == 401
    with server.client(a["username"], "brand-new-pw-1") as c:
        assert c.get("/users/me").json()["name"] == "New Name"


def test_admin_rules(server, admin):
    adm = new_user(admin, category="Admin")
    with as_user(server, adm) as c:
        # an admin manages users, but not the super user
        normal = c.post("/users", json={"user": {"username": "made-by-admin", "password": "password-x1"}})
        assert normal.status_code == 201
        assert c.put("/users/1", json={"user": {"name": "owned"}}).status_code == 403
        assert c.delete("/users/1").status_code == 403
        assert c.delete(f"/users/{adm['id']}").status_code == 403  # not yourself
        nid = normal.json()["id"]
        assert c.put(f"/users/{nid}", json={"user": {"category": "Admin"}}).json()["category"] == "Admin"
    assert admin.get("/users/999999").status_code == 404
    assert admin.put("/users/999999", json={"user": {"name": "x"}}).status_code == 404
    r = admin.post("/users", json={"user": {"username": "short", "password": "123"}})
    assert r.status_code == 422 and "Password" in r.json()["errors"][0]
    r = admin.post("/users", json={"user": {"username": "bademail", "password": "12345678", "email": "no"}})
    assert r.status_code == 422 and r.json()["errors"][0].startswith("Email")
